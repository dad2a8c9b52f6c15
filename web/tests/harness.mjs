// Test harness: the real `taskstream` binary on a free port with a fresh SQLite database,
// and Debian's Chromium driven by playwright-core. Nothing here sleeps for a fixed time:
// every wait is a condition with a deadline.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/**
 * Where screenshots go: docs/screenshots (committed, shown in the README) when
 * TASKSTREAM_SCREENSHOTS=1, else a temporary directory, so a test run leaves the work tree
 * clean while still rendering every screen.
 */
export const SCREENSHOTS = process.env.TASKSTREAM_SCREENSHOTS === '1'
  ? path.join(REPO, 'docs', 'screenshots')
  : path.join(os.tmpdir(), 'taskstream-screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Polls `condition` (sync or async) until it returns a truthy value or `ms` pass. */
export async function waitFor(what, condition, ms = 30000, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting until ${what}${last ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

/**
 * Starts the gateway binary (TASKSTREAM_BIN) on a free port (or `port`, when something must
 * know the address before the server starts) with a fresh SQLite database. `env` adds or
 * overrides variables; by default no signing key is set (development mode).
 */
export async function startServer(env = {}, { port: chosenPort } = {}) {
  const bin = process.env.TASKSTREAM_BIN;
  if (!bin || !fs.existsSync(bin)) {
    throw new Error(`TASKSTREAM_BIN must name the built taskstream binary (got ${bin || 'nothing'}); ` +
      'build it with `cargo build -p graphql --bin taskstream` or run scripts/test');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskstream-web-'));
  const port = chosenPort ?? await freePort();
  const childEnv = { ...process.env };
  for (const key of ['JWT_SECRET', 'JWT_JWKS_URL', 'JWT_AUDIENCE', 'JWT_ISSUER', 'KAFKA_BROKERS', 'DISABLE_GRAPHIQL',
    'WEBHOOK_ALLOW_PRIVATE', 'OIDC_ISSUER', 'OIDC_CLIENT_ID', 'OIDC_SCOPES', 'OIDC_TOKEN',
    'CORS_ALLOWED_ORIGINS', 'APQ_CACHE_ENTRIES']) {
    delete childEnv[key];
  }
  Object.assign(childEnv, {
    DATABASE_URL: `sqlite://${dir}/t.db?mode=rwc`,
    LISTEN_ADDR: `127.0.0.1:${port}`,
    LOG_LEVEL: 'warn',
    ...env,
  });
  const child = spawn(bin, [], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  let exited = null;
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => {
    exited = { code, signal };
    resolve(exited);
  }));
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor('the server answers /healthz', async () => {
      if (exited) throw new Error(`taskstream exited early (${JSON.stringify(exited)}):\n${output}`);
      const response = await fetch(`${base}/healthz`);
      return response.ok;
    }, 60000, 100);
  } catch (e) {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`${e.message}\n--- server output ---\n${output}`);
  }
  return {
    base,
    output: () => output,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
        await exit;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless, with a fresh profile directory. */
export async function launchBrowser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'taskstream-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timezoneId: 'Europe/Berlin',
    locale: 'en-GB',
    viewport: { width: 1100, height: 900 },
    colorScheme: 'light',
  });
  context.setDefaultTimeout(15000);
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Saves a screenshot of `page` as <name>.png in [`SCREENSHOTS`]. `undoToast: true` keeps the
 * Undo toast in the picture; the other options are Playwright's.
 */
export async function screenshot(page, name, { undoToast = false, ...options } = {}) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  // The toasts come and go with timing; leave them out so the images are stable.
  // (Through the CSSOM: the page's content security policy refuses injected style sheets.)
  const hide = (hidden) => page.evaluate(({ h, keepUndo }) => {
    for (const id of keepUndo ? ['announcer'] : ['announcer', 'undo-toast']) {
      const toast = document.getElementById(id);
      if (toast) toast.style.visibility = h ? 'hidden' : '';
    }
  }, { h: hidden, keepUndo: undoToast });
  await hide(true);
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), ...options });
  await hide(false);
}

/** Runs one GraphQL operation against `base` with `token`; returns data or throws. */
export async function graphql(base, token, query, variables = {}) {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors?.length) throw new Error(JSON.stringify(body.errors));
  return body.data;
}
