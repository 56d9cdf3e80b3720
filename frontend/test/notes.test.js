import { test } from 'node:test';
import assert from 'node:assert/strict';
import { notesFor } from '../src/ui/notes.js';

const Y2199 = 7_226_582_400; // 2199-01-01 00:00:00 UTC

test('no notes about the data clock while nothing is off it', () => {
  assert.deepEqual(notesFor({ outliers: 0, pending: 0, clockJumps: 0, tooOld: 0, lastOutlier: null }), []);
});

test('an outlier is named with its date, counted but not on the timeline', () => {
  const notes = notesFor({ outliers: 1, pending: 0, clockJumps: 0, tooOld: 0, lastOutlier: Y2199 });
  assert.deepEqual(notes, [
    '1 hit far from the data clock (latest dated 2199-01-01 00:00:00 UTC), counted but not on the timeline',
  ]);
});

test('pending hits, outliers and clock jumps each get their note; the date goes with the pending', () => {
  const notes = notesFor({ outliers: 2, pending: 3, clockJumps: 1, tooOld: 1, lastOutlier: Y2199 });
  assert.deepEqual(notes, [
    '2 hits far from the data clock, counted but not on the timeline',
    '3 hits off the data clock (latest dated 2199-01-01 00:00:00 UTC), held off the timeline until more of that era arrive',
    'data clock jumped 1× to a new era (replay restarted?), timeline restarted',
  ]);
});

test('hits older than the timeline are told apart only beyond the outliers', () => {
  assert.deepEqual(notesFor({ tooOld: 4 }), ['4 hits older than the timeline']);
  assert.deepEqual(notesFor({ tooOld: 1, outliers: 1 }), ['1 hit far from the data clock, counted but not on the timeline']);
});
