// GraphiQL at /graphiql in Debian's Chromium against the real taskstream binary in development
// mode, with every request to another origin refused: the page must work from what the binary
// serves (the vendored, pinned bundles), with the development token in its Headers tab. And the
// schema the server introspects to equals schema.graphql, as graphql-js (the reference
// implementation, the one GraphiQL itself runs) reads both.

import fs from 'node:fs';
import path from 'node:path';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  GraphQLSchema, buildClientSchema, buildSchema, getIntrospectionQuery, printSchema,
} from 'graphql';
import { REPO, startServer, launchBrowser, waitFor, graphql } from './harness.mjs';

/**
 * Replaces the query editor's text (through its CodeMirror instance) and, for a non-empty
 * text, waits until GraphiQL has parsed it: GraphiQL re-reads the document 100 ms after an
 * edit, and until then runs the previous one (over HTTP, if that was not a subscription).
 */
async function setQuery(page, text) {
  const editor = page.locator('.graphiql-query-editor .CodeMirror');
  await editor.evaluate((el, t) => {
    el.CodeMirror.setValue(t);
    el.CodeMirror.focus();
  }, text);
  if (text) {
    await waitFor('GraphiQL has parsed the new query', () =>
      editor.evaluate((el, t) => el.CodeMirror.documentAST?.loc?.source?.body === t, text));
  }
}

function resultText(page) {
  return page.locator('.result-window .CodeMirror').evaluate((el) => el.CodeMirror.getValue());
}

async function runQuery(page, text) {
  await setQuery(page, text);
  await page.getByRole('button', { name: /Execute query/ }).click();
}

describe('GraphiQL with no network beyond the server', () => {
  let server;
  let browser;
  let page;
  let origin;
  /** Every URL the page asked for outside the server's origin (all refused). */
  const elsewhere = [];
  /** Console errors and uncaught exceptions (a content security policy violation is one). */
  const errors = [];

  before(async () => {
    server = await startServer();
    origin = new URL(server.base).origin;
    browser = await launchBrowser();
    page = await browser.context.newPage();
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.origin === origin) return route.continue();
      elsewhere.push(url.href);
      return route.abort('blockedbyclient');
    });
    // WebSocket handshakes do not go through page.route; record them too.
    page.on('websocket', (ws) => {
      const url = new URL(ws.url());
      if (url.host !== new URL(origin).host) elsewhere.push(url.href);
    });
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('starts the editor from the binary alone, with the token in the Headers tab', async () => {
    await page.goto(`${server.base}/graphiql`);
    await page.locator('.graphiql-query-editor .CodeMirror').waitFor();
    assert.equal(await page.locator('#graphiql', { hasText: 'Loading...' }).count(), 0);
    const { token } = await (await fetch(`${server.base}/dev/token`)).json();
    const headersEditor = page.locator('.graphiql-editor-tool .CodeMirror').last();
    await headersEditor.waitFor();
    const headers = JSON.parse(await headersEditor.evaluate((el) => el.CodeMirror.getValue()));
    assert.match(headers.Authorization, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/, 'a bearer JWT is in the Headers tab');
    const fromPage = headers.Authorization.slice('Bearer '.length);
    assert.ok(server.output().includes(`Token for user "developer":\n${fromPage}\n`),
      'the Headers tab has the token printed at start-up');
    // It names the same user as a fresh one from /dev/token (the web app's).
    assert.deepEqual(await graphql(server.base, fromPage, '{ me { id } }'),
      await graphql(server.base, token, '{ me { id } }'));
  });

  it('shows type Task and its fields in the docs explorer', async () => {
    await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
    const docs = page.locator('.graphiql-doc-explorer');
    await docs.getByText('All Schema Types').waitFor();
    await docs.locator('a.graphiql-doc-explorer-type-name', { hasText: /^Task$/ }).click();
    await docs.locator('.graphiql-doc-explorer-title', { hasText: /^Task$/ }).waitFor();
    await docs.locator('a.graphiql-doc-explorer-field-name', { hasText: /^title$/ }).waitFor();
  });

  it('offers fields of the schema while typing', async () => {
    await setQuery(page, '');
    await page.keyboard.type('{ ta');
    const hints = page.locator('.CodeMirror-hints li');
    await waitFor('the hint list offers tasks', async () =>
      (await hints.allTextContents()).includes('tasks'));
    await page.keyboard.press('Escape');
  });

  it('runs a query as the development user', async () => {
    await runQuery(page, '{ me { id } }');
    const result = await waitFor('a result is shown', async () => {
      const text = await resultText(page);
      return text.trim() ? JSON.parse(text) : null;
    });
    assert.deepEqual(result, { data: { me: { id: 'developer' } } });
  });

  it('receives a subscription over the same-origin WebSocket', async () => {
    await runQuery(page, 'subscription { taskChanged { kind task { title } } }');
    const { token } = await (await fetch(`${server.base}/dev/token`)).json();
    // The subscription is live once the server counts it; a change made before would be missed,
    // so create tasks until one arrives (each attempt is a new change).
    const result = await waitFor('the subscription shows a created task', async () => {
      await graphql(server.base, token, 'mutation { createTask(input: { title: "From elsewhere" }) { id } }');
      const text = await resultText(page);
      return text.includes('From elsewhere') ? text : null;
    }, 30000, 500);
    assert.match(result, /"kind": "CREATED"/);
    assert.doesNotMatch(result, /UNAUTHENTICATED|errors/);
    await page.getByRole('button', { name: /Stop query/ }).click();
  });

  it('opens its dialogs, whose scroll lock is the page\'s one <style> element', async () => {
    await page.getByRole('button', { name: 'Open settings dialog' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Clear storage').waitFor();
    // The element exists and carries the nonce the page's policy allows (else the violation
    // is a console error, checked below).
    assert.ok(await page.locator('style[nonce]').count() >= 1);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  it('asked nothing of any other origin and broke no content security policy', () => {
    assert.deepEqual(elsewhere, []);
    assert.deepEqual(errors, []);
  });
});

describe('introspection read by graphql-js', () => {
  let server;

  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });

  it('gives back schema.graphql', async () => {
    const { token } = await (await fetch(`${server.base}/dev/token`)).json();
    // graphql-js's own introspection query (what GraphiQL and most tools send), under the
    // server's default document limits.
    const result = await graphql(server.base, token, getIntrospectionQuery());
    const served = buildClientSchema(result);
    const committed = buildSchema(fs.readFileSync(path.join(REPO, 'schema.graphql'), 'utf8'));
    // printSchema prints types in the schema's type map order, which is the order in the SDL
    // file for one and the order of the introspection result's `types` for the other; the
    // two orders are each server-defined and carry no meaning, so types (and directives) are
    // sorted by name first. Fields, arguments and enum values keep their order: that order is
    // part of what a client sees and must match.
    assert.equal(printSchema(sortedByName(served)), printSchema(sortedByName(committed)));
  });
});

/** `schema` with its types and directives listed in name order. */
function sortedByName(schema) {
  const config = schema.toConfig();
  // By UTF-16 code units, like Array.prototype.sort's default: no locale involved.
  const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return new GraphQLSchema({
    ...config,
    types: [...config.types].sort(byName),
    directives: [...config.directives].sort(byName),
  });
}
