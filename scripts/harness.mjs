// Process plumbing shared by the browser scripts (e2e*.mjs, bench-browser.mjs): a tagged
// log, running and starting commands (keeping the last lines of their output for failure
// reports), server and web started together, free loopback ports, and waiting for a
// condition with a time limit.

import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * @param {string} tag        prefix of log lines, e.g. 'e2e'
 * @param {(...args: any[]) => void} write   where log lines go (console.log or console.error)
 */
export function harness(tag, write = console.log) {
  const started = Date.now();
  /** Started processes: {name, child, lines}. */
  const children = [];
  const h = {
    children,
    /** Set when the script is failing: children's exits are then not reported again. */
    failing: false,
    log(...args) {
      write(`[${tag} ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);
    },
    /** Runs a command to completion; throws unless it exits 0. */
    run(cmd, args, opts = {}) {
      h.log('$', cmd, ...args);
      const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], timeout: 30 * 60_000, ...opts });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
    },
    /** Starts a long-running process (RUST_LOG=warn), reporting an unexpected exit. */
    start(name, cmd, args) {
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
      const lines = [];
      const keep = (d) => {
        lines.push(d.toString());
        if (lines.length > 200) lines.shift();
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      child.on('exit', (code) => {
        if (code !== null && code !== 0 && !h.failing) h.log(`${name} exited with ${code}:\n${lines.join('')}`);
      });
      children.push({ name, child, lines });
      return child;
    },
    /**
     * Starts `bin('server')` on a free port with `serverArgs`, and `bin('web')` in front of it
     * serving `dist`, and waits until both answer /healthz. Returns their base URLs.
     */
    async startServerAndWeb(bin, dist, serverArgs) {
      const [serverPort, webPort] = [await freePort(), await freePort()];
      const upstream = `http://127.0.0.1:${serverPort}`;
      const base = `http://127.0.0.1:${webPort}`;
      h.start('server', bin('server'), ['--listen', `127.0.0.1:${serverPort}`, ...serverArgs]);
      h.start('web', bin('web'), ['--listen', `127.0.0.1:${webPort}`, '--upstream', upstream, '--dist', dist]);
      await waitFor('server /healthz', async () => (await fetch(`${upstream}/healthz`)).ok, { timeout: 60_000 });
      await waitFor('web /healthz', async () => (await fetch(`${base}/healthz`)).ok);
      return { upstream, base };
    },
    /** Stops every started process that is still running. */
    stopAll() {
      for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
    /**
     * Runs the script's `main`, then its `cleanups` (newest first, errors ignored) and stops
     * every started process; on a failure also reports it with the processes' last output and
     * exits 1.
     */
    async main(main, cleanups) {
      const cleanup = async () => {
        for (const f of cleanups.reverse()) {
          try {
            await f();
          } catch {}
        }
        h.stopAll();
      };
      try {
        await main();
        await cleanup();
      } catch (e) {
        h.failing = true;
        console.error(`[${tag}] FAIL: ${e.message}`);
        h.dumpOutput();
        await cleanup();
        process.exit(1);
      }
    },
    /** Prints the last output of every started process (for a failure report). */
    dumpOutput() {
      for (const { name, lines } of children) if (lines.length) console.error(`--- ${name} (last output)\n${lines.slice(-20).join('')}`);
    },
  };
  return h;
}

/**
 * Chromium's flags on these machines: headless, no sandbox (root), no network beyond
 * loopback, and WebGL on the CPU (SwiftShader), since there is no GPU.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

/** Adds an admin `ann` (password `admin password`) with `server user add` in `dataDir`;
 * returns whether the CLI succeeded. */
export function addAdmin(serverBin, dataDir) {
  const made = spawnSync(serverBin, ['--data-dir', dataDir, 'user', 'add', 'ann', '--role', 'admin'], { input: 'admin password\n', encoding: 'utf8' });
  return made.status === 0;
}

/** Logs `page` in with the page's own login form (shown once the header's "Log in" is clicked). */
export async function logInWithForm(page, user, password) {
  await waitFor('the login form', () => page.getByTestId('login').isVisible());
  await page.locator('#login-user').fill(user);
  await page.locator('#login-password').fill(password);
  await page.getByTestId('login-submit').click();
}

/** Polls `fn` until it returns something truthy, or throws after `timeout` ms. */
export async function waitFor(what, fn, { timeout = 20_000, every = 100 } = {}) {
  const until = Date.now() + timeout;
  let last;
  while (Date.now() < until) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}
