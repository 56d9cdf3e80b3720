#!/usr/bin/env node
// End-to-end test of the page's Import control in headless Chromium (issue 10: import).
//
// Starts `server` (a fresh --data-dir with an admin made by the CLI, no IP database) and
// `web`; the admin logs in on the page, imports the course file through the Import control
// (file picker, upload, report), and the page's counters then equal the file's rows (as do
// /api/stats and /api/history); importing the same file again adds nothing (the report says
// every row was already stored, the counters stay). A screenshot goes to
// artifacts/e2e-import.png.
//
// Usage: node scripts/e2e-import.mjs [CSV]   (default ../shared/data/ip_addresses.csv)
// Env:   E2E_NO_BUILD=1 (use existing binaries and dist), CHROMIUM, E2E_HEADFUL=1.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import { CHROMIUM_ARGS, addAdmin, harness, logInWithForm, waitFor } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'frontend', 'package.json'));
const { chromium } = require('playwright-core');

const csvPath = resolve(process.argv[2] || join(root, '..', 'shared', 'data', 'ip_addresses.csv'));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = join(root, 'artifacts');
const h = harness('e2e-import');
const { log, run } = h;
const cleanups = [];
const bin = (name) => join(root, 'target', 'debug', name);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  log(`ok: ${message}`);
}

/** Brute force: the file's data rows and how many are flagged (course columns, no damage). */
function countRows(path) {
  const lines = readFileSync(path, 'utf8').replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l.trim());
  const header = lines[0].split(',').map((x) => x.trim().toLowerCase());
  const susp = header.indexOf('suspicious');
  const rows = lines.slice(1);
  const flagged = rows.filter((l) => ['1', '1.0', 'true'].includes((l.split(',')[susp] ?? '').trim().toLowerCase()));
  return { rows: rows.length, suspicious: flagged.length };
}

const numberOf = async (page, id) => Number((await page.getByTestId(id).textContent()).replace(/[^0-9]/g, ''));
const fmt = (n) => n.toLocaleString('en-US');

async function main() {
  check(existsSync(csvPath), `the file to import is at ${csvPath}`);
  const file = countRows(csvPath);
  log(`csv ${csvPath}: ${file.rows} rows, ${file.suspicious} suspicious`);
  if (!process.env.E2E_NO_BUILD) {
    run('cargo', ['build', '--locked', '-p', 'server', '-p', 'web'], { cwd: root });
    run('npm', ['run', 'build', '--silent'], { cwd: join(root, 'frontend') });
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'e2e-import-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  check(addAdmin(bin('server'), dataDir), 'the CLI made an admin');
  const { upstream, base } = await h.startServerAndWeb(bin, join(root, 'frontend', 'dist'), ['--data-dir', dataDir, '--geoip-dir', join(dataDir, 'none')]);

  const browser = await chromium.launch({ executablePath: chromiumPath, headless: !process.env.E2E_HEADFUL, args: CHROMIUM_ARGS });
  cleanups.push(() => browser.close());
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(base, { waitUntil: 'load' });
  await waitFor('the log-in button', async () => (await page.getByTestId('logout').textContent()) === 'Log in');
  check(!(await page.getByTestId('import').isVisible()), 'open on this machine without a login: no Import control (an admin\'s)');
  await page.getByTestId('logout').click();
  await logInWithForm(page, 'ann', 'admin password');
  await waitFor('the Import control', () => page.getByTestId('import').isVisible());
  check(true, 'the admin sees the Import control');
  // The upload's progress events, as the bar gets them (the page's own XMLHttpRequest).
  await page.evaluate(() => {
    window.__progress = [];
    const bar = document.querySelector('[data-testid="import-progress"]');
    const { get, set } = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value');
    Object.defineProperty(bar, 'value', {
      get() {
        return get.call(this);
      },
      set(v) {
        window.__progress.push(v);
        set.call(this, v);
      },
    });
  });

  const state = page.getByTestId('import-state');
  const importOnce = async (what) => {
    const chooser = page.waitForEvent('filechooser');
    await page.getByTestId('import').click();
    await (await chooser).setFiles(csvPath);
    await waitFor(`${what}: the report`, async () => (await state.textContent()).startsWith('imported'), { timeout: 30000 });
    return state.textContent();
  };

  const first = await importOnce('first import');
  check(first === `imported ${fmt(file.rows)} of ${fmt(file.rows)} rows · 0 already stored · 0 rejected`, `the first import's report: "${first}"`);
  const progress = await page.evaluate(() => window.__progress);
  check(progress.includes(1), `the progress bar reached the end of the upload (${progress.length} updates)`);
  await waitFor('the page counts the file', async () => (await numberOf(page, 'total')) === file.rows);
  check((await numberOf(page, 'suspicious')) === file.suspicious, `the page counts the file: ${file.rows} hits, ${file.suspicious} suspicious`);
  const stats = await (await fetch(`${upstream}/api/stats`)).json();
  check(stats.total === file.rows && stats.suspicious === file.suspicious, `/api/stats agrees (${stats.total}, ${stats.suspicious})`);
  const history = await (await fetch(`${upstream}/api/history?limit=1`)).json();
  check(history.summary.total === file.rows, `the history holds every row (${history.summary.total})`);

  const second = await importOnce('second import');
  check(second === `imported 0 of ${fmt(file.rows)} rows · ${fmt(file.rows)} already stored · 0 rejected`, `importing again adds nothing: "${second}"`);
  const again = await (await fetch(`${upstream}/api/stats`)).json();
  check(again.total === file.rows && again.seq === stats.seq, `the server's total and sequence stay (${again.total}, seq ${again.seq})`);
  check((await numberOf(page, 'total')) === file.rows, 'the page total stays');
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'e2e-import.png') });
  log('screenshot artifacts/e2e-import.png');
  check(problems.length === 0, `no page errors (${problems.join('; ')})`);
  log('PASS');
}

h.main(main, cleanups);
