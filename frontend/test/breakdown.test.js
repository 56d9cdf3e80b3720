import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeDocument } from './fakedom.js';
import { breakdowns, describeBytes, renderBreakdown, MIX_PROTOCOLS } from '../src/ui/breakdown.js';

const plain = { top_protocols: [], other_protocols: 0, status_classes: {}, bytes: { total: 0, events: 0 } };

test('stats of hits without protocol, status or bytes show no mix', () => {
  assert.equal(breakdowns(plain), null);
  assert.equal(breakdowns(null), null);
  // A server from before these fields.
  assert.equal(breakdowns({ total: 5 }), null);
});

test('protocols beyond the listed few and the server\'s own "other" are summed as other', () => {
  const top_protocols = Array.from({ length: MIX_PROTOCOLS + 2 }, (_, i) => ({ name: `P${i}`, count: 100 - i }));
  const mix = breakdowns({ ...plain, top_protocols, other_protocols: 5 });
  assert.equal(mix.protocols.length, MIX_PROTOCOLS + 1);
  assert.deepEqual(mix.protocols[0], { name: 'P0', count: 100 });
  assert.deepEqual(mix.protocols.at(-1), { name: 'other', count: 100 - MIX_PROTOCOLS + 100 - MIX_PROTOCOLS - 1 + 5 });
});

test('status classes come in order, only the 1xx-5xx seen, and bytes are described', () => {
  const mix = breakdowns({ ...plain, status_classes: { '5xx': 1, '2xx': 40, '4xx': 7, bogus: 3 }, bytes: { total: 1_500_000, events: 12 } });
  assert.deepEqual(mix.statuses, [
    { name: '2xx', count: 40 },
    { name: '4xx', count: 7 },
    { name: '5xx', count: 1 },
  ]);
  assert.equal(describeBytes(mix.bytes), '1.5 MB in 12 hits');
  assert.equal(describeBytes({ total: 0, events: 0 }), '');
});

test('the mix is painted as text, long names shortened, rows reused and trimmed', () => {
  const doc = fakeDocument();
  const el = { card: doc.createElement('section'), protocols: doc.createElement('ul'), statuses: doc.createElement('ul'), bytes: doc.createElement('p') };
  const name = '<b>' + 'x'.repeat(40);
  renderBreakdown(el, breakdowns({ ...plain, top_protocols: [{ name, count: 1234 }, { name: 'UDP', count: 2 }], status_classes: { '4xx': 3 } }), doc);
  assert.equal(el.card.hidden, false);
  assert.equal(el.protocols.children.length, 2);
  const [first] = el.protocols.children;
  assert.equal(first.children[0].textContent.length, 16);
  assert.ok(first.children[0].textContent.startsWith('<b>') && first.children[0].children[0].tagName === '#text');
  assert.equal(first.children[1].textContent, '1,234');
  assert.equal(el.statuses.textContent, '4xx3');
  assert.equal(el.bytes.hidden, true);
  const row = el.protocols.children[0];
  renderBreakdown(el, breakdowns({ ...plain, top_protocols: [{ name: 'TCP', count: 9 }] }), doc);
  assert.equal(el.protocols.children.length, 1);
  assert.equal(el.protocols.children[0], row, 'the row is reused');
  assert.equal(el.protocols.textContent, 'TCP9');
  assert.equal(el.statuses.hidden, true);
  renderBreakdown(el, null, doc);
  assert.equal(el.card.hidden, true);
});
