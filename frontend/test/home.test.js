import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHome, chooseHome, formatHome } from '../src/ui/home.js';
import { arcParameters } from '../src/data/arcs.js';

test('a home is two numbers in range, by comma or space', () => {
  assert.deepEqual(parseHome('52.52, 13.405'), { latitude: 52.52, longitude: 13.405 });
  assert.deepEqual(parseHome(' -33.9 151.2 '), { latitude: -33.9, longitude: 151.2 });
  for (const bad of ['', '52.52', '91,0', '0,-181', 'a,b', '1,2,3', null]) assert.equal(parseHome(bad), null, String(bad));
  assert.equal(formatHome({ latitude: 1, longitude: 2 }), '1, 2');
  assert.equal(formatHome(null), '');
});

test('the page\'s own home wins over the server\'s, which is used when the page has none', () => {
  const page = { latitude: 1, longitude: 2 };
  const server = { latitude: 52.52, longitude: 13.405 };
  assert.deepEqual(chooseHome(page, server), page);
  assert.deepEqual(chooseHome(null, server), server);
  assert.equal(chooseHome(null, null), null);
  assert.equal(chooseHome(null, { latitude: 'x', longitude: 1 }), null);
});

test('an arc is drawn as segments that run from the place (0) to home (1) without gaps', () => {
  const t = Array.from(arcParameters(4));
  assert.deepEqual(t, [0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1]);
});
