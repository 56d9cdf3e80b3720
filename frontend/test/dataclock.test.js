// The page's data clock follows the server's (README, "The data's clock"): a stray hit
// cannot move it or stretch the timeline, a jump the server confirms resets the timeline,
// and a page that joins late sees what an early one sees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrafficState } from '../src/data/state.js';
import { placement } from '../src/data/timeline.js';

const T0 = 1_767_225_600; // the sample file's era
const Y2199 = 7_226_582_400; // 2199-01-01 00:00:00 UTC

const summary = (start, normal, over = {}) => ({
  start,
  normal,
  suspicious: normal.map(() => 0),
  too_old: 0,
  outliers: 0,
  last_outlier: null,
  pending: 0,
  clock_jumps: 0,
  ...over,
});

const stats = (seq, total, latest, timeline) => ({
  seq,
  server_time: 1_000_000,
  events_per_second: 1,
  rejected_requests: 0,
  clients: 1,
  total,
  suspicious: 0,
  suspicious_share: 0,
  first_timestamp: timeline.start,
  latest_timestamp: latest,
  places: 1,
  other_places: 0,
  top_places: [
    { key: 7, city: 'Bakersfield', region: '', country_code: 'US', country: 'United States', latitude: 1, longitude: 2, count: total, suspicious: 0 },
  ],
  top_suspicious_places: [],
  top_normal_places: [],
  top_countries: [],
  timeline,
});

const hit = (timestamp) => ({
  ip: '1.2.3.4',
  place_key: 7,
  latitude: 35,
  longitude: -119,
  timestamp,
  suspicious: false,
  received: 999_000,
  city: 'Bakersfield',
  country_code: 'US',
  country: 'United States',
});

const snapshot = (st) => ({ stats: st, visible_secs: 60, first_seq: st.seq + 1, hits_truncated: 0, hits: [] });

/** The parts of a view two pages must agree on. */
const seen = (v) => ({
  total: v.total,
  latest: v.latestTimestamp,
  timeline: v.timeline,
  outliers: v.outliers,
  pending: v.pending,
  lastOutlier: v.lastOutlier,
  clockJumps: v.clockJumps,
  top: v.top.map((p) => [p.key, p.count]),
});

test('the placement of a second against the clock is the server\'s', () => {
  assert.equal(placement(1000, 1000, 600), 'near');
  assert.equal(placement(1000, 940, 600), 'near');
  assert.equal(placement(1000, 1600, 600), 'near');
  assert.equal(placement(1000, 939, 600), 'late');
  assert.equal(placement(1000, 401, 600), 'late');
  assert.equal(placement(1000, 400, 600), 'behind');
  assert.equal(placement(1000, 1601, 600), 'ahead');
  // A window shorter than the tolerance: nothing is late.
  assert.equal(placement(1000, 991, 10), 'near');
  assert.equal(placement(1000, 990, 10), 'behind');
});

test('a hit dated 2199 between normal ones moves neither the data clock nor the timeline, and is reported', () => {
  const s = new TrafficState();
  s.applySnapshot(snapshot(stats(2, 2, T0 + 1, summary(T0, [1, 1]))), 1_000_000);
  const before = s.view();
  s.applyHits({ seq: 3, hits: [hit(Y2199)] });
  let v = s.view();
  assert.equal(v.latestTimestamp, T0 + 1, 'the data clock stays in the file\'s era');
  assert.deepEqual(v.timeline, before.timeline, 'the timeline is neither stretched nor blanked');
  assert.equal(v.total, 3, 'the hit still counts');
  assert.equal(v.top[0].count, 3, 'and counts at its place');
  assert.deepEqual([v.pending, v.outliers, v.lastOutlier], [1, 0, Y2199], 'held as pending until more of its era come');

  s.applyHits({ seq: 4, hits: [hit(T0 + 2)] });
  v = s.view();
  assert.equal(v.latestTimestamp, T0 + 2, 'a normal hit moves the clock on');
  assert.deepEqual(v.timeline.normal, [1, 1, 1]);
  assert.equal(v.timeline.start, T0);
  assert.deepEqual([v.pending, v.outliers, v.lastOutlier], [0, 1, Y2199], 'the 2199 hit is now an outlier');

  // The server's next stats say the same.
  s.applyStats(stats(4, 4, T0 + 2, summary(T0, [1, 1, 1], { outliers: 1, last_outlier: Y2199 })), 1_000_000);
  const settled = s.view();
  assert.deepEqual(seen(settled), seen(v));
});

test('an outlier the server already counted stays off the clock when more hits follow', () => {
  const s = new TrafficState();
  s.applySnapshot(snapshot(stats(3, 3, T0 + 1, summary(T0, [1, 1], { pending: 1, last_outlier: Y2199 }))), 1_000_000);
  assert.deepEqual([s.view().pending, s.view().outliers], [1, 0]);
  s.applyHits({ seq: 4, hits: [hit(T0 + 1)] });
  const v = s.view();
  assert.deepEqual([v.pending, v.outliers, v.latestTimestamp], [0, 1, T0 + 1]);
});

test('hits of an era the server has not confirmed are pending, not on the timeline', () => {
  const s = new TrafficState();
  s.applySnapshot(snapshot(stats(10, 10, T0 + 9, summary(T0, new Array(10).fill(1)))), 1_000_000);
  // A looping replay starts over a day earlier: 5 hits of the new pass, unconfirmed.
  const earlier = T0 - 86_400;
  s.applyHits({ seq: 11, hits: [0, 1, 2, 3, 4].map((i) => hit(earlier + i)) });
  const v = s.view();
  assert.equal(v.latestTimestamp, T0 + 9);
  assert.equal(v.timeline.start, T0);
  assert.equal(v.timeline.normal.length, 10);
  assert.deepEqual([v.pending, v.outliers, v.lastOutlier], [5, 0, earlier + 4]);
  assert.equal(v.total, 15);
});

test('a backwards jump confirmed by the server resets the timeline to the server\'s', () => {
  const s = new TrafficState();
  s.applySnapshot(snapshot(stats(10, 10, T0 + 9, summary(T0, new Array(10).fill(1)))), 1_000_000);
  const earlier = T0 - 86_400;
  const pass = Array.from({ length: 60 }, (_, i) => hit(earlier + Math.floor(i / 2)));
  s.applyHits({ seq: 11, hits: pass });
  assert.equal(s.view().pending, 60);
  // The server confirmed the new pass after 50 of its hits and has counted all 60.
  s.applyStats(stats(70, 70, earlier + 29, summary(earlier, new Array(30).fill(2), { clock_jumps: 1 })), 1_000_000);
  let v = s.view();
  assert.equal(v.latestTimestamp, earlier + 29, 'the clock went back');
  assert.equal(v.timeline.start, earlier, 'the timeline is the new era\'s alone');
  assert.deepEqual(v.timeline.normal, new Array(30).fill(2));
  assert.deepEqual([v.pending, v.outliers, v.clockJumps], [0, 0, 1]);
  // Hits after that stats continue the new era.
  s.applyHits({ seq: 71, hits: [hit(earlier + 30)] });
  v = s.view();
  assert.equal(v.latestTimestamp, earlier + 30);
  assert.equal(v.timeline.normal.length, 31);
  assert.equal(v.total, 71);
});

test('a page that joins late sees what an early one sees, after an outlier and a jump', () => {
  const early = new TrafficState();
  early.applySnapshot(snapshot(stats(2, 2, T0 + 1, summary(T0, [1, 1]))), 1_000_000);
  early.applyHits({ seq: 3, hits: [hit(Y2199), hit(T0 + 2)] });
  early.applyStats(stats(4, 4, T0 + 2, summary(T0, [1, 1, 1], { outliers: 1, last_outlier: Y2199 })), 1_000_000);
  const earlier = T0 - 86_400;
  early.applyHits({ seq: 5, hits: Array.from({ length: 50 }, (_, i) => hit(earlier + i)) });
  const jumped = stats(54, 54, earlier + 49, summary(earlier, new Array(50).fill(1), { outliers: 1, last_outlier: earlier + 49, clock_jumps: 1 }));
  early.applyStats(jumped, 1_000_000);
  early.applyHits({ seq: 55, hits: [hit(earlier + 50), hit(Y2199)] });

  const late = new TrafficState();
  late.applySnapshot(snapshot(jumped), 1_000_000);
  late.applyHits({ seq: 55, hits: [hit(earlier + 50), hit(Y2199)] });
  assert.deepEqual(seen(late.view()), seen(early.view()));
  const v = late.view();
  assert.equal(v.latestTimestamp, earlier + 50);
  assert.equal(v.timeline.start, earlier);
  assert.deepEqual([v.outliers, v.pending, v.clockJumps, v.lastOutlier], [1, 1, 1, Y2199]);

  // And once the server's stats cover those hits, both show exactly the server's numbers.
  const after = stats(56, 56, earlier + 50, summary(earlier, new Array(51).fill(1), { outliers: 1, pending: 1, last_outlier: Y2199, clock_jumps: 1 }));
  early.applyStats(after, 1_000_000);
  const fresh = new TrafficState();
  fresh.applySnapshot(snapshot(after), 1_000_000);
  assert.deepEqual(seen(fresh.view()), seen(early.view()));
});
