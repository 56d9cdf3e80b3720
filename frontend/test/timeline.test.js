import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lastSeconds, bin, peaks } from '../src/data/timeline.js';

test('the last seconds combine server buckets with hits seen since', () => {
  const timeline = { start: 100, normal: [1, 2, 3], suspicious: [0, 1, 0] };
  const extra = new Map([
    [102, [1, 0]],
    [104, [0, 2]],
  ]);
  const s = lastSeconds(timeline, extra, 600);
  assert.equal(s.start, 100);
  assert.deepEqual(s.normal, [1, 2, 4, 0, 0]);
  assert.deepEqual(s.suspicious, [0, 1, 0, 0, 2]);
});

test('only the last span seconds are kept', () => {
  const timeline = { start: 0, normal: [5, 5, 5, 5], suspicious: [0, 0, 0, 1] };
  const s = lastSeconds(timeline, new Map(), 2);
  assert.equal(s.start, 2);
  assert.deepEqual(s.normal, [5, 5]);
  assert.deepEqual(s.suspicious, [0, 1]);
});

test('no data gives an empty series', () => {
  assert.deepEqual(lastSeconds(null, new Map(), 600), { start: null, normal: [], suspicious: [] });
  assert.deepEqual(lastSeconds({ start: null, normal: [], suspicious: [] }, new Map(), 60).normal, []);
});

test('bins sum whole seconds and end at the latest second', () => {
  const series = { start: 10, normal: [1, 1, 1, 1, 1], suspicious: [0, 0, 1, 0, 1] };
  const b = bin(series, 6, 3); // 2 s per bar: [9,10] [11,12] [13,14]
  assert.equal(b.binSecs, 2);
  assert.equal(b.start, 9);
  assert.deepEqual(b.normal, [1, 2, 2]);
  assert.deepEqual(b.suspicious, [0, 1, 1]);
  assert.equal(b.max, 3);
});

test('peaks are the highest local values, kept apart', () => {
  const values = [0, 9, 8, 0, 0, 0, 7, 0, 0, 3];
  assert.deepEqual(peaks(values, 3, 3), [1, 6, 9]);
  assert.deepEqual(peaks([0, 0], 3), []);
});
