#!/usr/bin/env node
// Browser benchmark: what the globe costs the page's main thread, in headless Chromium.
//
// Starts the release `server` and `web` on free loopback ports, opens the page and measures,
// through the page's own code paths (window.__globe, see frontend/src/main.js):
//   1. JavaScript time per frame (the app's animation-frame callback: layer ticks and three's
//      render call, timed by render/loop.js) with ~1,000 and then ~100,000 live hits, fed
//      through the same handler the SSE `hits` messages use; plus all main-thread script time
//      per frame (Chrome's Performance.getMetrics, so the panel and marker timers count too),
//      draw calls, and the live points actually in the GPU ring during the measurement.
//   2. Time to apply a batch of 1,000 new events: JSON.parse of a {"seq","hits":[1000]} message
//      plus the `hits` handler (state, points ring, marker clusters), p50/p95 over many
//      batches; and the CPU time of the frame that follows (it uploads the new slots).
//   3. Page load to the first frame painted after the snapshot, with ~3,000 events on the server.
// Rendering is software (SwiftShader): CPU-side times are meaningful, absolute FPS is not.
//
// Usage: node scripts/bench-browser.mjs [--smoke|--quick]
//   --smoke  a few frames and batches (CI, < 60 s)   --quick  < 90 s   default: longer runs
// Env:   BENCH_NO_BUILD=1 (use target/release and frontend/dist as they are),
//        BENCH_PLACES (distinct places the synthetic hits come from, default 5000),
//        CHROMIUM (default /usr/bin/chromium).
// Output: a Markdown table on stdout and artifacts/bench-browser.json.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { CHROMIUM_ARGS, freePort, harness, waitFor } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'frontend', 'package.json'));
const { chromium } = require('playwright-core');

const mode = process.argv.includes('--smoke') ? 'smoke' : process.argv.includes('--quick') ? 'quick' : 'full';
const SIZES = {
  //            frames measured per case, 1k-event batches timed, page loads timed, hard limit
  smoke: { measureSecs: 1, minFrames: 3, batches: 5, loads: 1, limitSecs: 55 },
  quick: { measureSecs: 4, minFrames: 10, batches: 30, loads: 2, limitSecs: 85 },
  full: { measureSecs: 10, minFrames: 30, batches: 100, loads: 5, limitSecs: 300 },
}[mode];
const LOW = 1_000;
const HIGH = 100_000;
const BATCH = 1_000;
const SNAPSHOT_EVENTS = 3_000;
/** Synthetic hits come from this many places (real traffic is concentrated in cities);
 * BENCH_PLACES=100000 spreads them over the whole globe, about one marker cell each. */
const PLACES = Number(process.env.BENCH_PLACES) || 5_000;

const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = join(root, 'artifacts');
const started = Date.now();
const h = harness('bench-browser', console.error);
const { log, run, start } = h;
let browser = null;
let userDataDir = null;

async function evaluate(page, fn, arg, timeout = 30_000) {
  let timer;
  const limit = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`page.evaluate took over ${timeout} ms`)), timeout);
  });
  try {
    return await Promise.race([page.evaluate(fn, arg), limit]);
  } finally {
    clearTimeout(timer);
  }
}

function quantile(values, q) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i];
}
const ms = (x) => (Number.isFinite(x) ? `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ms` : 'n/a');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function build() {
  if (process.env.BENCH_NO_BUILD) return;
  run('cargo', ['build', '--release', '--locked', '-p', 'server', '-p', 'web'], { cwd: root });
  const frontend = join(root, 'frontend');
  const index = join(frontend, 'dist', 'index.html');
  if (!existsSync(index) || statSync(index).mtimeMs < newestMtime(join(frontend, 'src'))) {
    run('npm', ['run', 'build', '--silent'], { cwd: frontend });
  }
}

// ---- In-page helpers (run inside Chromium) ------------------------------------------------

/** Installs window.__bench: synthetic hits in the server's shape, fed through the app's handlers. */
function installBench({ places, batch }) {
  let rnd = 0x9e3779b9;
  const random = () => {
    // xorshift32: the same synthetic traffic on every run.
    rnd ^= rnd << 13;
    rnd ^= rnd >>> 17;
    rnd ^= rnd << 5;
    return (rnd >>> 0) / 4294967296;
  };
  const spots = [];
  for (let i = 0; i < places; i++) {
    spots.push({
      latitude: Math.asin(2 * random() - 1) * (180 / Math.PI),
      longitude: 360 * random() - 180,
      city: `City ${i}`,
      country_code: `C${i % 200}`,
      country: `Country ${i % 200}`,
    });
  }
  let dataTime = 1767226200;
  /** A `hits` message as the server sends it, as text: n hits received now. */
  function message(seq, n) {
    const received = Date.now();
    const hits = [];
    for (let i = 0; i < n; i++) {
      const s = spots[Math.floor(random() * spots.length)];
      dataTime += 0.001;
      hits.push({
        ip: `10.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}`,
        latitude: s.latitude + (random() - 0.5) * 0.2,
        longitude: s.longitude + (random() - 0.5) * 0.2,
        timestamp: dataTime,
        suspicious: random() < 0.05,
        received,
        city: s.city,
        country_code: s.country_code,
        country: s.country,
      });
    }
    return JSON.stringify({ seq, hits });
  }
  let stats = null;
  const nextFrame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
  window.__bench = {
    /** Latest server stats (the template for the catch-up `stats` messages). */
    async fetchStats() {
      stats = await (await fetch('/api/stats')).json();
    },
    /**
     * Feeds `total` hits in messages of `batch`, through JSON.parse and the `hits` handler,
     * each followed by a `stats` message covering it (as the server's next stats tick would),
     * so the state holds only what a live page holds between two stats. Returns timings.
     */
    async feed(total, { waitFrame = false } = {}) {
      const apply = [];
      const parse = [];
      const nextFrameMs = [];
      for (let done = 0; done < total; done += batch) {
        const n = Math.min(batch, total - done);
        const seq = window.__globe.points().seq + 1;
        const text = message(seq, n);
        const t0 = performance.now();
        const msg = JSON.parse(text);
        const t1 = performance.now();
        window.__globe.feed('hits', msg);
        const t2 = performance.now();
        apply.push(t2 - t0);
        parse.push(t1 - t0);
        if (waitFrame) {
          // The app's frame callback was queued before ours, so it has run when ours does:
          // its newest sample is the frame that uploaded this batch.
          const before = window.__globe.frameSamples().frames;
          await nextFrame();
          const after = window.__globe.frameSamples();
          if (after.frames > before) nextFrameMs.push(after.ms[after.ms.length - (after.frames - before)]);
        }
        window.__globe.feed('stats', { ...stats, seq: seq + n - 1, server_time: Date.now() });
        if (!waitFrame && done % (batch * 20) === 0) await new Promise((r) => setTimeout(r, 0));
      }
      return { apply, parse, nextFrameMs };
    },
    /** Collects the app's per-frame CPU samples for `secs` (at least `minFrames` frames). */
    async frames(secs, minFrames, maxSecs) {
      const out = [];
      let seen = window.__globe.frameSamples().frames;
      const t0 = performance.now();
      while (true) {
        await new Promise((r) => setTimeout(r, 200));
        const s = window.__globe.frameSamples();
        const fresh = Math.min(s.frames - seen, s.ms.length);
        out.push(...s.ms.slice(s.ms.length - fresh));
        seen = s.frames;
        const elapsed = (performance.now() - t0) / 1000;
        if ((elapsed >= secs && out.length >= minFrames) || elapsed >= maxSecs) return { ms: out, secs: elapsed };
      }
    },
  };
}

/** Init script for the load test: notes when the snapshot's hits are first on a painted frame. */
function watchFirstPaint(expected) {
  window.__firstPaint = {};
  const tick = () => {
    const g = window.__globe;
    const fp = window.__firstPaint;
    if (fp.globeReady == null && document.body?.classList.contains('globe-ready')) fp.globeReady = performance.now();
    if (fp.snapshotSeen == null && g && g.points().written >= expected) {
      fp.snapshotSeen = performance.now();
      // The frame that draws them is the one being produced now; it is on screen by the next.
      requestAnimationFrame(() => {
        fp.painted = performance.now();
      });
    }
    if (fp.painted == null || fp.globeReady == null) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

// ---- The run ------------------------------------------------------------------------------

async function openPage(base) {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 }, deviceScaleFactor: 1 });
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.setDefaultTimeout(20_000);
  await page.goto(base, { waitUntil: 'load', timeout: 30_000 });
  await waitFor('stream live', async () => (await page.getByTestId('status').textContent()) === 'live');
  await waitFor('globe ready', () => evaluate(page, () => !!window.__globe && document.body.classList.contains('globe-ready')));
  const hooks = await evaluate(page, () => typeof window.__globe.feed === 'function' && typeof window.__globe.frameSamples === 'function');
  if (!hooks) throw new Error('window.__globe lacks feed/frameSamples: frontend/dist predates them, rebuild it (npm run build)');
  return { page, problems };
}

async function measureFrames(page, cdp, label) {
  const metric = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    return Object.fromEntries(metrics.map((m) => [m.name, m.value]));
  };
  await page.waitForTimeout(800); // let the upload of the last batch and a panel refresh pass
  const before = await metric();
  const framesBefore = (await evaluate(page, () => window.__globe.frameSamples().frames));
  const { ms: samples, secs } = await evaluate(
    page,
    ([s, f, m]) => window.__bench.frames(s, f, m),
    [SIZES.measureSecs, SIZES.minFrames, SIZES.measureSecs * 3],
    SIZES.measureSecs * 3000 + 10_000,
  );
  const after = await metric();
  const wallSecs = after.Timestamp - before.Timestamp;
  const state = await evaluate(page, () => ({ ...window.__globe.points(), liveInRing: window.__globe.liveInRing(), stats: window.__globe.frameStats() }));
  const frames = state.stats.frames - framesBefore;
  const result = {
    label,
    liveInRing: state.liveInRing,
    liveClustered: state.liveClustered,
    frames: samples.length,
    fps: samples.length / secs,
    frameMs: { p50: quantile(samples, 0.5), p95: quantile(samples, 0.95), max: Math.max(...samples) },
    // All JavaScript on the main thread (frame callback, timers, event handlers), per second
    // and per frame; and all main-thread task time (with software compositing this includes
    // waiting for SwiftShader to finish each frame, so it is no JavaScript cost).
    scriptMsPerSec: ((after.ScriptDuration - before.ScriptDuration) * 1000) / wallSecs,
    scriptMsPerFrame: ((after.ScriptDuration - before.ScriptDuration) * 1000) / Math.max(1, frames),
    taskMsPerSec: ((after.TaskDuration - before.TaskDuration) * 1000) / wallSecs,
    drawCalls: state.stats.drawCalls,
  };
  log(label, JSON.stringify(result));
  return result;
}

async function main() {
  build();
  armWatchdog();
  const bin = (name) => join(root, 'target', 'release', name);
  for (const name of ['server', 'web']) {
    if (!existsSync(bin(name))) throw new Error(`${bin(name)} is missing: build it (cargo build --release -p server -p web) or unset BENCH_NO_BUILD`);
  }
  mkdirSync(artifacts, { recursive: true });

  const serverPort = await freePort();
  const webPort = await freePort();
  const upstream = `http://127.0.0.1:${serverPort}`;
  const base = `http://127.0.0.1:${webPort}`;
  start('server', bin('server'), ['--listen', `127.0.0.1:${serverPort}`]);
  start('web', bin('web'), ['--listen', `127.0.0.1:${webPort}`, '--upstream', upstream, '--dist', join(root, 'frontend', 'dist')]);
  await waitFor('server /healthz', async () => (await fetch(`${upstream}/healthz`)).ok);
  await waitFor('web /healthz', async () => (await fetch(`${base}/healthz`)).ok);
  log(`mode ${mode}; server ${upstream}, web ${base}`);

  userDataDir = mkdtempSync(join(tmpdir(), 'bench-chromium-'));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    timeout: 60_000,
    viewport: { width: 1600, height: 900 },
    args: CHROMIUM_ARGS,
  });
  await browser.addInitScript(installBench, { places: PLACES, batch: BATCH });
  // The persistent context opens with a blank page; close it so it costs nothing.
  for (const p of browser.pages()) await p.close();

  // 1 and 2: one page, an idle server; hits fed through the page's own `hits` handler.
  const { page, problems } = await openPage(base);
  const cdp = await browser.newCDPSession(page);
  await cdp.send('Performance.enable');
  // The longest fade window (60 s), so all 100,000 hits stay live while we measure.
  await page.locator('#fade').fill('60');
  await page.locator('#fade').blur();
  await evaluate(page, () => window.__bench.fetchStats());

  await evaluate(page, (n) => window.__bench.feed(n), LOW);
  const low = await measureFrames(page, cdp, `${LOW} live`);
  const fedAt = Date.now();
  await evaluate(page, (n) => window.__bench.feed(n), HIGH - LOW, 60_000);
  log(`fed ${HIGH - LOW} more hits in ${Date.now() - fedAt} ms`);
  const high = await measureFrames(page, cdp, `${HIGH} live`);

  const batches = await evaluate(page, (n) => window.__bench.feed(n, { waitFrame: true }), SIZES.batches * BATCH, 120_000);
  log(`applied ${batches.apply.length} batches of ${BATCH}`);
  const pageProblems = [...problems];
  await page.close();

  // 3: a fresh page against a server that holds ~3,000 events.
  const events = [];
  for (let i = 0; i < SNAPSHOT_EVENTS; i++) {
    events.push({
      ip: `192.0.2.${i % 250}`,
      latitude: ((i * 37) % 160) - 80 + 0.5,
      longitude: ((i * 71) % 340) - 170 + 0.25,
      timestamp: 1767226200 + i * 0.01,
      suspicious: i % 20 === 0,
    });
  }
  const posted = await fetch(`${upstream}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
  if (posted.status !== 202) throw new Error(`POST /api/events answered ${posted.status}`);
  await waitFor('server holds the events', async () => (await (await fetch(`${upstream}/api/stats`)).json()).total >= SNAPSHOT_EVENTS);
  const loads = [];
  for (let i = 0; i < SIZES.loads; i++) {
    const p = await browser.newPage({ viewport: { width: 1600, height: 900 }, deviceScaleFactor: 1 });
    await p.addInitScript(watchFirstPaint, SNAPSHOT_EVENTS);
    await p.goto(base, { waitUntil: 'load', timeout: 30_000 });
    const fp = await waitFor('first painted snapshot', () => evaluate(p, () => (window.__firstPaint.painted != null && window.__firstPaint.globeReady != null ? window.__firstPaint : null)), { timeout: 30_000 });
    const nav = await evaluate(p, () => {
      const n = performance.getEntriesByType('navigation')[0];
      return { domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd };
    });
    loads.push({ ...fp, ...nav, cold: i === 0 });
    log(`load ${i + 1}:`, JSON.stringify(loads[i]));
    await p.close();
  }

  // ---- Report ----
  const coreModel = cpus()[0]?.model ?? 'unknown';
  const machine = `${cpus().length} cores (${coreModel}), Chromium SwiftShader (software WebGL), 1600x900, DPR 1`;
  const perFrame = (r) => `${ms(r.frameMs.p50)} / ${ms(r.frameMs.p95)}`;
  const detailFrames = (r) =>
    `frame callback p50/p95 of ${r.frames} frames at ${r.fps.toFixed(1)} fps; all main-thread JS ${r.scriptMsPerSec.toFixed(0)} ms/s ` +
    `(${ms(r.scriptMsPerFrame)}/frame); ${r.liveInRing} live in the ring, ${r.liveClustered} in markers from ${PLACES} places; ${r.drawCalls} draw calls`;
  const warm = loads.filter((l) => !l.cold);
  const loadRows = loads.length
    ? [
        {
          scenario: `load → first painted snapshot (${SNAPSHOT_EVENTS} events)`,
          result: `${ms(loads[0].painted)} cold${warm.length ? `, ${ms(quantile(warm.map((l) => l.painted), 0.5))} warm p50` : ''}`,
          detail:
            `from navigation start; snapshot applied at ${ms(loads[0].snapshotSeen)}, DOMContentLoaded ${ms(loads[0].domContentLoaded)}, ` +
            `globe borders drawn ${ms(loads[0].globeReady)} (cold, ${loads.length} load${loads.length > 1 ? 's' : ''})`,
        },
      ]
    : [];
  const rows = [
    { scenario: `JS per frame, ${LOW.toLocaleString('en')} live hits`, result: perFrame(low), detail: detailFrames(low) },
    { scenario: `JS per frame, ${HIGH.toLocaleString('en')} live hits`, result: perFrame(high), detail: detailFrames(high) },
    {
      scenario: `apply a batch of ${BATCH.toLocaleString('en')} events`,
      result: `${ms(quantile(batches.apply, 0.5))} / ${ms(quantile(batches.apply, 0.95))}`,
      detail:
        `p50/p95 of ${batches.apply.length} batches, JSON.parse + hits handler, on the page with ${HIGH} live (parse alone ${ms(quantile(batches.parse, 0.5))} p50); ` +
        `the next frame (uploads the slots) ${ms(quantile(batches.nextFrameMs, 0.5))} / ${ms(quantile(batches.nextFrameMs, 0.95))}`,
    },
    ...loadRows,
  ];
  const table = [
    '| scenario | result | detail |',
    '|---|---|---|',
    ...rows.map((r) => `| ${r.scenario} | ${r.result} | ${r.detail} |`),
  ].join('\n');
  console.log(`Browser benchmark (${mode}), ${new Date().toISOString()}; ${machine}\n`);
  console.log(table);

  const report = {
    mode,
    date: new Date().toISOString(),
    machine,
    places: PLACES,
    command: `node scripts/bench-browser.mjs${mode === 'full' ? '' : ` --${mode}`}`,
    rows,
    frames: { low, high },
    batches: {
      size: BATCH,
      count: batches.apply.length,
      applyMs: { p50: quantile(batches.apply, 0.5), p95: quantile(batches.apply, 0.95), max: Math.max(...batches.apply) },
      parseMs: { p50: quantile(batches.parse, 0.5), p95: quantile(batches.parse, 0.95) },
      nextFrameMs: { p50: quantile(batches.nextFrameMs, 0.5), p95: quantile(batches.nextFrameMs, 0.95) },
    },
    loads,
    pageProblems,
    seconds: (Date.now() - started) / 1000,
  };
  writeFileSync(join(artifacts, 'bench-browser.json'), JSON.stringify(report, null, 2));
  log(`wrote artifacts/bench-browser.json in ${report.seconds.toFixed(1)} s`);
  if (pageProblems.length) log('page reported problems:', pageProblems.slice(0, 5));
}

let cleaned = false;
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (browser) {
    await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
  }
  h.stopAll();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
}

async function fail(e) {
  h.failing = true;
  console.error(`[bench-browser] FAIL: ${e.message}`);
  h.dumpOutput();
  await cleanup();
  process.exit(1);
}

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => fail(new Error(`got ${signal}`)));
// The build is not counted against the limit.
let watchdog = null;
const armWatchdog = () => {
  watchdog = setTimeout(() => fail(new Error(`over the ${SIZES.limitSecs} s limit for --${mode}`)), SIZES.limitSecs * 1000);
};

main()
  .then(async () => {
    clearTimeout(watchdog);
    await cleanup();
  })
  .catch(fail);
