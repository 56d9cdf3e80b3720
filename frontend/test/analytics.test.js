import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnalyticsState, formToUpdate, putConfig, MAX_ALERTS } from '../src/data/analytics.js';

const alert = (id, state = 'firing') => ({ id, rule: 'heavy_hitter', kind: 'network', key: '192.0.2.0/24', state });

test('an alert that resolves replaces the firing one; a new one is said to be new', () => {
  const s = new AnalyticsState();
  assert.equal(s.applyAlert(alert(1)), true);
  assert.equal(s.applyAlert(alert(2)), true);
  assert.equal(s.applyAlert(alert(1, 'resolved')), false);
  assert.deepEqual(s.alerts.map((a) => [a.id, a.state]), [[2, 'firing'], [1, 'resolved']]);
});

test('the alert list keeps the newest ones only', () => {
  const s = new AnalyticsState();
  for (let id = 1; id <= MAX_ALERTS + 5; id++) s.applyAlert(alert(id));
  assert.equal(s.alerts.length, MAX_ALERTS);
  assert.equal(s.alerts[0].id, MAX_ALERTS + 5);
});

test('a flood of event-rule alerts keeps its own budget and never pushes a windowed alert out', () => {
  const s = new AnalyticsState();
  s.applyAlert(alert(1));
  for (let id = 2; id <= MAX_ALERTS + 20; id++) s.applyAlert({ id, rule: 'large_packet', type: 'event', kind: 'ip', key: `198.51.100.${id}`, state: 'firing' });
  assert.equal(s.alerts.length, MAX_ALERTS + 1);
  assert.equal(s.alerts.at(-1).id, 1, 'the heavy hitter is still listed');
  assert.equal(s.alerts[0].id, MAX_ALERTS + 20);
  assert.equal(s.alerts.filter((a) => a.type === 'event').length, MAX_ALERTS);
});

test('a snapshot without results keeps what the page had', () => {
  const s = new AnalyticsState();
  s.applyReport({ kinds: { ip: { top_by_count: [] } } });
  s.applyReport(null);
  assert.deepEqual(s.kind('ip'), { top_by_count: [] });
});

test('the form becomes an update for one kind, empty fields left out, text kept for the server to refuse', () => {
  assert.deepEqual(formToUpdate('network', { window_secs: '30', top_k: '', heavy_hitter_percent: ' 12.5 ', outlier_stddevs: 'x' }), {
    kinds: { network: { window_secs: 30, heavy_hitter_percent: 12.5, outlier_stddevs: 'x' } },
  });
});

test('a 422 comes back with the field the server named', async () => {
  const fake = async (url, init) => {
    assert.equal(url, '/api/analytics/config');
    assert.equal(init.method, 'PUT');
    return { ok: false, status: 422, json: async () => ({ error: 'invalid_setting', field: 'kinds.ip.top_k', message: 'kinds.ip.top_k: 0 is out of range 1..=100' }) };
  };
  const result = await putConfig({ kinds: { ip: { top_k: 0 } } }, fake);
  assert.deepEqual(result, { ok: false, status: 422, field: 'kinds.ip.top_k', message: 'kinds.ip.top_k: 0 is out of range 1..=100' });
  const ok = await putConfig({}, async () => ({ ok: true, status: 200, json: async () => ({ budget: 4096 }) }));
  assert.deepEqual(ok, { ok: true, config: { budget: 4096 } });
});

import { describeWindow, describeKey, createAnalyticsPanel } from '../src/ui/analytics.js';
import { describeAlert, createAlertList, alertRows } from '../src/ui/alerts.js';
import { fakeDocument, h } from './fakedom.js';

test('the window line names T, k, H, X, the events and whether the results are exact', () => {
  const r = {
    thresholds: { window_secs: 60, top_k: 10, heavy_hitter_percent: 5, outlier_stddevs: 3 },
    total: { count: 1200 }, suspicious_share: 0.25, exact: false, error_bound: { count: 7 },
  };
  assert.equal(describeWindow(r), 'last 60 s · k 10 · H 5% · X 3σ · 1,200 events, 25.0% suspicious · summary: counts up to 7 low');
  assert.equal(describeWindow(null), 'no data yet');
  assert.deepEqual(describeKey({ key: '192.0.2.0/24', count: 12, share: 0.04 }), ['192.0.2.0/24', '12 · 4.0%']);
});

test('alerts are listed as text, a resolved one says so, markup stays text', () => {
  assert.deepEqual(describeAlert({ rule: 'heavy_hitter', kind: 'network', key: '<b>x</b>', peak: 0.3, state: 'resolved' }), {
    title: 'heavy hitter: network <b>x</b>', detail: '30.0% at peak · resolved',
  });
  const doc = fakeDocument();
  const list = doc.createElement('ol');
  createAlertList(list, { onAlertClick() {} }, doc).render([{ id: 3, rule: 'suspicious_share', peak: 0.6, state: 'firing' }], new Set([3]));
  assert.equal(list.children.length, 1);
  assert.equal(list.children[0].className, 'firing new');
  assert.equal(list.textContent, 'suspicious share: all traffic60.0% at peak · firing');
});

test('an event rule\'s alerts share one row at its newest; windowed ones keep their own', () => {
  const ev = (id, key, state = 'firing') => ({ id, rule: 'large_packet', type: 'event', kind: 'ip', key, count: 1, state });
  const other = { id: 5, rule: 'ssh_brute_force', type: 'event', kind: 'ip', key: '192.0.2.9', count: 10, state: 'firing' };
  const hh = { id: 3, rule: 'heavy_hitter', type: 'heavy_hitter', kind: 'network', key: '203.0.113.0/24', peak: 0.3, state: 'firing' };
  const alerts = [ev(7, '198.51.100.7'), other, ev(4, '198.51.100.4', 'resolved'), hh, ev(2, '198.51.100.2', 'resolved')];
  const rows = alertRows(alerts);
  assert.deepEqual(rows.map((r) => [r.alert.id, r.ids, r.firing]), [[7, [7, 4, 2], 1], [5, [5], 1], [3, [3], 1]]);
  const doc = fakeDocument();
  const list = doc.createElement('ol');
  const clicked = [];
  createAlertList(list, { onAlertClick: (a) => clicked.push(a.id) }, doc).render(alerts, new Set([2]));
  assert.equal(list.children.length, 3);
  assert.equal(list.children[0].className, 'firing new');
  assert.equal(list.children[0].textContent, 'large packet: ip 198.51.100.7 and 2 more3 alerts, 1 firing · newest: 1 matching · firing');
  assert.equal(list.children[1].textContent, 'ssh brute force: ip 192.0.2.910 matching · firing');
  list.children[0].children[0].dispatch('click');
  assert.deepEqual(clicked, [7], 'the row shows its newest alert');
});

/** The panel's part of index.html, as fake DOM. */
function panelDom(doc) {
  const input = (name) => h(doc, 'input', { name });
  const form = h(doc, 'form', { id: 'analytics-form' }, input('window_secs'), input('top_k'), input('heavy_hitter_percent'), input('outlier_stddevs'), h(doc, 'p', { id: 'analytics-error' }));
  const kind = h(doc, 'select', { id: 'analytics-kind' });
  kind.value = 'network';
  return h(doc, 'section', {}, kind, h(doc, 'p', { id: 'analytics-window' }), h(doc, 'ol', { 'data-testid': 'heavy-hitters' }), h(doc, 'ol', { 'data-testid': 'top-k' }), h(doc, 'ol', { 'data-testid': 'outliers' }), form);
}

test('a refused settings change says the session is over (401) or is not an admin\'s (403)', async () => {
  const doc = fakeDocument();
  const root = panelDom(doc);
  const panel = createAnalyticsPanel(root, { onApply() {}, onKeyClick() {} }, doc);
  const error = root.querySelector('#analytics-error');
  const refused = (status, message) => putConfig({}, async () => ({ ok: false, status, json: async () => ({ error: 'x', message }) }));

  panel.showResult(await refused(401, 'log in as an admin (POST /api/login)'));
  assert.equal(error.hidden, false);
  assert.match(error.textContent, /log in again/);
  panel.showResult(await refused(403, 'this needs the admin role'));
  assert.equal(error.textContent, 'only an admin can change these settings');
  panel.showResult(await refused(422, 'kinds.network.top_k: 0 is out of range 1..=100'));
  assert.equal(error.textContent, 'kinds.network.top_k: 0 is out of range 1..=100');
  panel.showResult({ ok: true, config: {} });
  assert.equal(error.hidden, true);
  assert.equal(error.textContent, '');
});

test('the form sends the kind chosen and the values typed, and shows the thresholds in force', () => {
  const doc = fakeDocument();
  const root = panelDom(doc);
  const applied = [];
  const panel = createAnalyticsPanel(root, { onApply: (kind, values) => applied.push([kind, values]), onKeyClick() {} }, doc);
  const t = { window_secs: 60, top_k: 10, heavy_hitter_percent: 5, outlier_stddevs: 3 };
  panel.render({ kinds: { network: { thresholds: t, total: { count: 0 }, suspicious_share: 0, exact: true } } });
  assert.equal(root.querySelector('[name="top_k"]').value, '10');
  root.querySelector('[name="top_k"]').value = '4';
  assert.equal(root.querySelector('#analytics-form').dispatch('submit'), true);
  assert.deepEqual(applied, [['network', { window_secs: '60', top_k: '4', heavy_hitter_percent: '5', outlier_stddevs: '3' }]]);
});
