#!/usr/bin/env node
// End-to-end test of the page's past windows in headless Chromium (issue 10's browser tests).
//
// Starts `server` (a temp --data-dir, no IP database) and `web`, replays a known CSV through
// `sender`, and on the page: drags over the activity timeline and picks the "5 min" preset,
// each time checking that the counters and the top list equal /api/history for that window and
// a brute-force count of the file's rows in it (and, filtered to suspicious, the suspicious
// ones); exports the window as CSV and JSON lines
// (downloads equal to the API's export byte for byte); replays the window at x60 until every
// hit of it was drawn, the data clock showing the replay's time; sends more events while the
// window is shown and goes back to Live (the page then counts them all, as a page opened
// afresh does); and keeps the page open across a server restart (same data dir): its counts
// stay, and it resumes (events sent after the restart are counted once). Screenshots go to
// artifacts/e2e-history-*.png.
//
// Usage: node scripts/e2e-history.mjs [CSV]   (default data/sample.csv)
// Env:   E2E_NO_BUILD=1 (use existing binaries and dist), CHROMIUM, E2E_HEADFUL=1.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { CHROMIUM_ARGS, freePort, harness, waitFor } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'frontend', 'package.json'));
const { chromium } = require('playwright-core');

const csvPath = resolve(process.argv[2] || join(root, 'data', 'sample.csv'));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = join(root, 'artifacts');
mkdirSync(artifacts, { recursive: true });
const h = harness('e2e-history');
const { log, run, start } = h;
const cleanups = [];
const bin = (name) => join(root, 'target', 'debug', name);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  log(`ok: ${message}`);
}

/** The file's usable rows: {timestamp, suspicious, lat, lon} (a brute-force oracle). */
function rowsOf(path) {
  const lines = readFileSync(path, 'utf8').replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l.trim());
  const header = lines[0].split(',').map((x) => x.trim().toLowerCase());
  const col = (...names) => header.findIndex((x) => names.includes(x));
  const [lat, lon, ts, susp] = [col('latitude'), col('longitude'), col('timestamp'), col('suspicious')];
  const rows = [];
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    const t = Number(f[ts]);
    if (!Number.isFinite(t) || !Number.isFinite(Number(f[lat])) || !Number.isFinite(Number(f[lon]))) continue;
    const s = (f[susp] ?? '').trim().toLowerCase();
    rows.push({ timestamp: t, suspicious: s === '1' || s === '1.0' || s === 'true', lat: Number(f[lat]), lon: Number(f[lon]) });
  }
  return rows;
}

/** Brute force: rows with from <= timestamp < to (an open end is open). */
function countIn(rows, { from, to }) {
  const inside = rows.filter((r) => (from == null || r.timestamp >= from) && (to == null || r.timestamp < to));
  return { total: inside.length, suspicious: inside.filter((r) => r.suspicious).length };
}

const numberOf = async (page, id) => Number((await page.getByTestId(id).textContent()).replace(/[^0-9.]/g, ''));

function query(range, extra = {}) {
  const q = new URLSearchParams();
  if (range.from != null) q.set('from', String(range.from));
  if (range.to != null) q.set('to', String(range.to));
  for (const [k, v] of Object.entries(extra)) q.set(k, String(v));
  return q.toString();
}

/** The page shows `range` as the API and the file count it: counters and top list. */
async function checkWindow(page, base, rows, what) {
  const shown = await waitFor(`${what}: window loaded`, () => page.evaluate(() => {
    const p = window.__globe.past();
    return p.mode === 'past' && p.summary && p.complete ? p : null;
  }));
  const range = shown.range;
  const api = await (await fetch(`${base}/api/history?${query(range, { limit: 1 })}`)).json();
  const brute = countIn(rows, range);
  log(`${what}: range`, range, 'api', { total: api.summary.total, suspicious: api.summary.suspicious }, 'file', brute);
  check(api.summary.total === brute.total && api.summary.suspicious === brute.suspicious, `${what}: the API counts the file's rows of the window (${brute.total}, ${brute.suspicious} suspicious)`);
  check(brute.total > 0 && brute.total < rows.length, `${what}: the window holds some but not all rows`);
  await waitFor(`${what}: page total`, async () => (await numberOf(page, 'total')) === brute.total);
  check((await numberOf(page, 'suspicious')) === brute.suspicious, `${what}: the page shows ${brute.total} hits, ${brute.suspicious} suspicious`);
  const first = await page.getByTestId('top-locations').locator('li').first().textContent();
  const top = api.summary.top_places[0];
  check(first.startsWith(top.city) && first.includes(String(top.count)), `${what}: the top location is the API's (${top.city}, ${top.count})`);
  check(shown.drawn === shown.loaded && shown.loaded === brute.total, `${what}: the globe draws every hit of the window (${shown.drawn})`);
  return range;
}

/** Sends `n` events dated after the file, at the busiest row's place; returns them. */
async function sendMore(base, rows, n, offset) {
  const last = Math.max(...rows.map((r) => r.timestamp));
  const events = Array.from({ length: n }, (_, i) => ({
    ip: `192.0.2.${(offset + i) % 250}`,
    latitude: rows[0].lat,
    longitude: rows[0].lon,
    timestamp: last + offset + i + 1,
    suspicious: i % 2 === 0,
  }));
  const response = await fetch(`${base}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
  check(response.status === 202, `${n} more events accepted`);
  return events;
}

async function main() {
  const rows = rowsOf(csvPath);
  log(`csv ${csvPath}: ${rows.length} rows`);
  if (!process.env.E2E_NO_BUILD) {
    run('cargo', ['build', '--locked', '-p', 'server', '-p', 'web', '-p', 'sender'], { cwd: root });
    run('npm', ['run', 'build', '--silent'], { cwd: join(root, 'frontend') });
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'e2e-history-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const serverPort = await freePort();
  const webPort = await freePort();
  const upstream = `http://127.0.0.1:${serverPort}`;
  const base = `http://127.0.0.1:${webPort}`;
  const serverArgs = ['--listen', `127.0.0.1:${serverPort}`, '--data-dir', dataDir, '--geoip-dir', join(dataDir, 'none')];
  let server = start('server', bin('server'), serverArgs);
  start('web', bin('web'), ['--listen', `127.0.0.1:${webPort}`, '--upstream', upstream, '--dist', join(root, 'frontend', 'dist')]);
  await waitFor('server /healthz', async () => (await fetch(`${upstream}/healthz`)).ok, { timeout: 60000 });
  await waitFor('web /healthz', async () => (await fetch(`${base}/healthz`)).ok);

  const sent = await new Promise((ok, fail) => {
    const child = spawn(bin('sender'), ['--url', base, '--speed', '1000', csvPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', fail);
    child.on('exit', (status) => ok({ status, output }));
  });
  check(sent.status === 0, `the sender delivered every row (${sent.output.trim().split('\n').pop()})`);

  const userDataDir = mkdtempSync(join(tmpdir(), 'e2e-history-chromium-'));
  cleanups.push(() => rmSync(userDataDir, { recursive: true, force: true }));
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: !process.env.E2E_HEADFUL,
    viewport: { width: 1600, height: 900 },
    args: CHROMIUM_ARGS,
    acceptDownloads: true,
  });
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(base, { waitUntil: 'load' });
  await waitFor('stream live', async () => (await page.getByTestId('status').textContent()) === 'live');
  await waitFor('page total == rows', async () => (await numberOf(page, 'total')) === rows.length);
  check((await page.getByTestId('live').getAttribute('aria-pressed')) === 'true', 'the page starts live');

  // 1. Drag over the timeline: from a quarter to 60% of its width.
  const box = await page.getByTestId('timeline').boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.25, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.45, y, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.6, y, { steps: 5 });
  await page.mouse.up();
  const dragged = await checkWindow(page, base, rows, 'dragged window');
  check((await page.getByTestId('live').getAttribute('aria-pressed')) === 'false', 'the Live control shows the page is not live');
  check((await page.getByTestId('range-state').textContent()).startsWith('past:'), 'the range bar says a past window is shown');
  await page.screenshot({ path: join(artifacts, 'e2e-history-window.png') });

  // The page's filter applies to the window: Suspicious asks the API again.
  await page.locator('[data-filter="suspicious"]').click();
  const suspicious = countIn(rows.filter((r) => r.suspicious), dragged).total;
  const apiSuspicious = (await (await fetch(`${base}/api/history?${query(dragged, { suspicious: true, limit: 1 })}`)).json()).summary.total;
  await waitFor('suspicious window', async () => (await numberOf(page, 'total')) === suspicious);
  check(apiSuspicious === suspicious, `filtered to suspicious, the page shows the window's ${suspicious} suspicious hits (API and file)`);
  check((await page.getByTestId('export-csv').getAttribute('href')).includes('suspicious=true'), 'the export link carries the filter');
  await page.locator('[data-filter="all"]').click();
  await waitFor('whole window again', async () => (await numberOf(page, 'total')) === countIn(rows, dragged).total);

  // 2. Export: the downloads equal the API's export of the same window.
  for (const [id, format] of [['export-csv', 'csv'], ['export-jsonl', 'jsonl']]) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId(id).click()]);
    const file = readFileSync(await download.path());
    const api = Buffer.from(await (await fetch(`${base}/api/history/export?${query(dragged, { format })}`)).arrayBuffer());
    check(file.length > 0 && file.equals(api), `the ${format} download equals the API's export (${file.length} bytes)`);
    const lines = file.toString('utf8').trim().split('\n').length;
    const brute = countIn(rows, dragged).total;
    check(lines === brute + (format === 'csv' ? 1 : 0), `the ${format} export holds the window's ${brute} rows`);
  }

  // 3. The "5 min" preset: the last 300 s of the data clock.
  await page.locator('[data-preset="5m"]').click();
  const preset = await checkWindow(page, base, rows, '5 min preset');
  const latest = Math.max(...rows.map((r) => r.timestamp));
  check(preset.to === Math.floor(latest) + 1 && preset.from === preset.to - 300, 'the preset ends at the data clock and reaches back 300 s');

  // 4. Replay the window at x60 (5 s of wall time): every hit drawn at its time, the data
  // clock (the panel's) at the replay's position, inside the window while it plays.
  await page.getByTestId('replay-speed').selectOption('60');
  await page.getByTestId('replay-play').click();
  const total = countIn(rows, preset).total;
  const mid = await waitFor('replay under way', () => page.evaluate(() => {
    const p = window.__globe.past();
    return p.replay?.played > 0 ? { ...p.replay, clock: document.getElementById('data-clock').textContent } : null;
  }));
  const fmt = (t) => `${new Date(Math.floor(t) * 1000).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  check(mid.played < total && mid.position > preset.from && mid.position < preset.to, `mid-replay: ${mid.played} of ${total} drawn, the replay at ${fmt(mid.position)}`);
  check(mid.clock >= fmt(preset.from) && mid.clock < fmt(preset.to), `mid-replay the data clock shows a time inside the window (${mid.clock})`);
  await page.screenshot({ path: join(artifacts, 'e2e-history-replay.png') });
  const done = await waitFor('replay played every hit', () => page.evaluate((n) => {
    const p = window.__globe.past();
    return p.replay?.done ? p : null;
  }, total), { timeout: 30000 });
  check(done.replay.played === total && done.drawn === total, `the replay drew every hit of the window (${done.drawn}) and is done`);
  check((await page.getByTestId('replay-play').textContent()) === '▶ Again', 'the replay button offers to play it again');
  const endClock = await waitFor('the data clock at the end', async () => {
    const text = await page.locator('#data-clock').textContent();
    return text === fmt(preset.to) ? text : null;
  });
  check(endClock === fmt(preset.to), `at its end the data clock shows the window's end (${endClock})`);
  await page.getByTestId('replay-stop').click();

  // 5. Live events keep being counted while a window is shown; Live shows them all.
  const more = await sendMore(base, rows, 20, 1);
  await page.waitForTimeout(1000);
  check((await numberOf(page, 'total')) === total, 'the window stays shown while live events arrive');
  await page.getByTestId('live').click();
  await waitFor('live total', async () => (await numberOf(page, 'total')) === rows.length + more.length);
  check((await page.getByTestId('range-state').textContent()).startsWith('live'), 'back to live');
  const fresh = await browser.newPage();
  await fresh.goto(base, { waitUntil: 'load' });
  await waitFor('fresh page total', async () => (await numberOf(fresh, 'total')) === rows.length + more.length);
  for (const id of ['total', 'suspicious']) {
    const [x, z] = [await numberOf(page, id), await numberOf(fresh, id)];
    check(x === z, `back from the past, the page agrees with a fresh one on ${id} (${x})`);
  }
  const clocks = await Promise.all([page, fresh].map((p) => p.evaluate(() => window.__globe.dataClock())));
  check(JSON.stringify(clocks[0]) === JSON.stringify(clocks[1]), 'and on the data clock and timeline');
  await fresh.close();

  check(problems.length === 0, `no console errors before the restart${problems.length ? `: ${problems.join('; ')}` : ''}`);

  // 6. A server restart with the page open: counts kept, the stream resumes.
  server.kill('SIGTERM');
  await new Promise((ok) => server.on('exit', ok));
  await waitFor('page notices', async () => (await page.getByTestId('status').textContent()) !== 'live', { timeout: 15000 });
  check((await numberOf(page, 'total')) === rows.length + more.length, 'the page keeps its counts while the server is down');
  server = start('server', bin('server'), serverArgs);
  await waitFor('server back', async () => (await fetch(`${upstream}/healthz`)).ok, { timeout: 60000 });
  await waitFor('page live again', async () => (await page.getByTestId('status').textContent()) === 'live', { timeout: 30000 });
  check((await numberOf(page, 'total')) === rows.length + more.length, 'after the restart the page shows the same counts');
  const after = await sendMore(base, rows, 7, 100);
  const expectTotal = rows.length + more.length + after.length;
  await waitFor('resumed total', async () => (await numberOf(page, 'total')) === expectTotal);
  const stats = await (await fetch(`${base}/api/stats`)).json();
  check(stats.total === expectTotal, `the page resumed: it counts the events sent after the restart once (${expectTotal}, as /api/stats)`);
  await page.waitForTimeout(1000);
  check((await numberOf(page, 'total')) === expectTotal, 'and nothing twice');
  await page.screenshot({ path: join(artifacts, 'e2e-history-restart.png') });
  // While the server is down, web answers 502: the only errors the page may log.
  const other = problems.filter((p) => !p.includes('502 (Bad Gateway)'));
  check(other.length === 0, `no console errors but the 502s of the restart${other.length ? `: ${other.join('; ')}` : ''}`);
  log('PASS');
}

h.main(main, cleanups);
