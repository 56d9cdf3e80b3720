import { test } from 'node:test';
import assert from 'node:assert/strict';

import { resumeUrl } from '../src/data/stream.js';

test('a reopened stream asks to resume after the last id it saw', () => {
  assert.equal(resumeUrl('/api/stream', ''), '/api/stream');
  assert.equal(resumeUrl('/api/stream', '1a2b-42'), '/api/stream?last_event_id=1a2b-42');
  assert.equal(resumeUrl('/api/stream?x=1', 'a b'), '/api/stream?x=1&last_event_id=a%20b');
});
