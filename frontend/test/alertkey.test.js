import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkLabel, alertMatcher, describeCondition, describeRule } from '../src/data/alertkey.js';
import { describeAlert } from '../src/ui/alerts.js';

test('networks are labelled as the server labels them: /24 for IPv4, /48 for IPv6', () => {
  assert.equal(networkLabel('198.51.100.77'), '198.51.100.0/24');
  assert.equal(networkLabel('2001:db8:aa:bb::1'), '2001:db8:aa::/48');
  assert.equal(networkLabel('2001:db8::1'), '2001:db8::/48');
  assert.equal(networkLabel('::1'), '::/48');
  assert.equal(networkLabel('junk'), null);
});

test("an alert's matcher picks the hits of its key, by kind", () => {
  const hits = [
    { ip: '192.0.2.7', country_code: 'FR', place_key: 3, city: 'Paris', protocol: 'SSH', status: 503, suspicious: true },
    { ip: '192.0.2.9', country_code: 'DE', place_key: 4, city: 'Berlin', status: 200 },
    { ip: '198.51.100.1', country_code: 'fr', place_key: 3, city: 'Paris' },
  ];
  const picked = (alert) => hits.filter(alertMatcher(alert)).map((h) => h.ip);
  assert.deepEqual(picked({ kind: 'ip', key: '192.0.2.9' }), ['192.0.2.9']);
  assert.deepEqual(picked({ kind: 'network', key: '192.0.2.0/24' }), ['192.0.2.7', '192.0.2.9']);
  assert.deepEqual(picked({ kind: 'country', key: 'FR' }), ['192.0.2.7', '198.51.100.1']);
  assert.deepEqual(picked({ kind: 'place', key: 'Paris', place: { key: 3 } }), ['192.0.2.7', '198.51.100.1']);
  assert.deepEqual(picked({ kind: 'protocol', key: 'SSH' }), ['192.0.2.7']);
  assert.deepEqual(picked({ kind: 'status', key: '5xx' }), ['192.0.2.7']);
  assert.deepEqual(picked({ type: 'suspicious_share', rule: 'suspicious_share' }), ['192.0.2.7']);
  assert.equal(alertMatcher({ type: 'rate_jump', rule: 'rate_jump' }), null);
});

test('conditions read as the issue writes them', () => {
  const when = {
    all: [
      { field: 'bytes', op: '>', value: 1400 },
      { any: [{ field: 'protocol', op: 'in', value: ['UDP', 'ICMP'] }, { not: { field: 'suspicious' } }] },
    ],
  };
  assert.equal(describeCondition(when), 'bytes > 1400 and (protocol in ["UDP", "ICMP"] or not suspicious)');
  assert.equal(describeCondition({ field: 'dest_port', op: 'not_in', value: [22] }), 'dest_port not in [22]');
  assert.equal(
    describeRule({ name: 'ssh', type: 'event', at_least: 10, when: { field: 'protocol', op: '==', value: 'SSH' } }),
    '10× protocol == "SSH" · per ip',
  );
  assert.equal(describeRule({ name: 'r', type: 'rate_jump' }), 'rate above 3× its last 300 s');
});

test('an event alert says its matches, a rate jump its ratio, a renamed rule its name', () => {
  const event = describeAlert({ rule: 'ssh_brute_force', type: 'event', kind: 'ip', key: '192.0.2.7', count: 12, peak: 12, state: 'firing' });
  assert.deepEqual(event, { title: 'ssh brute force: ip 192.0.2.7', detail: '12 matching · firing' });
  const jump = describeAlert({ rule: 'rate_jump', type: 'rate_jump', peak: 4.25, state: 'resolved', severity: 'critical' });
  assert.deepEqual(jump, { title: 'rate jump: all traffic', detail: '4.3× the baseline at peak · resolved · critical' });
  const old = describeAlert({ rule: 'heavy_hitter', kind: 'network', key: '192.0.2.0/24', peak: 0.25, state: 'firing' });
  assert.equal(old.title, 'heavy hitter: network 192.0.2.0/24');
});

import { createRuleList } from '../src/ui/rules.js';
import { createAlertList } from '../src/ui/alerts.js';
import { fakeDocument } from './fakedom.js';

test('the rules are listed windowed first, each with what it watches and its firing count', () => {
  const doc = fakeDocument();
  const list = doc.createElement('ul');
  createRuleList(list, doc).render({
    hold_secs: 10,
    rules: [
      { name: 'probe_path', type: 'event', severity: 'warning', when: { field: 'path', op: 'matches', value: '^/wp-' } },
      { name: 'heavy_hitter', type: 'heavy_hitter', severity: 'critical' },
    ],
    status: [{ name: 'probe_path', type: 'event', firing: 2, matched: 5, untracked: 0 }],
  });
  assert.equal(list.hidden, false);
  const rows = list.children.map((li) => li.children.map((s) => s.textContent));
  assert.deepEqual(rows, [
    ['heavy_hitter', 'above H% of the window · ip, network'],
    ['probe_path', 'path matches "^/wp-" · per ip · 2 firing'],
  ]);
  assert.match(list.children[0].className, /windowed critical/);
  assert.equal(list.children[1].getAttribute('data-rule'), 'probe_path');
});

test('an alert with a key but no place can still be clicked (to find its hits); one with neither cannot', () => {
  const doc = fakeDocument();
  const list = doc.createElement('ol');
  const clicked = [];
  createAlertList(list, { onAlertClick: (a) => clicked.push(a.id) }, doc).render([
    { id: 2, rule: 'heavy_hitter', type: 'heavy_hitter', kind: 'ip', key: '192.0.2.7', peak: 0.2, state: 'firing' },
    { id: 1, rule: 'rate_jump', type: 'rate_jump', peak: 4, state: 'firing' },
  ]);
  const [keyed, whole] = list.children.map((li) => li.children[0]);
  assert.equal(keyed.disabled, false);
  assert.equal(whole.disabled, true);
  keyed.dispatch('click');
  assert.deepEqual(clicked, [2]);
});
