import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Clusters, MarkerFeed, cellKey } from '../src/data/merge.js';
import { FADE_MAX, POINT_CAPACITY } from '../src/config.js';

const hit = (lat, lon, suspicious = false, ip = '1.2.3.4', timestamp = 100) => ({
  latitude: lat,
  longitude: lon,
  suspicious,
  ip,
  timestamp,
  city: 'Bakersfield',
  country: 'United States',
  country_code: 'US',
});

test('the same and nearby coordinates share a cell; far ones do not', () => {
  assert.equal(cellKey(35.3696, -119.0105), cellKey(35.3696, -119.0105));
  assert.equal(cellKey(35.3, -119.2), cellKey(35.4, -119.0));
  assert.notEqual(cellKey(35.3, -119.0), cellKey(56.1, 47.4));
  assert.notEqual(cellKey(0, 179.9), cellKey(0, -179.9));
});

test('the merge rule is a fixed 0.75° grid: far apart in one cell merge, close across an edge do not', () => {
  // 0.70° apart, both inside the cell [35.25, 36) x [-119.25, -118.5).
  assert.equal(cellKey(35.26, -119.24), cellKey(35.96, -118.54));
  // 0.02° apart, on either side of the edge at latitude 35.25.
  assert.notEqual(cellKey(35.24, -119), cellKey(35.26, -119));
});

test('hits in one cell merge into one marker counting normal, suspicious and IPs', () => {
  const c = new Clusters();
  c.add(hit(35.3696, -119.0105, false, 'a'), 0);
  c.add(hit(35.3696, -119.0105, true, 'b'), 0.5);
  c.add(hit(35.3696, -119.0105, false, 'a'), 1);
  c.add(hit(56.1, 47.4), 1);
  const list = c.list();
  assert.equal(list.length, 2);
  assert.equal(list[0].normal + list[0].suspicious, 3, 'busiest first');
  assert.equal(list[0].suspicious, 1);
  assert.equal(list[0].ips.size, 2);
  assert.equal(c.live, 4);
});

test('the marker sits at the mean of its hits', () => {
  const c = new Clusters(1);
  c.add(hit(10.2, 20.2), 0);
  c.add(hit(10.4, 20.6), 0);
  const [m] = c.list();
  assert.ok(Math.abs(m.lat - 10.3) < 1e-9);
  assert.ok(Math.abs(m.lon - 20.4) < 1e-9);
});

test('hits older than the window expire and empty markers disappear', () => {
  const c = new Clusters();
  c.add(hit(35, -119, false, 'a'), 0);
  c.add(hit(35, -119, true, 'b'), 5);
  c.add(hit(56, 47), 9);
  assert.equal(c.expire(12, 10), -1, 'only the hit at t=0 is older than 2 s');
  let [bakersfield] = c.list('all').filter((m) => m.lat < 40);
  assert.equal(bakersfield.normal, 0);
  assert.equal(bakersfield.suspicious, 1);
  assert.equal(c.expire(16, 10), -1);
  assert.equal(c.list().length, 1);
  assert.equal(c.live, 1);
});

test('filters rank and hide markers by the matching count', () => {
  const c = new Clusters();
  c.add(hit(35, -119, false), 0);
  c.add(hit(35, -119, false), 0);
  c.add(hit(56, 47, true), 0);
  assert.equal(c.list('suspicious').length, 1);
  assert.ok(c.list('suspicious')[0].lat > 50);
  assert.equal(c.list('normal').length, 1);
  assert.equal(c.list('all', 1).length, 1);
});

test('widening the window brings back remembered hits; shrinking drops them again', () => {
  const c = new Clusters(0.75, { maxWindow: 60, capacity: 100 });
  c.add(hit(35, -119, false, 'a'), 0);
  c.add(hit(56, 47, true, 'b'), 20);
  assert.equal(c.expire(25, 10), -1);
  assert.equal(c.list().length, 1);
  assert.equal(c.expire(25, 60), 1, 'the hit at t=0 is back');
  assert.equal(c.list().length, 2);
  assert.equal(c.list('suspicious').length, 1);
  assert.equal(c.expire(25, 10), -1);
  assert.equal(c.live, 1);
});

test('hits older than the longest window, or beyond the capacity, are forgotten', () => {
  const c = new Clusters(0.75, { maxWindow: 60, capacity: 3 });
  for (let t = 0; t < 5; t++) c.add(hit(35, -119, false, `ip${t}`), t);
  c.expire(5, 1); // counts only t >= 4
  assert.equal(c.live, 1);
  assert.equal(c.expire(5, 60), 2, 'only the newest three are remembered');
  assert.equal(c.live, 3);
  c.expire(100, 1);
  assert.equal(c.expire(100, 60), 0, 'too old for any window');
});

// The reported case: 10 minutes at 300 hits/s, 180,000 hits in all.
const RATE = 300;
const PAUSE_SECS = 600;

test('through a 10-minute pause at 300 hits/s the feed keeps expiring: memory stays at the longest window, the picture holds still', () => {
  const clusters = new Clusters();
  const feed = new MarkerFeed(clusters);
  const view = { fade: 10, filter: 'all' };
  let now = 0; // a fake page clock, seconds
  assert.ok(feed.refresh(now, view), 'drawn while running');
  feed.paused = true;
  let most = 0;
  let n = 0;
  // The page refreshes every 250 ms; hits arrive in between.
  for (let tick = 1; tick <= PAUSE_SECS * 4; tick++) {
    for (let i = 0; i < RATE / 4; i++) clusters.add(hit(35, -119, false, `ip${n++ % 1000}`), now + i / RATE);
    now = tick / 4;
    assert.equal(feed.refresh(now, view), null, 'nothing redrawn while paused');
    most = Math.max(most, clusters.retained);
  }
  assert.equal(n, 180_000);
  assert.ok(most <= (FADE_MAX + 0.25) * RATE, `held ${most} hits, at most the longest fade window's`);
  assert.equal(clusters.live, view.fade * RATE, 'exactly the last fade window is counted');
  assert.equal(clusters.leftOut, 0, 'nothing left out: the rest had faded');
  feed.paused = false;
  const drawn = feed.refresh(now, view);
  assert.equal(drawn.length, 1);
  assert.equal(drawn[0].normal, view.fade * RATE, 'resume draws the hits of the last fade window at once');
});

test('without any expiry (a paused or hidden page) the hits held never pass the capacity', () => {
  const clusters = new Clusters();
  clusters.expire(0, 10);
  let n = 0;
  for (let t = 0; t < PAUSE_SECS; t += 1 / RATE) clusters.add(hit(35, -119, n % 2 === 0, `ip${n++ % 1000}`), t);
  assert.ok(n >= 180_000);
  assert.equal(clusters.retained, POINT_CAPACITY);
  assert.equal(clusters.leftOut, 0, 'what made room had long faded');
  assert.equal(clusters.live, POINT_CAPACITY, 'counted until the next expiry');
  clusters.expire(PAUSE_SECS, 10);
  assert.ok(Math.abs(clusters.live - 10 * RATE) <= 1, 'the next expiry counts the last window');
});

test('more hits inside the window than the capacity: the oldest make room and are counted as left out', () => {
  const clusters = new Clusters(0.75, { maxWindow: 60, capacity: 1000 });
  clusters.expire(0, 10);
  for (let i = 0; i < 3000; i++) clusters.add(hit(35, -119, false, `ip${i}`), i / 1000);
  assert.equal(clusters.retained, 1000);
  assert.equal(clusters.live, 1000);
  assert.equal(clusters.leftOut, 2000);
  const [marker] = clusters.list();
  assert.equal(marker.normal, 1000, 'the marker counts what is held, the rest is reported');
  assert.equal(marker.ips.size, 1000);
  clusters.clear();
  assert.equal(clusters.leftOut, 0, 'a snapshot starts the count over');
});
