// Cross-origin access in a real browser: a page served from a second local origin (a tiny
// node http server on another port) calls the API with fetch, with a bearer token, so
// Chromium sends a CORS preflight first. It succeeds from the origin CORS_ALLOWED_ORIGINS
// lists and fails from any other.

import http from 'node:http';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, freePort } from './harness.mjs';

/** The development token the server printed at start-up. */
function devToken(server) {
  const match = /Token for user "developer":\s+(\S+)/.exec(server.output());
  assert.ok(match, `no development token in the output:\n${server.output()}`);
  return match[1];
}

/** Serves one empty page at http://127.0.0.1:`port`/; resolves with a close function. */
function servePage(port) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>another origin</title><p>another origin</p>');
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(() => new Promise((r) => server.close(r))));
  });
}

/** Runs fetch in `page` against the API; what the page's script sees. */
function callApi(page, api, token) {
  return page.evaluate(async ({ api, token }) => {
    try {
      const response = await fetch(api, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: '{ me { id } }' }),
      });
      return { status: response.status, body: await response.json() };
    } catch (e) {
      return { error: String(e) };
    }
  }, { api, token });
}

describe('CORS in Chromium', () => {
  let server;
  let browser;
  let allowedPort;
  let otherPort;
  const closers = [];

  before(async () => {
    allowedPort = await freePort();
    otherPort = await freePort();
    closers.push(await servePage(allowedPort), await servePage(otherPort));
    server = await startServer({ CORS_ALLOWED_ORIGINS: `http://127.0.0.1:${allowedPort}` });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    for (const close of closers) await close();
  });

  it('lets a page from the allowed origin call the API with a bearer token', async () => {
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${allowedPort}/`);

    const result = await callApi(page, `${server.base}/graphql`, devToken(server));

    assert.deepEqual(result, { status: 200, body: { data: { me: { id: 'developer' } } } });
    await page.close();
  });

  it('blocks a page from any other origin', async () => {
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${otherPort}/`);

    const result = await callApi(page, `${server.base}/graphql`, devToken(server));

    assert.ok(result.error, `the browser let the call through: ${JSON.stringify(result)}`);
    assert.match(result.error, /Failed to fetch/);
    await page.close();
  });
});
