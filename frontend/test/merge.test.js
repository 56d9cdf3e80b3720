import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Clusters, cellKey } from '../src/data/merge.js';

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
