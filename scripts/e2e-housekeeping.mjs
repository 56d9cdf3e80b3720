#!/usr/bin/env node
// End-to-end test of the page's Housekeeping card in headless Chromium (issue 10: retention
// and housekeeping).
//
// Starts `server` (a fresh --data-dir with an admin made by the CLI, --retain 1d) and `web`,
// posts 50 events on one day of data time and 30 two days later; the admin logs in and
// sees the three jobs; "Run now" on retention deletes the older 50 (the card says so and the
// page's total drops to the 30 stored); "Run now" on daily-summary lists both days (the
// deleted one too, from the hour rollups); pausing a job turns its button into Resume; the
// request log has the admin's requests. A screenshot goes to artifacts/e2e-housekeeping.png.
//
// Usage: node scripts/e2e-housekeeping.mjs
// Env:   E2E_NO_BUILD=1 (use existing binaries and dist), CHROMIUM, E2E_HEADFUL=1.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { CHROMIUM_ARGS, addAdmin, harness, logInWithForm, waitFor } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'frontend', 'package.json'));
const { chromium } = require('playwright-core');

const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = join(root, 'artifacts');
const h = harness('e2e-housekeeping');
const { log, run } = h;
const cleanups = [];
const bin = (name) => join(root, 'target', 'debug', name);
const DAY = 86_400;
const BASE = 1_736_899_200; // 2025-01-15T00:00:00Z

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  log(`ok: ${message}`);
}

const events = (count, at) =>
  Array.from({ length: count }, (_, i) => ({ ip: `192.0.2.${i + 1}`, latitude: 48.8566, longitude: 2.3522, timestamp: at + i * 10, suspicious: i % 5 === 0 }));

async function main() {
  if (!process.env.E2E_NO_BUILD) {
    run('cargo', ['build', '--locked', '-p', 'server', '-p', 'web'], { cwd: root });
    run('npm', ['run', 'build', '--silent'], { cwd: join(root, 'frontend') });
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'e2e-housekeeping-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  check(addAdmin(bin('server'), dataDir), 'the CLI made an admin');
  const { upstream, base } = await h.startServerAndWeb(bin, join(root, 'frontend', 'dist'), ['--data-dir', dataDir, '--geoip-dir', join(dataDir, 'none'), '--retain', '1d']);
  for (const batch of [events(50, BASE + 3600), events(30, BASE + 2 * DAY + 3600)]) {
    const r = await fetch(`${upstream}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) });
    check(r.status === 202, `${batch.length} events accepted`);
  }
  await waitFor('80 events stored', async () => (await (await fetch(`${upstream}/api/stats`)).json()).total === 80);

  const browser = await chromium.launch({ executablePath: chromiumPath, headless: !process.env.E2E_HEADFUL, args: CHROMIUM_ARGS });
  cleanups.push(() => browser.close());
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(base, { waitUntil: 'load' });
  await waitFor('the log-in button', async () => (await page.getByTestId('logout').textContent()) === 'Log in');
  check(!(await page.getByTestId('jobs').isVisible()), 'without a login: no Housekeeping card (an admin\'s)');
  await page.getByTestId('logout').click();
  await logInWithForm(page, 'ann', 'admin password');
  await waitFor('the jobs', async () => (await page.locator('[data-testid="jobs"] tr').count()) === 3);
  check(true, 'the admin sees three jobs');
  await waitFor('the retention setting', async () => (await page.getByTestId('retain').inputValue()) === '1d');
  check(true, 'the retention input shows --retain 1d');

  const row = (name) => page.locator(`[data-testid="jobs"] tr[data-job="${name}"]`);
  const lastRun = async (name) => row(name).locator('td').nth(2).textContent();
  const runNow = async (name, done) => {
    await page.getByTestId(`job-run-${name}`).click();
    await waitFor(`${name} ran`, async () => {
      await page.getByTestId('housekeeping-refresh').click();
      return done(await lastRun(name));
    }, { timeout: 20000 });
    return lastRun(name);
  };
  const retention = await runNow('retention', (text) => text.includes('deleted'));
  check(/\(run now\): ok, deleted 50 events older than 2025-01-16T/.test(retention), `retention's last run: "${retention}"`);
  await waitFor('the page total drops to what is stored', async () => (await page.getByTestId('total').textContent()).replace(/[^0-9]/g, '') === '30');
  check(true, 'the page total is the 30 events left');
  const daily = await runNow('daily-summary', (text) => text.includes('summarised'));
  check(daily.includes('ok, summarised'), `daily-summary's last run: "${daily}"`);
  await waitFor('two days listed', async () => (await page.locator('[data-testid="daily"] tr').count()) === 2);
  const days = await page.locator('[data-testid="daily"] tr').allTextContents();
  check(days[0].startsWith('2025-01-1730') && days[1].startsWith('2025-01-1550'), `the days, newest first, the deleted one kept: ${JSON.stringify(days)}`);
  await page.getByTestId('job-pause-request-log-rotation').click();
  await waitFor('the Resume button', () => page.getByTestId('job-resume-request-log-rotation').isVisible());
  check((await row('request-log-rotation').locator('td').nth(1).textContent()).startsWith('paused'), 'a paused job says so and offers Resume');
  const lines = readFileSync(join(dataDir, 'requests.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const mine = lines.filter((l) => l.user === 'ann' && l.path === '/api/jobs/retention/run');
  check(mine.length === 1 && mine[0].status === 200 && mine[0].method === 'POST', `the request log has the admin's run (${lines.length} lines)`);
  mkdirSync(artifacts, { recursive: true });
  await page.locator('section.housekeeping').screenshot({ path: join(artifacts, 'e2e-housekeeping.png') });
  log('screenshot artifacts/e2e-housekeeping.png');
  check(problems.length === 0, `no page errors (${problems.join('; ')})`);
  log('PASS');
}

h.main(main, cleanups);
