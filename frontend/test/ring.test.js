import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RingCursor } from '../src/data/ring.js';

test('slots are claimed in order and uploaded as one range', () => {
  const ring = new RingCursor(8);
  assert.deepEqual([ring.claim(), ring.claim(), ring.claim()], [0, 1, 2]);
  assert.deepEqual(ring.flush(), [[0, 3]]);
  assert.deepEqual(ring.flush(), [], 'nothing new, nothing to upload');
});

test('wrapping around gives two ranges: the tail and the start', () => {
  const ring = new RingCursor(4);
  ring.claim();
  ring.claim();
  ring.claim();
  ring.flush();
  assert.deepEqual([ring.claim(), ring.claim(), ring.claim()], [3, 0, 1]);
  assert.deepEqual(ring.flush(), [
    [3, 1],
    [0, 2],
  ]);
});

test('writing more than the capacity in one go uploads the whole buffer once', () => {
  const ring = new RingCursor(4);
  for (let i = 0; i < 11; i++) ring.claim();
  assert.deepEqual(ring.flush(), [[0, 4]]);
  assert.equal(ring.written, 11);
  assert.equal(ring.head, 3);
});

test('reset marks everything for upload and starts over', () => {
  const ring = new RingCursor(4);
  ring.claim();
  ring.reset();
  assert.deepEqual(ring.flush(), [[0, 4]]);
  assert.equal(ring.claim(), 0);
});
