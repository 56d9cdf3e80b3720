import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  presetRange,
  dragRange,
  historyUrl,
  exportUrl,
  PastWindow,
  binnedTimeline,
  loadPages,
  Replay,
  replaySpan,
} from '../src/data/past.js';

test('a preset ends with the data clock second and reaches back its length', () => {
  assert.deepEqual(presetRange('5m', 1000.7), { from: 701, to: 1001 });
  assert.deepEqual(presetRange('1h', 10000), { from: 6401, to: 10001 });
  assert.deepEqual(presetRange('1d', 100000), { from: 13601, to: 100001 });
});

test('the all preset is open at both ends and needs no clock', () => {
  assert.deepEqual(presetRange('all', null), { from: null, to: null });
});

test('a timed preset without a data clock selects nothing', () => {
  assert.equal(presetRange('5m', null), null);
  assert.throws(() => presetRange('week', 5));
});

test('a drag selects every bar it touches, whole, in either direction', () => {
  const axis = { start: 1000, binSecs: 2, bins: 100 }; // 200 s over 400 px: 4 px a bar
  assert.deepEqual(dragRange(10, 30, 400, axis), { from: 1004, to: 1016 });
  assert.deepEqual(dragRange(30, 10, 400, axis), { from: 1004, to: 1016 });
});

test('a drag past the edges is cut to the timeline', () => {
  const axis = { start: 0, binSecs: 1, bins: 10 };
  assert.deepEqual(dragRange(-50, 500, 100, axis), { from: 0, to: 10 });
  assert.deepEqual(dragRange(95, 300, 100, axis), { from: 9, to: 10 });
});

test('a click or an empty timeline selects nothing', () => {
  assert.equal(dragRange(10, 12, 400, { start: 0, binSecs: 1, bins: 100 }), null);
  assert.equal(dragRange(10, 100, 400, { start: null, binSecs: 1, bins: 100 }), null);
});

test('the history and export URLs carry the range and the filter', () => {
  assert.equal(historyUrl({ from: 5, to: 9 }, 'suspicious', { after: 12 }), '/api/history?from=5&to=9&suspicious=true&after=12&limit=10000');
  assert.equal(historyUrl({ from: null, to: null }, 'all'), '/api/history?after=0&limit=10000');
  assert.equal(exportUrl({ from: 5, to: null }, 'normal', 'jsonl'), '/api/history/export?from=5&suspicious=false&format=jsonl');
  assert.equal(exportUrl({ from: null, to: 7 }, 'all'), '/api/history/export?to=7&format=csv');
});

const summary = {
  total: 30,
  suspicious: 10,
  first_timestamp: 100.5,
  latest_timestamp: 102.25,
  top_places: [
    { key: 17, city: 'Paris', country_code: 'FR', count: 20, suspicious: 4 },
    { key: 3, city: 'Lyon', country_code: 'FR', count: 10, suspicious: 6 },
  ],
  top_countries: [{ country_code: 'FR', country: 'France', count: 30, suspicious: 10 }],
  timeline: { start: 100, bucket_secs: 1, buckets: [[10, 4], [12, 3], [8, 3]], peak: 1 },
};

test('a window view shows the summary totals, places with their coordinates and the timeline', () => {
  const win = new PastWindow({ from: 100, to: 103 }, 'all');
  win.applyPage({ summary, hits: [{ seq: 1, place_key: 17, latitude: 48.85, longitude: 2.35, timestamp: 100.5 }], next_after: null });
  const v = win.view();
  assert.equal(v.total, 30);
  assert.equal(v.suspicious, 10);
  assert.equal(v.share, 10 / 30);
  assert.equal(v.latestTimestamp, 102.25);
  assert.equal(v.rate, 10, 'the average over the window: 30 hits in 3 s');
  assert.deepEqual(
    v.top.map((p) => [p.city, p.country, p.value, p.lat, p.lon]),
    [
      ['Paris', 'France', 20, 48.85, 2.35],
      ['Lyon', 'France', 10, null, null],
    ],
  );
  assert.deepEqual(v.countries.map((c) => [c.country_code, c.value]), [['FR', 30]]);
  assert.deepEqual(v.timeline.normal, [6, 9, 5]);
  assert.deepEqual(v.timeline.suspicious, [4, 3, 3]);
  assert.equal(v.timeline.max, 12);
  assert.equal(win.view(101.5).latestTimestamp, 101.5);
});

test('an empty window has an empty timeline', () => {
  const t = binnedTimeline({ start: 0, bucket_secs: 1, buckets: [], peak: null });
  assert.equal(t.start, null);
  assert.equal(new PastWindow({ from: 0, to: 1 }, 'all').view().total, 0);
});

test('pages are loaded after each other until the last', async () => {
  const asked = [];
  const pages = {
    0: { summary, hits: [{ seq: 4, timestamp: 1 }, { seq: 7, timestamp: 2 }], next_after: 7 },
    7: { summary: { ...summary, total: 999 }, hits: [{ seq: 9, timestamp: 3 }], next_after: null },
  };
  const win = new PastWindow({ from: 0, to: 10 }, 'all');
  await loadPages(win, async (url) => {
    asked.push(url);
    return pages[new URLSearchParams(url.split('?')[1]).get('after')];
  });
  assert.deepEqual(win.hits.map((h) => h.seq), [4, 7, 9]);
  assert.equal(win.summary.total, 30, 'the summary of the first page stays');
  assert.equal(asked.length, 2);
  assert.ok(win.complete);
});

test('page loading stops when enough is loaded', async () => {
  const win = new PastWindow({ from: 0, to: 10 }, 'all');
  let n = 0;
  await loadPages(
    win,
    async () => ({ summary, hits: [{ seq: ++n, timestamp: n }], next_after: n }),
    (w) => w.hits.length >= 3,
  );
  assert.equal(win.hits.length, 3);
  assert.ok(!win.complete);
});

test('a replay hands out each hit once, when its clock reaches the hit, at the chosen speed', () => {
  const r = new Replay({ from: 100, to: 200 }, 10);
  r.add([{ timestamp: 150 }, { timestamp: 101 }, { timestamp: 120 }], 0);
  assert.deepEqual(r.due(0), [], 'nothing before play');
  r.play(1000);
  assert.equal(r.position(1000), 100);
  assert.equal(r.position(3000), 120);
  const first = r.due(3000);
  assert.deepEqual(first.map((d) => d.hit.timestamp), [101, 120]);
  assert.equal(first[0].lagSecs, 1.9, 'drawn at its age in wall seconds');
  assert.deepEqual(r.due(3000), [], 'never twice');
  assert.deepEqual(r.due(6000).map((d) => d.hit.timestamp), [150]);
  assert.equal(r.played, 3);
});

test('a paused replay holds its clock and resumes from there', () => {
  const r = new Replay({ from: 0, to: 100 }, 2);
  r.play(0);
  r.pause(5000);
  assert.equal(r.position(60000), 10);
  r.play(60000);
  assert.equal(r.position(61000), 12);
});

test('changing speed does not move the clock', () => {
  const r = new Replay({ from: 0, to: 1000 }, 1);
  r.play(0);
  r.setSpeed(100, 10000);
  assert.equal(r.position(10000), 10);
  assert.equal(r.position(11000), 110);
});

test('a replay ends at its window end and is finished once all hits are out', () => {
  const r = new Replay({ from: 0, to: 10 }, 1);
  r.add([{ timestamp: 9.5 }], 0);
  r.play(0);
  assert.equal(r.position(60000), 10);
  assert.ok(!r.finished(60000));
  r.due(60000);
  assert.ok(r.finished(60000));
});

test('a hit added behind the clock is due at once and counted late', () => {
  const r = new Replay({ from: 0, to: 100 }, 1);
  r.play(0);
  r.add([{ timestamp: 3 }, { timestamp: 50 }], 10000);
  assert.equal(r.late, 1);
  assert.deepEqual(r.due(10000).map((d) => d.hit.timestamp), [3]);
  assert.equal(r.horizon(), 50);
});

test('an open window replays from its first to past its latest event', () => {
  const win = new PastWindow({ from: null, to: null }, 'all');
  assert.equal(replaySpan(win), null);
  win.applyPage({ summary, hits: [], next_after: null });
  assert.deepEqual(replaySpan(win), { from: 100, to: 103 });
  const closed = new PastWindow({ from: 50, to: 60 }, 'all');
  closed.applyPage({ summary, hits: [], next_after: null });
  assert.deepEqual(replaySpan(closed), { from: 50, to: 60 });
});
