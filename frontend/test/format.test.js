import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeCapture, describeRequest, formatBytes } from '../src/ui/format.js';

test('a hit without request fields describes nothing', () => {
  assert.equal(describeRequest({ ip: '1.2.3.4', timestamp: 1 }), '');
});

test('request fields are described in one plain line, long paths shortened', () => {
  assert.equal(
    describeRequest({ method: 'GET', path: '/.env', status: 404, bytes: 1514, protocol: 'HTTP', dest_ip: '10.0.0.1' }),
    'GET /.env → 404 · 1.5 kB · HTTP · to 10.0.0.1',
  );
  assert.equal(describeRequest({ bytes: 12, protocol: 'UDP' }), '12 B · UDP');
  assert.equal(
    describeRequest({ bytes: 120, packets: 2, protocol: 'UDP', src_port: 40000, dest_ip: '10.0.0.1', dest_port: 53 }),
    '120 B · 2 packets · UDP from port 40000 · to 10.0.0.1:53',
  );
  assert.equal(describeRequest({ packets: 1, dest_port: 22 }), '1 packet · to port 22');
  const line = describeRequest({ path: `/${'a'.repeat(500)}` });
  assert.ok(line.length <= 60 && line.endsWith('…'), line);
  assert.equal(formatBytes(3_200_000), '3.2 MB');
});

test('a hit with a network names it in the tooltip', () => {
  assert.equal(describeRequest({ asn: 15169, as_name: 'Google LLC' }), 'AS15169 Google LLC');
  assert.equal(describeRequest({ bytes: 10, asn: 64500 }), '10 B · AS64500');
});

test('capture counters say how many packets were captured and why any were dropped', () => {
  assert.equal(describeCapture(null), '');
  assert.equal(
    describeCapture({ captured: 1234, kernel_dropped: 0, interface_dropped: 0, queue_dropped: 0, dropped: 0 }),
    '1,234 packets captured · none dropped',
  );
  assert.equal(
    describeCapture({ captured: 10, kernel_dropped: 3, interface_dropped: 0, queue_dropped: 2, dropped: 5, not_sent: 1 }),
    '10 packets captured · 5 dropped (kernel 3, queue 2) · 1 not sent',
  );
});
