#!/usr/bin/env node
// End-to-end test of access control in headless Chromium.
//
// Starts `server --require-auth` (credentials even on loopback) with a fresh --data-dir in
// which the CLI made a viewer, an admin and an ingest token, and `web` in front of it. A
// page gets the login form, logs in as the viewer and watches the stream; the sender
// delivers the file with the token (and is stopped with exit 4 without one); the viewer
// sees no admin controls (no admin card, no analytics settings form: a note instead, and a
// PUT from its page gets 403), the admin does, changes top k on the page (the analytics
// panels of both follow, and the settings API says it), adds a viewer who then logs in, and
// reads the logins in the audit log; logging out ends the viewer's stream (the server's
// stream count drops) and brings the form back. Screenshots of the viewer's and the admin's
// page go to artifacts/e2e-access-{viewer,admin}.png.
//
// Usage: node scripts/e2e-access.mjs     Env: E2E_NO_BUILD=1, CHROMIUM, E2E_HEADFUL=1.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { CHROMIUM_ARGS, harness, logInWithForm, waitFor } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'frontend', 'package.json'));
const { chromium } = require('playwright-core');

const csvPath = join(root, 'data', 'sample.csv');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const h = harness('e2e-access');
const { log, run } = h;
const cleanups = [];
const bin = (name) => join(root, 'target', 'debug', name);
const artifacts = join(root, 'artifacts');

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  log(`ok: ${message}`);
}

/** Runs the server's CLI on `dataDir`, with `input` on stdin; returns stdout. */
function cli(dataDir, args, input = '') {
  const r = spawnSync(bin('server'), ['--data-dir', dataDir, ...args], { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`server ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

function sender(base, token) {
  return new Promise((ok, fail) => {
    const args = ['--url', base, '--speed', 'max', '--quiet', csvPath];
    if (token) args.unshift('--token', token);
    const child = spawn(bin('sender'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', fail);
    child.on('exit', (status) => ok({ status, output }));
  });
}

async function metric(upstream, name) {
  const text = await (await fetch(`${upstream}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

async function loginAs(page, user, password) {
  await logInWithForm(page, user, password);
  await waitFor(`${user}: stream live`, async () => (await page.getByTestId('status').textContent()) === 'live');
}

/** The page's session cookie, for asking the server directly as that page's user. */
async function cookieOf(page) {
  const cookies = await page.context().cookies();
  return cookies.map((c) => `${c.name}=${c.value}`).join('; ');
}

async function main() {
  const rows = readFileSync(csvPath, 'utf8').trim().split(/\r?\n/).length - 1;
  if (!process.env.E2E_NO_BUILD) {
    run('cargo', ['build', '--locked', '-p', 'server', '-p', 'web', '-p', 'sender'], { cwd: root });
    run('npm', ['run', 'build', '--silent'], { cwd: join(root, 'frontend') });
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'e2e-access-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  cli(dataDir, ['user', 'add', 'val', '--role', 'viewer'], 'viewer password\n');
  cli(dataDir, ['user', 'add', 'ann', '--role', 'admin'], 'admin password\n');
  const token = cli(dataDir, ['token', 'add', 'e2e']);
  check(token.startsWith('tgi_'), 'the CLI made users and printed an ingest token');

  // The built-in rules stay quiet on the sample file (by design); this one fires once per
  // country with suspicious rows, so both pages have alerts to list.
  const rules = join(dataDir, 'rules.json');
  writeFileSync(rules, JSON.stringify({
    rules: [{ name: 'suspicious_country', type: 'event', severity: 'info', key: 'country', when: { field: 'suspicious' } }],
  }));
  const { upstream, base } = await h.startServerAndWeb(bin, join(root, 'frontend', 'dist'), ['--require-auth', '--data-dir', dataDir, '--geoip-dir', join(dataDir, 'none'), '--alert-rules', rules]);

  const browser = await chromium.launch({ executablePath: chromiumPath, headless: !process.env.E2E_HEADFUL, args: CHROMIUM_ARGS });
  cleanups.push(() => browser.close());
  const viewer = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  const problems = [];
  viewer.on('pageerror', (e) => problems.push(e.message));

  await viewer.goto(base, { waitUntil: 'load' });
  await waitFor('login required', async () => (await viewer.getByTestId('status').textContent()) === 'login required');
  check(await viewer.getByTestId('login').isVisible(), 'a page without a session gets the login form');
  await logInWithForm(viewer, 'val', 'wrong password');
  await waitFor('the error', async () => (await viewer.getByTestId('login-error').textContent()).includes('wrong'));
  check(true, 'a wrong password is refused on the form');
  await loginAs(viewer, 'val', 'viewer password');
  check((await viewer.getByTestId('who').textContent()) === 'val · viewer', 'the badge names the viewer');
  check(!(await viewer.locator('section.admin').isVisible()), 'a viewer sees no admin controls');
  check(
    !(await viewer.locator('#analytics-form').isVisible()) && (await viewer.getByTestId('analytics-admin-note').isVisible()),
    'a viewer sees no analytics settings form, only a note that they are an admin\'s',
  );
  check((await metric(upstream, 'traffic_stream_clients')) === 1, 'the viewer holds one stream');

  const refused = await sender(base, null);
  check(refused.status === 4 && refused.output.includes('--token'), `the sender without a token stops with exit 4 naming --token`);
  const sent = await sender(base, token);
  check(sent.status === 0, 'the sender with its token delivers every row (through web)');
  await waitFor('viewer total == rows', async () => Number((await viewer.getByTestId('total').textContent()).replace(/[^0-9]/g, '')) === rows, { timeout: 15000 });
  check(true, `the viewer's page counts all ${rows} rows live`);

  const admin = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  await admin.goto(base, { waitUntil: 'load' });
  await loginAs(admin, 'ann', 'admin password');
  check(await admin.locator('section.admin').isVisible(), 'an admin sees the admin controls');
  const alertsOf = (page) => page.getByTestId('alerts').locator('li').count();
  const fired = await alertsOf(viewer);
  await waitFor('the admin\'s alerts', async () => (await alertsOf(admin)) === fired);
  check(fired > 0, `a page that logged in after it loaded lists the ${fired} alerts the viewer saw fire`);

  // Thresholds: the admin changes top k on the page; the viewer cannot.
  const kind = await admin.locator('#analytics-kind').inputValue();
  const config = async () => (await (await fetch(`${upstream}/api/analytics/config`, { headers: { cookie: await cookieOf(admin) } })).json()).kinds[kind];
  const before = (await config()).top_k;
  const topK = before === 3 ? 4 : 3;
  check(await admin.locator('#analytics-form').isVisible() && !(await admin.getByTestId('analytics-admin-note').isVisible()), 'an admin sees the analytics settings form');
  await waitFor('the admin\'s form shows k', async () => (await admin.locator('#analytics-form [name="top_k"]').inputValue()) === String(before));
  await admin.locator('#analytics-form [name="top_k"]').fill(String(topK));
  await admin.locator('#analytics-form button[type="submit"]').click();
  await waitFor('the settings API says the new k', async () => (await config()).top_k === topK);
  check(!(await admin.locator('#analytics-error').isVisible()), `the admin set top k ${before} -> ${topK} for ${kind} on the page, and GET /api/analytics/config says ${topK}`);
  for (const [who, page] of [['admin', admin], ['viewer', viewer]]) {
    await waitFor(`${who}: the panel says k ${topK}`, async () => (await page.locator('#analytics-window').textContent()).includes(` k ${topK} `), { timeout: 15000 });
    const listed = await page.getByTestId('top-k').locator('li button').count();
    check(listed <= topK, `the ${who}'s analytics panel follows: k ${topK} in its window line, ${listed} keys in its top k`);
  }
  const put = await viewer.evaluate(async (k) => {
    const r = await fetch('/api/analytics/config', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ top_k: k }) });
    return { status: r.status, body: await r.json() };
  }, topK + 5);
  check(put.status === 403 && put.body.error && (await config()).top_k === topK, `a PUT from the viewer's page gets 403 (${put.body.message}) and changes nothing`);
  mkdirSync(artifacts, { recursive: true });
  await viewer.getByTestId('analytics-admin-note').scrollIntoViewIfNeeded();
  await viewer.screenshot({ path: join(artifacts, 'e2e-access-viewer.png') });
  await admin.screenshot({ path: join(artifacts, 'e2e-access-admin.png') });
  log('screenshots artifacts/e2e-access-viewer.png, artifacts/e2e-access-admin.png');

  await admin.getByTestId('audit-refresh').click();
  await waitFor('audit entries', async () => (await admin.getByTestId('audit').locator('li').count()) > 0);
  const audit = await admin.getByTestId('audit').locator('li').allTextContents();
  check(audit.some((t) => t.includes('login · val · bad_credentials')) && audit.some((t) => t.includes('login · val · ok')), 'the admin reads the viewer\'s failed and good logins in the audit log');
  check(audit.some((t) => t.includes('PUT /api/analytics/config · ann · ok')), 'the audit log has the admin\'s threshold change');
  await admin.locator('#new-user').fill('vic');
  await admin.locator('#new-password').fill('another password');
  await admin.getByTestId('add-user').click();
  await waitFor('user saved', async () => (await admin.getByTestId('admin-said').textContent()) === 'vic (viewer) saved');
  await admin.close(); // fewer pages drawing the globe: the machine is shared
  const vic = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  await vic.goto(base, { waitUntil: 'load' });
  await loginAs(vic, 'vic', 'another password');
  check(true, 'a viewer the admin added on the page logs in and watches');
  await vic.close();
  const forbidden = await viewer.evaluate(async () => (await fetch('/api/audit')).status);
  check(forbidden === 403, 'the viewer\'s session gets 403 from an admin endpoint');

  // The admin's and vic's pages are closed: the viewer's is the one stream left.
  await waitFor('only the viewer streams', async () => (await metric(upstream, 'traffic_stream_clients')) === 1, { timeout: 10000 });
  await viewer.getByTestId('logout').click();
  await waitFor('viewer signed out', async () => (await viewer.getByTestId('status').textContent()) === 'signed out');
  await waitFor('stream count drops', async () => (await metric(upstream, 'traffic_stream_clients')) === 0, { timeout: 10000 });
  check(await viewer.getByTestId('login').isVisible(), 'logout brings the login form back');
  const after = await viewer.evaluate(async () => (await fetch('/api/stats')).status);
  check(after === 401, 'after logout the page\'s requests get 401');
  check(problems.length === 0, `no page errors (${problems.join('; ')})`);
  log('PASS');
}

h.main(main, cleanups);
