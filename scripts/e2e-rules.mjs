#!/usr/bin/env node
// End-to-end test of the alert rules in headless Chromium.
//
// Starts `server --alert-rules FILE` (a TOML rules file with an event rule for large UDP
// packets and the heavy-hitter rule) and `web`, opens the page, posts traffic with three
// large UDP datagrams from one address in Tokyo among others: the event rule's alert appears
// in the page's list (fired once for the address, its three matches counted), the rules are
// listed beside the alerts, and clicking the alert flies the globe to Tokyo and highlights
// exactly that address's hits on the GPU (the points' mark attribute); a second click ends
// the highlight. No console errors (a shader that does not compile would log one). Screenshot:
// artifacts/e2e-rules.png.
//
// Usage: node scripts/e2e-rules.mjs     Env: E2E_NO_BUILD=1, CHROMIUM, E2E_HEADFUL=1.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { CHROMIUM_ARGS, harness, waitFor } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'frontend', 'package.json'));
const { chromium } = require('playwright-core');

const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const h = harness('e2e-rules');
const { log, run } = h;
const cleanups = [];
const bin = (name) => join(root, 'target', 'debug', name);
const artifacts = join(root, 'artifacts');

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  log(`ok: ${message}`);
}

const RULES = `
hold_secs = 60

[[rules]]
name = "large_udp"
type = "event"
severity = "critical"
when = { all = [
  { field = "bytes", op = ">", value = 1400 },
  { field = "protocol", op = "==", value = "UDP" },
] }

[[rules]]
name = "heavy_hitter"
type = "heavy_hitter"
`;

async function main() {
  if (!process.env.E2E_NO_BUILD) {
    run('cargo', ['build', '--locked', '-p', 'server', '-p', 'web'], { cwd: root });
    run('npm', ['run', 'build', '--silent'], { cwd: join(root, 'frontend') });
  }
  const tmp = mkdtempSync(join(tmpdir(), 'e2e-rules-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const rulesFile = join(tmp, 'rules.toml');
  writeFileSync(rulesFile, RULES);
  const { upstream, base } = await h.startServerAndWeb(bin, join(root, 'frontend', 'dist'), ['--store', 'memory', '--data-dir', join(tmp, 'server'), '--alert-rules', rulesFile]);

  const userDataDir = mkdtempSync(join(tmpdir(), 'e2e-chromium-'));
  cleanups.push(() => rmSync(userDataDir, { recursive: true, force: true }));
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: !process.env.E2E_HEADFUL,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 900 },
  });
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(base, { waitUntil: 'load' });
  await waitFor('stream live', async () => (await page.getByTestId('status').textContent()) === 'live', { timeout: 60000 });
  await page.locator('#fade').fill('60');
  await page.locator('#fade').blur();

  // Traffic of now: 40 ordinary requests from around the world, and three large UDP
  // datagrams (plus one small one) from 198.51.100.7 in Tokyo.
  const now = Math.floor(Date.now() / 1000);
  const cities = [[48.8566, 2.3522], [40.7128, -74.006], [-33.8688, 151.2093], [55.7558, 37.6173], [-23.5505, -46.6333]];
  const events = [];
  for (let i = 0; i < 40; i++) {
    const [latitude, longitude] = cities[i % cities.length];
    events.push({ ip: `203.0.113.${i + 1}`, latitude, longitude, timestamp: now, suspicious: false, bytes: 2000, protocol: 'TCP' });
  }
  for (const bytes of [1500, 4096, 300, 9000]) {
    events.push({ ip: '198.51.100.7', latitude: 35.6762, longitude: 139.6503, timestamp: now, suspicious: false, bytes, protocol: 'UDP', dest_port: 53 });
  }
  const posted = await fetch(`${base}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
  check(posted.status === 202, `${events.length} events posted`);

  const alerts = page.getByTestId('alerts').locator('li');
  await waitFor('the rule\'s alert in the list', async () => (await alerts.allTextContents()).some((t) => t.includes('large udp: ip 198.51.100.7')), { timeout: 30000 });
  const listed = await (await fetch(`${base}/api/alerts`)).json();
  const ours = listed.alerts.filter((a) => a.rule === 'large_udp');
  check(ours.length === 1 && ours[0].count === 3 && ours[0].severity === 'critical', `one alert for the address, its 3 matches counted (${JSON.stringify(ours.map((a) => a.count))})`);
  await waitFor('the rules listed', async () => (await page.getByTestId('alert-rules').locator('li').count()) === 2);
  const rules = await page.getByTestId('alert-rules').locator('li').allTextContents();
  check(rules[0].startsWith('heavy_hitter') && rules[1].includes('bytes > 1400 and protocol == "UDP"'), `the rules are listed, windowed first: ${JSON.stringify(rules)}`);

  await waitFor('the list shows the matches counted since it fired', async () => (await alerts.allTextContents()).some((t) => t.includes('3 matching')), { timeout: 15000 });
  log('ok: the page\'s alert list shows the 3 matches');
  const row = alerts.filter({ hasText: 'large udp: ip 198.51.100.7' }).locator('button');
  await row.click();
  await waitFor('the globe flies to Tokyo', () => page.evaluate(() => window.__globe.view().selected === 'Tokyo'));
  const marked = await page.evaluate(() => window.__globe.marked());
  check(marked.hits === 4 && marked.alert === ours[0].id && marked.marking === 1, `the address's 4 live hits are highlighted on the GPU, no other (${JSON.stringify(marked)})`);
  await page.waitForTimeout(1500);
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'e2e-rules.png') });
  log('screenshot artifacts/e2e-rules.png');
  await row.click();
  const cleared = await page.evaluate(() => window.__globe.marked());
  check(cleared.hits === 0 && cleared.marking === 0, 'a second click ends the highlight');
  check(problems.length === 0, `no console errors${problems.length ? `: ${problems.join('; ')}` : ''}`);
}

h.main(main, cleanups);
