import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrafficState, isPlaced, describeReasons, topNetworks } from '../src/data/state.js';

// Place keys as the server gives them (its own numbering); one per name in these fixtures.
const keys = new Map();
const keyOf = (city) => {
  if (!keys.has(city)) keys.set(city, 100 + keys.size);
  return keys.get(city);
};

const place = (city, count, suspicious, cc = 'US', key = keyOf(city)) => ({
  key,
  city,
  region: '',
  country_code: cc,
  country: cc === 'US' ? 'United States' : 'Russia',
  latitude: 1,
  longitude: 2,
  count,
  suspicious,
});

const stats = (over = {}) => ({
  seq: 3,
  server_time: 1_000_000,
  events_per_second: 2.5,
  rejected_requests: 0,
  clients: 1,
  total: 3,
  suspicious: 1,
  suspicious_share: 1 / 3,
  first_timestamp: 100,
  latest_timestamp: 101,
  places: 2,
  other_places: 0,
  top_places: [place('Bakersfield', 2, 0), place('Cheboksary', 1, 1, 'RU')],
  top_suspicious_places: [place('Cheboksary', 1, 1, 'RU')],
  top_normal_places: [place('Bakersfield', 2, 0)],
  top_countries: [],
  timeline: { start: 100, normal: [1, 1], suspicious: [0, 1], too_old: 0 },
  ...over,
});

const hit = (city, suspicious, timestamp = 102, cc = 'US', key = keyOf(city)) => ({
  ip: '1.2.3.4',
  place_key: key,
  latitude: 35,
  longitude: -119,
  timestamp,
  suspicious,
  received: 999_000,
  city,
  country_code: cc,
  country: 'x',
});

test('a snapshot sets the counters and numbers its hits from first_seq', () => {
  const s = new TrafficState();
  const hits = s.applySnapshot(
    { stats: stats(), visible_secs: 60, first_seq: 2, hits_truncated: 0, hits: [hit('A', false), hit('B', true)] },
    1_000_000,
  );
  assert.deepEqual(
    hits.map((h) => h.id),
    [2, 3],
  );
  const v = s.view();
  assert.equal(v.total, 3);
  assert.equal(v.suspicious, 1);
  assert.equal(v.top[0].city, 'Bakersfield');
});

test('hits after the stats move the numbers; the next stats settle them exactly', () => {
  const s = new TrafficState();
  s.applySnapshot({ stats: stats(), visible_secs: 60, first_seq: 4, hits: [] });
  s.applyHits({ seq: 4, hits: [hit('Cheboksary', true, 102, 'RU'), hit('Cheboksary', true, 102, 'RU')] });
  let v = s.view();
  assert.equal(v.total, 5);
  assert.equal(v.suspicious, 3);
  assert.equal(v.top[0].city, 'Cheboksary', 'now busiest: 3 against 2');
  assert.equal(v.latestTimestamp, 102);
  assert.deepEqual(v.timeline.normal, [1, 1, 0]);
  assert.deepEqual(v.timeline.suspicious, [0, 1, 2]);

  // The server counted one of them; the other is still only ours.
  s.applyStats(
    stats({ seq: 4, total: 4, suspicious: 2, top_places: [place('Cheboksary', 2, 2, 'RU'), place('Bakersfield', 2, 0)] }),
  );
  v = s.view();
  assert.equal(v.total, 5);
  assert.equal(v.top[0].count, 3);
});

test('a hit already covered is not counted twice', () => {
  const s = new TrafficState();
  s.applySnapshot({ stats: stats(), visible_secs: 60, first_seq: 4, hits: [] });
  assert.equal(s.applyHits({ seq: 3, hits: [hit('A', false), hit('A', false)] }).length, 1);
  assert.equal(s.view().total, 4);
});

test('filters change what is counted and listed', () => {
  const s = new TrafficState();
  s.applySnapshot({ stats: stats(), visible_secs: 60, first_seq: 4, hits: [] });
  const susp = s.view('suspicious');
  assert.equal(susp.total, 1);
  assert.equal(susp.top.length, 1);
  assert.equal(susp.top[0].city, 'Cheboksary');
  assert.deepEqual(susp.timeline.normal, [0, 0]);
  const normal = s.view('normal');
  assert.equal(normal.total, 2);
  assert.equal(normal.suspicious, 0);
  assert.deepEqual(
    normal.top.map((p) => p.city),
    ['Bakersfield'],
  );
});

test('the normal-only list is the server\'s ranking by normal hits, not a re-cut of the overall top', () => {
  const s = new TrafficState();
  const top_normal_places = [place('Dayton', 5, 0), place('Bakersfield', 2, 0)];
  s.applySnapshot({ stats: stats({ top_normal_places }), visible_secs: 60, first_seq: 4, hits: [] });
  assert.deepEqual(
    s.view('normal').top.map((p) => p.city),
    ['Dayton', 'Bakersfield'],
  );
});

test('a new snapshot replaces everything', () => {
  const s = new TrafficState();
  s.applySnapshot({ stats: stats(), visible_secs: 60, first_seq: 4, hits: [] });
  s.applyHits({ seq: 4, hits: [hit('A', false)] });
  s.applySnapshot({ stats: stats({ seq: 0, total: 0, suspicious: 0, top_places: [], top_suspicious_places: [] }), visible_secs: 60, first_seq: 1, hits: [] });
  assert.equal(s.view().total, 0);
  assert.equal(s.view().top.length, 0);
});

test('snapshot hits are aged by the server clock', () => {
  const s = new TrafficState();
  s.applySnapshot({ stats: stats({ server_time: 1_000_000 }), visible_secs: 60, first_seq: 4, hits: [] }, 500_000);
  // Local clock runs 500 s behind the server; the hit was received 1 s before server_time.
  assert.equal(s.ageSecs({ received: 999_000 }, 500_000), 1);
});

test('two places that share a name in one country stay apart, in the list and as hits come in', () => {
  // Springfield, Illinois (key 7) and Springfield, Missouri (key 8).
  const il = { ...place('Springfield', 3, 0, 'US', 7), region: 'Illinois' };
  const mo = { ...place('Springfield', 5, 1, 'US', 8), region: 'Missouri' };
  const s = new TrafficState();
  s.applySnapshot({
    stats: stats({ top_places: [mo, il], top_suspicious_places: [mo], top_normal_places: [mo, il] }),
    visible_secs: 60,
    first_seq: 4,
    hits: [],
  });
  let top = s.view().top;
  assert.deepEqual(
    top.map((p) => [p.key, p.region, p.count]),
    [
      [8, 'Missouri', 5],
      [7, 'Illinois', 3],
    ],
  );
  // Three more for Illinois: it is now the busier one, and Missouri keeps its own count.
  s.applyHits({ seq: 4, hits: [1, 2, 3].map(() => hit('Springfield', false, 102, 'US', 7)) });
  top = s.view().top;
  assert.deepEqual(
    top.map((p) => [p.key, p.count]),
    [
      [7, 6],
      [8, 5],
    ],
  );
  // A place first seen in hits (not yet in the stats) is its own row too.
  s.applyHits({ seq: 7, hits: [hit('Springfield', true, 102, 'US', 9)] });
  assert.deepEqual(
    s.view().top.map((p) => p.key),
    [7, 8, 9],
  );
});

test('unlocated hits count in totals and by reason, are never placed, never a top place', () => {
  const s = new TrafficState();
  s.applySnapshot({
    stats: stats({ unlocated: { total: 1, by_reason: { private: 1 } }, located: { event: 3, ip: 0 } }),
    visible_secs: 60,
    first_seq: 4,
    hits_truncated: 0,
    hits: [],
  }, 1_000_000);
  const hits = s.applyHits({
    seq: 4,
    hits: [
      { ip: '127.0.0.1', timestamp: 101, suspicious: true, received: 1_000_000, located: null, unlocated: 'loopback' },
      { ip: '10.0.0.1', timestamp: 101, suspicious: false, received: 1_000_000, located: null, unlocated: 'private' },
      { ip: '8.8.8.8', timestamp: 101, suspicious: false, received: 1_000_000, located: 'ip', latitude: 1, longitude: 2, place_key: 7, city: 'Ipville', country: 'X', country_code: 'XX' },
    ],
  });
  assert.equal(hits.length, 3, 'every hit is handed on');
  assert.deepEqual(hits.map(isPlaced), [false, false, true]);
  const v = s.view('all');
  assert.equal(v.total, 6);
  assert.equal(v.suspicious, 2);
  assert.deepEqual(v.unlocated, { total: 3, byReason: { private: 2, loopback: 1 } });
  assert.deepEqual(v.located, { event: 3, ip: 1 });
  assert.ok(v.top.every((p) => p.key != null && p.city), 'no unlocated pseudo-place');
  assert.ok(v.top.some((p) => p.city === 'Ipville'));
  assert.equal(describeReasons(v.unlocated.byReason), 'private: 2, loopback: 1');
});

test('a hit is placed only with finite coordinates and located not null', () => {
  assert.equal(isPlaced({ latitude: 0, longitude: 0 }), true, 'older servers send no located');
  assert.equal(isPlaced({ latitude: 0, longitude: 0, located: null }), false);
  assert.equal(isPlaced({ located: null, unlocated: 'no_database' }), false);
  assert.equal(isPlaced({ located: 'ip', latitude: null, longitude: 3 }), false);
});

test('by bytes, places and countries rank by the bytes of their hits, stats plus hits since', () => {
  const s = new TrafficState();
  const withBytes = (p, bytes) => ({ ...p, bytes });
  s.applySnapshot(
    {
      stats: stats({
        bytes: { total: 700, events: 3 },
        top_places_by_bytes: [withBytes(place('Cheboksary', 1, 1, 'RU'), 600), withBytes(place('Bakersfield', 2, 0), 100)],
        top_countries: [
          { country_code: 'US', country: 'United States', count: 2, suspicious: 0, bytes: 100 },
          { country_code: 'RU', country: 'Russia', count: 1, suspicious: 1, bytes: 600 },
        ],
        top_countries_by_bytes: [
          { country_code: 'RU', country: 'Russia', count: 1, suspicious: 1, bytes: 600 },
          { country_code: 'US', country: 'United States', count: 2, suspicious: 0, bytes: 100 },
        ],
      }),
      visible_secs: 60,
      first_seq: 4,
      hits: [],
    },
    1_000_000,
  );
  const requests = s.view('all', { metric: 'requests' });
  assert.equal(requests.hasBytes, true);
  assert.deepEqual(requests.top.map((p) => [p.city, p.value]), [['Bakersfield', 2], ['Cheboksary', 1]]);
  assert.deepEqual(requests.countries.map((c) => [c.country_code, c.value]), [['US', 2], ['RU', 1]]);
  s.applyHits({ seq: 4, hits: [{ ...hit('Bakersfield', false), bytes: 900 }, { ...hit('Dayton', false), bytes: 50 }] });
  const bytes = s.view('all', { metric: 'bytes' });
  assert.deepEqual(bytes.top.map((p) => [p.city, p.value]), [['Bakersfield', 1000], ['Cheboksary', 600], ['Dayton', 50]]);
  assert.deepEqual(bytes.countries.map((c) => [c.country_code, c.value]), [['US', 1050], ['RU', 600]]);
  assert.deepEqual(s.view('all').countries.map((c) => [c.country_code, c.value]), [['US', 4], ['RU', 1]]);
});

test('without bytes in the stream, the bytes ranking is empty and says so', () => {
  const s = new TrafficState();
  s.applySnapshot({ stats: stats(), visible_secs: 60, first_seq: 4, hits: [] });
  s.applyHits({ seq: 4, hits: [hit('A', false)] });
  const v = s.view('all', { metric: 'bytes' });
  assert.equal(v.hasBytes, false);
  assert.deepEqual(v.top, []);
  assert.deepEqual(v.countries, []);
});

test('networks come from the stats, ranked by hits or bytes, and are absent without AS data', () => {
  const top_networks = [
    { asn: 15169, name: 'Google LLC', count: 5, suspicious: 0, bytes: 10 },
    { asn: 13335, name: 'Cloudflare, Inc.', count: 2, suspicious: 1, bytes: 900 },
    { asn: 64500, name: 'Quiet', count: 1, suspicious: 0, bytes: 0 },
  ];
  assert.deepEqual(topNetworks({ top_networks }, 10).map((n) => n.asn), [15169, 13335, 64500]);
  assert.deepEqual(topNetworks({ top_networks }, 10, 'bytes').map((n) => [n.asn, n.value]), [[13335, 900], [15169, 10]]);
  assert.deepEqual(topNetworks({ top_networks }, 1).map((n) => n.asn), [15169]);
  assert.deepEqual(topNetworks(stats(), 10), []);
  assert.deepEqual(topNetworks(null, 10), []);
});
