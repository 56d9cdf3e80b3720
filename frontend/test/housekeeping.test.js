import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, describeJob, dayRow, describeRetention, span } from '../src/data/housekeeping.js';
import { createHousekeeping } from '../src/ui/housekeeping.js';
import { fakeDocument, h } from './fakedom.js';

const NOW = 1_750_000_000_000;
const job = (over = {}) => ({
  name: 'retention',
  interval_secs: 600,
  paused: false,
  running: false,
  runs: 1,
  last_run: { started: NOW - 125_000, duration_ms: 40, outcome: 'ok', detail: 'deleted 12 events older than 2025-01-16T00:00:00+00:00', manual: false },
  next_run: NOW + 475_000,
  ...over,
});

test('a job reads as its interval, its last run with what it did, and when it runs next', () => {
  assert.deepEqual(describeJob(job(), NOW), {
    name: 'retention',
    state: 'every 10 min',
    last: '2 min ago: ok, deleted 12 events older than 2025-01-16T00:00:00+00:00',
    failed: false,
    next: 'in 7 min',
    paused: false,
  });
  const paused = describeJob(job({ paused: true, last_run: null }), NOW);
  assert.equal(paused.state, 'paused');
  assert.equal(paused.last, 'not run yet');
  assert.equal(paused.next, 'skips the run due in 7 min');
  const failed = describeJob(job({ running: true, last_run: { ...job().last_run, outcome: 'error', detail: 'disk full', manual: true } }), NOW);
  assert.equal(failed.state, 'running');
  assert.equal(failed.last, '2 min ago (run now): failed, disk full');
  assert.equal(failed.failed, true);
  assert.equal(describeJob(job({ next_run: null }), NOW).next, 'stopped');
  assert.deepEqual([span(59_000), span(3_600_000), span(2 * 86_400_000)], ['59 s', '1 h', '2 d']);
});

test('a day reads as its count, suspicious share and busiest countries', () => {
  const day = { day: '2025-01-15', start: 0, events: 1200, suspicious: 30, top_countries: [{ country_code: 'FR', count: 1000 }, { country_code: 'US', count: 200 }] };
  assert.deepEqual(dayRow(day), ['2025-01-15', '1,200', '2.5%', 'FR 1,000, US 200']);
  assert.deepEqual(dayRow({ day: 'x', events: 0, suspicious: 0, top_countries: [] }), ['x', '0', '–', '–']);
  assert.equal(describeRetention({ retain: '30d' }), 'events older than 30d are deleted (hour rollups and daily summaries kept)');
  assert.equal(describeRetention({ retain: null }), 'off: every event is kept');
});

test('requests go to the jobs and retention endpoints; empty retention text is off', async () => {
  const calls = [];
  const fake = async (url, init) => {
    calls.push([url, init.method, init.body]);
    return { ok: true, status: 200, json: async () => ({}) };
  };
  await api.jobs(fake);
  await api.act('request-log-rotation', 'pause', fake);
  await api.act('retention', 'run', fake);
  await api.setRetention(' 30d ', fake);
  await api.setRetention('', fake);
  await api.daily(fake);
  assert.deepEqual(calls, [
    ['/api/jobs', 'GET', undefined],
    ['/api/jobs/request-log-rotation/pause', 'POST', undefined],
    ['/api/jobs/retention/run', 'POST', undefined],
    ['/api/retention', 'PUT', '{"retain":"30d"}'],
    ['/api/retention', 'PUT', '{"retain":null}'],
    ['/api/history/daily', 'GET', undefined],
  ]);
  const refused = await api.setRetention('30 days', async () => ({ ok: false, status: 422, json: async () => ({ field: 'retain', message: 'retain must be ...' }) }));
  assert.deepEqual(refused, { ok: false, status: 422, field: 'retain', message: 'retain must be ...' });
  const down = await api.jobs(async () => {
    throw new Error('refused');
  });
  assert.equal(down.status, null);
});

/** The card's part of index.html, as fake DOM. */
function cardDom(doc) {
  const input = h(doc, 'input', { id: 'retain' });
  input.value = '';
  return h(
    doc, 'section', {},
    h(doc, 'button', { id: 'housekeeping-refresh' }),
    h(doc, 'tbody', { 'data-testid': 'jobs' }),
    h(doc, 'form', { id: 'retention-form' }, input),
    h(doc, 'p', { 'data-testid': 'retention-now' }),
    h(doc, 'p', { 'data-testid': 'housekeeping-said' }),
    h(doc, 'tbody', { 'data-testid': 'daily' }),
  );
}

test('the card lists the jobs with pause or resume and run now, the retention and the days', () => {
  const doc = fakeDocument();
  const root = cardDom(doc);
  const sent = [];
  const card = createHousekeeping(root, {
    act: (name, action) => sent.push([name, action]),
    setRetention: (text) => sent.push(['retain', text]),
    refresh: () => sent.push(['refresh']),
  }, doc);
  const $ = (sel) => root.querySelector(sel);
  card.showJobs([job(), job({ name: 'daily-summary', paused: true, last_run: { ...job().last_run, outcome: 'error', detail: 'x' } })], NOW);
  const rows = $('[data-testid="jobs"]').children;
  assert.equal(rows.length, 2);
  assert.equal(rows[0].children[0].children[0].textContent, 'retention');
  assert.equal(rows[0].children[1].children[0].textContent, 'every 10 min');
  assert.equal(rows[0].children[1].children[1].textContent, 'in 7 min');
  assert.equal(rows[1].children[2].getAttribute('class'), 'failed');
  assert.equal($('[data-testid="job-resume-retention"]'), null, 'a running job offers pause');
  $('[data-testid="job-pause-retention"]').dispatch('click');
  $('[data-testid="job-resume-daily-summary"]').dispatch('click');
  $('[data-testid="job-run-daily-summary"]').dispatch('click');
  card.showRetention({ retain: '30d', retain_secs: 2592000 });
  assert.equal($('#retain').value, '30d');
  assert.match($('[data-testid="retention-now"]').textContent, /older than 30d/);
  $('#retain').value = '7d';
  assert.equal($('#retention-form').dispatch('submit'), true, 'the form does not navigate');
  $('#housekeeping-refresh').dispatch('click');
  assert.deepEqual(sent, [['retention', 'pause'], ['daily-summary', 'resume'], ['daily-summary', 'run'], ['retain', '7d'], ['refresh']]);
  card.showDays([{ day: '2025-01-16', events: 5, suspicious: 1, top_countries: [{ country_code: '<b>', count: 5 }] }]);
  const cells = $('[data-testid="daily"]').children[0].children;
  assert.equal(cells[3].textContent, '<b> 5', 'server text is text, not markup');
  card.showDays([]);
  assert.equal($('[data-testid="daily"]').textContent, 'no daily summaries yet');
  card.say('retain: bad');
  assert.equal($('[data-testid="housekeeping-said"]').textContent, 'retain: bad');
});
