import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formToUpdate, burstRequest, parseTable, formatTable, fieldOf, describeGenerator, send, api } from '../src/data/generator.js';
import { createGeneratorCard } from '../src/ui/generator.js';
import { fakeDocument, h } from './fakedom.js';

test('the form becomes a settings update: percent to share, the mix to a table, empty fields left out', () => {
  assert.deepEqual(formToUpdate({ rate: ' 200 ', suspicious_percent: '12.5', protocols: 'TCP=80, UDP=20' }), {
    rate: 200,
    suspicious_share: 0.125,
    protocols: { TCP: 80, UDP: 20 },
  });
  assert.deepEqual(formToUpdate({ rate: '', suspicious_percent: '', protocols: '' }), {});
  // Text that is no number or table goes as it is, for the server to refuse naming the field.
  assert.deepEqual(formToUpdate({ rate: 'fast', protocols: 'TCP' }), { rate: 'fast', protocols: 'TCP' });
  assert.deepEqual(parseTable('none'), {});
  assert.equal(formatTable({ ICMP: 5, TCP: 80 }), 'ICMP=5, TCP=80');
});

test('the burst button sends its fields, the defaults for empty ones', () => {
  assert.deepEqual(burstRequest({ network: '', share_percent: '', secs: '' }), { network: '203.0.113.0/24', share: 0.3, secs: 30 });
  assert.deepEqual(burstRequest({ network: '198.51.100.0/24', share_percent: '50', secs: '10' }), { network: '198.51.100.0/24', share: 0.5, secs: 10 });
});

test('a setting the server names marks its form field', () => {
  assert.equal(fieldOf('suspicious_share'), 'suspicious_percent');
  assert.equal(fieldOf('protocols.TCP'), 'protocols');
  assert.equal(fieldOf('share'), 'share_percent');
  assert.equal(fieldOf('bursts[0]'), 'bursts');
});

const view = (over = {}) => ({
  running: true,
  elapsed_secs: 12.4,
  generated: 1240,
  config: { rate: 100, suspicious_share: 0.03, protocols: { TCP: 80, UDP: 20 }, bursts: ['203.0.113.0/24:0.3:10-40', '198.51.100.0/24:0.5:1-5'] },
  ...over,
});

test('the status line says rate, events and the bursts not over yet', () => {
  assert.equal(describeGenerator(view()), 'running 12 s · 100 events/s · 3.0% suspicious · 1,240 events · burst 203.0.113.0/24 30% until s 40');
  assert.equal(describeGenerator(view({ running: false })), 'stopped · 100 events/s · 3.0% suspicious when started');
});

test('requests go to the control API and a 422 comes back with its field', async () => {
  const calls = [];
  const fake = (answer) => async (url, init) => {
    calls.push([url, init.method, init.body]);
    return answer;
  };
  const ok = await api.start(fake({ ok: true, status: 200, json: async () => view() }));
  assert.equal(ok.ok, true);
  assert.equal(ok.view.generated, 1240);
  const refused = await api.update({ rate: '0' }, fake({ ok: false, status: 422, json: async () => ({ field: 'rate', message: 'rate: 0 is out of range' }) }));
  assert.deepEqual(refused, { ok: false, status: 422, field: 'rate', message: 'rate: 0 is out of range' });
  await api.burst({}, fake({ ok: true, status: 200, json: async () => view() }));
  assert.deepEqual(calls, [
    ['/api/generator/start', 'POST', undefined],
    ['/api/generator', 'PUT', '{"rate":0}'],
    ['/api/generator/burst', 'POST', '{"network":"203.0.113.0/24","share":0.3,"secs":30}'],
  ]);
  const down = await send('GET', '/api/generator', undefined, async () => {
    throw new Error('refused');
  });
  assert.equal(down.status, null);
});

/** The card's part of index.html, as fake DOM. */
function cardDom(doc) {
  const input = (name, value = '') => {
    const el = h(doc, 'input', { name });
    el.value = value;
    return el;
  };
  const form = h(
    doc, 'form', { id: 'generator-form' },
    h(doc, 'button', { 'data-testid': 'generator-toggle' }),
    input('rate'), input('suspicious_percent'), input('protocols'),
    h(doc, 'button', { 'data-testid': 'generator-burst' }),
    input('network', '203.0.113.0/24'), input('share_percent', '30'), input('secs', '30'),
    h(doc, 'p', { id: 'generator-error' }),
  );
  return h(doc, 'section', {}, h(doc, 'span', { 'data-testid': 'generator-state' }), h(doc, 'p', { 'data-testid': 'generator-status' }), form);
}

test('the card shows the state, fills the settings, and sends start/stop, settings and bursts', () => {
  const doc = fakeDocument();
  const root = cardDom(doc);
  const sent = [];
  const card = createGeneratorCard(root, {
    onToggle: (running) => sent.push(['toggle', running]),
    onApply: (values) => sent.push(['apply', values]),
    onBurst: (values) => sent.push(['burst', values]),
  }, doc);
  const $ = (sel) => root.querySelector(sel);
  card.render(view({ running: false }));
  assert.equal($('[data-testid="generator-state"]').textContent, 'stopped');
  assert.equal($('[data-testid="generator-toggle"]').textContent, 'Start');
  assert.equal($('[data-testid="generator-burst"]').disabled, true);
  assert.equal($('[name="rate"]').value, '100');
  assert.equal($('[name="suspicious_percent"]').value, '3');
  assert.equal($('[name="protocols"]').value, 'TCP=80, UDP=20');
  $('[data-testid="generator-toggle"]').dispatch('click');
  card.render(view());
  assert.equal($('[data-testid="generator-toggle"]').textContent, 'Stop');
  assert.equal($('[data-testid="generator-burst"]').disabled, false);
  $('[data-testid="generator-toggle"]').dispatch('click');
  $('[name="rate"]').value = '250';
  assert.equal($('#generator-form').dispatch('submit'), true, 'the form does not navigate');
  $('[data-testid="generator-burst"]').dispatch('click');
  assert.deepEqual(sent, [
    ['toggle', false],
    ['toggle', true],
    ['apply', { rate: '250', suspicious_percent: '3', protocols: 'TCP=80, UDP=20' }],
    ['burst', { network: '203.0.113.0/24', share_percent: '30', secs: '30' }],
  ]);
});

test('a refusal is shown in words, the named field marked, and cleared by the next success', () => {
  const doc = fakeDocument();
  const root = cardDom(doc);
  const card = createGeneratorCard(root, { onToggle() {}, onApply() {}, onBurst() {} }, doc);
  const error = root.querySelector('#generator-error');
  card.showResult({ ok: false, status: 422, field: 'suspicious_share', message: 'suspicious_share: 2 is out of range 0..=1' });
  assert.equal(error.hidden, false);
  assert.equal(error.textContent, 'suspicious_share: 2 is out of range 0..=1');
  assert.equal(root.querySelector('[name="suspicious_percent"]').getAttribute('aria-invalid'), 'true');
  card.showResult({ ok: false, status: 403, field: null, message: 'this needs the admin role' });
  assert.equal(error.textContent, 'only an admin can steer the generator');
  assert.equal(root.querySelector('[name="suspicious_percent"]').getAttribute('aria-invalid'), null);
  card.showResult({ ok: false, status: 409, field: null, message: 'the generator is not running' });
  assert.equal(error.textContent, 'the generator is not running');
  card.showResult({ ok: true, view: view() });
  assert.equal(error.hidden, true);
  assert.equal(root.querySelector('[data-testid="generator-state"]').textContent, 'running');
});
