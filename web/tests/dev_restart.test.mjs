// Browser test of a development server restarting under an open tab: the server makes a new
// signing key each time it starts, so the tab's token is refused; the app, which got it from
// /dev/token, fetches a new one once and carries on (its live connection and its requests),
// instead of showing an error or the sign-in page.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, launchBrowser, waitFor, freePort, graphql } from './harness.mjs';

describe('the web app when its development server restarts', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskstream-restart-'));
  // Both runs share the address and the database: only the signing key changes.
  const env = { DATABASE_URL: `sqlite://${dir}/t.db?mode=rwc` };
  let port;
  let server;
  let browser;

  before(async () => {
    port = await freePort();
    server = await startServer(env, { port });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Restarts the server on its address and database; checks the old token is refused now. */
  async function restart(oldToken) {
    await server.stop();
    server = await startServer(env, { port });
    const refused = await fetch(`${server.base}/graphql`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${oldToken}` },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    assert.equal(refused.status, 401, 'the new server refuses the old token');
  }

  /** A signed-in tab with its live connection up, recording its refused requests and errors. */
  async function openTab(prepare = async () => {}) {
    const page = await browser.context.newPage();
    await prepare(page);
    const refused = [];
    const errors = [];
    page.on('response', (r) => { if (r.status() === 401) refused.push(new URL(r.url()).pathname); });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(server.base);
    await page.locator('#zone-note', { hasText: 'Signed in as developer' }).waitFor();
    await waitFor('the live connection is up', () => page.evaluate(() => document.body.dataset.live === 'live'));
    const token = await page.evaluate(() => localStorage.getItem('taskstream.token'));
    return { page, refused, errors, token };
  }

  it('reconnects the live connection of an open tab with a new development token, without an error', async () => {
    const { page, refused, errors, token } = await openTab();
    await restart(token);
    // No request from the page: the live connection, refused with the old token, renews it.
    await waitFor('the live connection is up again', () => page.evaluate(() => document.body.dataset.live === 'live'));
    const renewed = await page.evaluate(() => localStorage.getItem('taskstream.token'));
    assert.notEqual(renewed, token);
    assert.deepEqual(refused, [], 'no request was refused: the socket renewed the token');
    assert.equal((await graphql(server.base, renewed, '{ me { id } }')).me.id, 'developer');
    // Live updates flow again: a task made elsewhere appears.
    await graphql(server.base, renewed, 'mutation { createTask(input: { title: "Made in GraphiQL" }) { id } }');
    await page.locator('#task-list .task', { hasText: 'Made in GraphiQL' }).waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Sign in' }).count(), 0, 'still signed in');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('retries a request refused after a restart once, with a new development token', async () => {
    // The live connection stays away after the restart (it would renew the token first).
    let held = null;
    let hold = false;
    const { page, refused, errors, token } = await openTab((tab) => tab.routeWebSocket(/\/graphql\/ws$/, (ws) => {
      if (hold) held = ws;
      else ws.connectToServer();
    }));
    hold = true;
    await restart(token);
    await waitFor('the tab tries to reconnect, and is held', () => held !== null);
    await page.getByRole('button', { name: 'New task' }).click();
    const dialog = page.getByRole('dialog', { name: 'New task' });
    await dialog.getByLabel('Title', { exact: true }).fill('Written after the restart');
    await dialog.getByRole('button', { name: 'Create task' }).click();
    // Saved without an error: the dialog closes and the task is listed.
    await dialog.waitFor({ state: 'detached' });
    await page.locator('#task-list .task', { hasText: 'Written after the restart' }).waitFor();
    assert.deepEqual(refused, ['/graphql'], 'refused once, then retried with the new token');
    assert.notEqual(await page.evaluate(() => localStorage.getItem('taskstream.token')), token);
    // Let the live connection back: it uses the renewed token.
    hold = false;
    await held.close();
    await waitFor('the live connection is up again', () => page.evaluate(() => document.body.dataset.live === 'live'));
    assert.deepEqual(refused, ['/graphql']);
    assert.equal(await page.getByRole('heading', { name: 'Sign in' }).count(), 0, 'still signed in');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('recovers a reloaded tab whose stored development token died with the old server', async () => {
    const page = await browser.context.newPage();
    await page.goto(server.base);
    await page.locator('#zone-note', { hasText: 'Signed in as developer' }).waitFor();
    const before = await page.evaluate(() => localStorage.getItem('taskstream.token'));
    await server.stop();
    server = await startServer(env, { port });
    await page.reload();
    await page.locator('#task-list .task', { hasText: 'Written after the restart' }).waitFor();
    assert.notEqual(await page.evaluate(() => localStorage.getItem('taskstream.token')), before);
  });
});
