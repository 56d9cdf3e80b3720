#!/usr/bin/env node
// End-to-end test of the steerable generator in headless Chromium.
//
// Starts `server` (a fresh --data-dir with an admin made by the CLI, a 15 s analytics
// window, a generic --alert-webhook to a receiver in this script) and `web` in front of it.
// The admin logs in on the page and, on the generator card only: sees a bad rate refused
// (the server's 422 shown, the field marked), sets the rate, starts the generator (hits
// come in and are counted), and presses the burst button (203.0.113.0/24 sends 30% of all
// traffic for 10 s). The heavy-hitter alert for that network must then fire, once, on the
// stream (read here from /api/stream), at the webhook receiver and in the page's alert
// list, and resolve after the burst in all three. Stop ends the traffic. A screenshot of
// the page with the alert goes to artifacts/e2e-generator.png.
//
// Usage: node scripts/e2e-generator.mjs     Env: E2E_NO_BUILD=1, CHROMIUM, E2E_HEADFUL=1.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { CHROMIUM_ARGS, addAdmin, harness, logInWithForm, waitFor } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'frontend', 'package.json'));
const { chromium } = require('playwright-core');

const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const h = harness('e2e-generator');
const { log, run } = h;
const cleanups = [];
const bin = (name) => join(root, 'target', 'debug', name);
const artifacts = join(root, 'artifacts');
const NETWORK = '203.0.113.0/24';

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  log(`ok: ${message}`);
}

/** A webhook receiver on 127.0.0.1: every JSON body it is sent. */
async function receiver() {
  const bodies = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      try {
        bodies.push(JSON.parse(text));
      } catch {
        bodies.push({ unparsed: text });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  cleanups.push(() => new Promise((ok) => server.close(ok)));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, bodies };
}

/** Reads the server's stream in the background: every `alert` message's data. */
function streamAlerts(upstream) {
  const alerts = [];
  const abort = new AbortController();
  cleanups.push(() => abort.abort());
  (async () => {
    const response = await fetch(`${upstream}/api/stream`, { signal: abort.signal });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = message.split('\n');
        if (!lines.includes('event: alert')) continue;
        const data = lines.find((l) => l.startsWith('data: '));
        if (data) alerts.push(JSON.parse(data.slice(6)));
      }
    }
  })().catch((e) => {
    if (e.name !== 'AbortError') log(`stream reader stopped: ${e.message}`);
  });
  return alerts;
}

/** The burst network's heavy-hitter alerts in `list`, in the order they came. */
const burstAlerts = (list) => list.filter((a) => a.rule === 'heavy_hitter' && a.key === NETWORK);

async function main() {
  if (!process.env.E2E_NO_BUILD) {
    run('cargo', ['build', '--locked', '-p', 'server', '-p', 'web'], { cwd: root });
    run('npm', ['run', 'build', '--silent'], { cwd: join(root, 'frontend') });
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'e2e-generator-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  check(addAdmin(bin('server'), dataDir), 'the CLI made an admin');
  const hook = await receiver();

  const { upstream, base } = await h.startServerAndWeb(bin, join(root, 'frontend', 'dist'), [
    '--data-dir', dataDir,
    '--geoip-dir', join(dataDir, 'none'),
    '--analytics-window-secs', '15',
    '--alert-webhook', hook.url,
  ]);
  const streamed = streamAlerts(upstream);

  const browser = await chromium.launch({ executablePath: chromiumPath, headless: !process.env.E2E_HEADFUL, args: CHROMIUM_ARGS });
  cleanups.push(() => browser.close());
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(base, { waitUntil: 'load' });
  // On loopback a page may watch without logging in: the card shows the state, not the form.
  await waitFor('the generator card', async () => (await page.getByTestId('generator-state').textContent()) === 'stopped');
  check(!(await page.locator('#generator-form').isVisible()), 'before logging in the card shows the generator stopped, without controls');
  await waitFor('the log-in button', async () => (await page.getByTestId('logout').textContent()) === 'Log in');
  await page.getByTestId('logout').click();
  await logInWithForm(page, 'ann', 'admin password');
  await waitFor('the generator controls', () => page.locator('#generator-form').isVisible());
  check(true, 'the admin sees the generator controls');

  const form = page.locator('#generator-form');
  await form.locator('[name="rate"]').fill('0');
  await form.locator('button[type="submit"]').click();
  await waitFor('the refusal', () => page.locator('#generator-error').isVisible());
  const refusal = await page.locator('#generator-error').textContent();
  check(
    refusal.startsWith('rate:') && (await form.locator('[name="rate"]').getAttribute('aria-invalid')) === 'true',
    `a rate of 0 is refused with the server's words ("${refusal}") and the field marked`,
  );
  await form.locator('[name="rate"]').fill('200');
  await form.locator('button[type="submit"]').click();
  await waitFor('the error cleared', async () => !(await page.locator('#generator-error').isVisible()));
  const settings = await (await fetch(`${upstream}/api/generator`)).json();
  check(settings.config.rate === 200 && !settings.running, 'the rate is set to 200/s through the API (GET /api/generator says so)');

  await page.getByTestId('generator-toggle').click();
  await waitFor('running', async () => (await page.getByTestId('generator-state').textContent()) === 'running');
  const total = async () => Number((await page.getByTestId('total').textContent()).replace(/[^0-9]/g, ''));
  await waitFor('hits counted', async () => (await total()) >= 400, { timeout: 20000 });
  check(true, `started from the page: the page counts the generated hits (${await total()})`);
  const drawn = await page.evaluate(() => window.__globe.points().written);
  check(drawn > 0, `the globe draws them (${drawn} points written)`);

  await waitFor('the burst button', () => page.getByTestId('generator-burst').isEnabled());
  await form.locator('[name="secs"]').fill('10');
  await page.getByTestId('generator-burst').click();
  await waitFor('the burst on the card', async () => (await page.getByTestId('generator-status').textContent()).includes(`burst ${NETWORK} 30%`));
  check(true, `the burst button scheduled ${NETWORK} at 30% for 10 s (the card says so)`);

  const listed = async (state) => (await page.getByTestId('alerts').locator('li').allTextContents()).some((t) => t.includes(NETWORK) && t.includes('heavy hitter') && t.includes(state));
  await waitFor('the alert on the stream', async () => burstAlerts(streamed).some((a) => a.state === 'firing'), { timeout: 30000 });
  check(true, `the heavy-hitter alert for ${NETWORK} fired on the stream`);
  await waitFor('the alert at the webhook', async () => burstAlerts(hook.bodies).some((a) => a.state === 'firing'), { timeout: 15000 });
  check(true, 'the webhook receiver got it');
  await waitFor('the alert in the page', () => listed('firing'), { timeout: 15000 });
  check(true, 'the page lists it, firing');
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'e2e-generator.png') });
  log('screenshot artifacts/e2e-generator.png');

  await waitFor('resolved on the stream', async () => burstAlerts(streamed).some((a) => a.state === 'resolved'), { timeout: 90000 });
  await waitFor('resolved at the webhook', async () => burstAlerts(hook.bodies).some((a) => a.state === 'resolved'), { timeout: 15000 });
  await waitFor('resolved in the page', () => listed('resolved'), { timeout: 15000 });
  for (const [where, list] of [['stream', streamed], ['webhook', hook.bodies]]) {
    const states = burstAlerts(list).map((a) => a.state);
    check(states.join(',') === 'firing,resolved', `${where}: the alert fired once and resolved once after the burst (${states.join(', ')})`);
  }
  check(!(await listed('firing')), 'the page shows it resolved');
  const [fired, resolved] = burstAlerts(streamed);
  check(fired.id === resolved.id && resolved.resolved_at > fired.fired_at, `the same alert: fired at ${fired.fired_at}, resolved at ${resolved.resolved_at} (data clock)`);

  await page.getByTestId('generator-toggle').click();
  await waitFor('stopped', async () => (await page.getByTestId('generator-state').textContent()) === 'stopped');
  const stopped = (await (await fetch(`${upstream}/api/generator`)).json()).generated_total;
  await new Promise((r) => setTimeout(r, 500));
  const later = (await (await fetch(`${upstream}/api/generator`)).json()).generated_total;
  check(later === stopped, `stopped from the page: no events after the stop (${stopped} in all)`);
  check(problems.length === 0, `no page errors (${problems.join('; ')})`);
  log('PASS');
}

h.main(main, cleanups);
