// Sign-in with a real OpenID Provider (oidc-provider, see provider.mjs): the app runs the
// authorization code flow with PKCE in Chromium against it, and the real taskstream binary
// accepts the provider's ID token through its JWKS. The tests of the `describe` run in order
// and share one provider, one server and one browser.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, freePort, waitFor, screenshot, graphql } from './harness.mjs';
import { startProvider, ACCOUNT, CLIENT_ID } from './provider.mjs';

const TOKEN_KEY = 'taskstream.token';

function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

describe('the web app signing in with an OpenID Connect provider', () => {
  let provider;
  let server;
  let browser;
  let page;
  let button;
  const consoleErrors = [];
  const authorizationRequests = [];

  before(async () => {
    // The provider registers the app's redirect URI, so the server's port is chosen first;
    // the server fetches the provider's keys at start-up, so the provider starts first.
    const port = await freePort();
    provider = await startProvider({ redirectOrigin: `http://127.0.0.1:${port}` });
    server = await startServer({
      JWT_JWKS_URL: provider.jwksUrl,
      JWT_ISSUER: provider.issuer,
      JWT_AUDIENCE: CLIENT_ID,
      OIDC_ISSUER: provider.issuer,
      OIDC_CLIENT_ID: CLIENT_ID,
    }, { port });
    browser = await launchBrowser();
    page = await browser.context.newPage();
    // Failed loads are expected (the 404 of /dev/token, the 401 of a refused token).
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('request', (r) => {
      if (r.url().startsWith(`${provider.issuer}/auth?`)) authorizationRequests.push(new URL(r.url()));
    });
    button = page.getByRole('button', { name: `Sign in with ${new URL(provider.issuer).host}`, exact: true });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await provider?.stop();
  });

  it('signs in with one click, there and back, and works as the provider\'s user', async () => {
    await page.goto(server.base);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await button.waitFor();
    assert.ok(await page.getByLabel('Token', { exact: true }).isVisible(), 'the paste-a-token form stays');
    await screenshot(page, 'sign-in-oidc');

    await button.click();
    await page.locator('#zone-note', { hasText: `Signed in as ${ACCOUNT.sub}` }).waitFor();
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();

    assert.equal(provider.signIns(), 1, 'the provider\'s interaction ran once');
    assert.equal(authorizationRequests.length, 1);
    const params = authorizationRequests[0].searchParams;
    assert.equal(params.get('response_type'), 'code');
    assert.equal(params.get('client_id'), CLIENT_ID);
    assert.equal(params.get('redirect_uri'), `${server.base}/`);
    assert.equal(params.get('scope'), 'openid profile email');
    assert.equal(params.get('code_challenge_method'), 'S256');
    assert.match(params.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
    assert.ok(params.get('state') && params.get('nonce'));

    const url = new URL(page.url());
    assert.equal(url.origin + url.pathname, `${server.base}/`);
    assert.equal(url.search, '', 'the code and state left the address bar');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'the pending sign-in is forgotten');
    const token = await page.evaluate((key) => localStorage.getItem(key), TOKEN_KEY);
    const claims = claimsOf(token);
    assert.equal(claims.iss, provider.issuer);
    assert.equal(claims.aud, CLIENT_ID);
    assert.equal(claims.sub, ACCOUNT.sub);
    assert.equal(claims.nonce, params.get('nonce'));

    await page.getByRole('button', { name: 'New task' }).click();
    const dialog = page.getByRole('dialog', { name: 'New task' });
    await dialog.getByLabel('Title', { exact: true }).fill('Signed in through the provider');
    await dialog.getByRole('button', { name: 'Create task' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('#task-list .task .title', { hasText: 'Signed in through the provider' }).waitFor();
    const { me, tasks } = await graphql(server.base, token, '{ me { id } tasks { nodes { title } } }');
    assert.equal(me.id, ACCOUNT.sub);
    assert.deepEqual(tasks.nodes, [{ title: 'Signed in through the provider' }]);
    assert.deepEqual(consoleErrors, []);
  });

  it('goes back to sign-in when the token is refused, and signs in again with one click', async () => {
    // A token the server no longer accepts (as an expired one): its signature is broken.
    await page.evaluate((key) => {
      const [head, body] = localStorage.getItem(key).split('.');
      localStorage.setItem(key, `${head}.${body}.AAAA`);
    }, TOKEN_KEY);
    await page.getByRole('link', { name: 'Notifications' }).click();
    await page.locator('#signin-message', { hasText: 'no longer accepts your token' }).waitFor();
    const signIns = provider.signIns();
    await button.click();
    await page.locator('#zone-note', { hasText: `Signed in as ${ACCOUNT.sub}` }).waitFor();
    await page.locator('#task-list .task .title', { hasText: 'Signed in through the provider' }).waitFor();
    assert.equal(new URL(page.url()).search, '');
    assert.equal(provider.signIns(), signIns, 'the provider\'s session let the user through without a prompt');
    const token = await page.evaluate((key) => localStorage.getItem(key), TOKEN_KEY);
    const { me } = await graphql(server.base, token, '{ me { id } }');
    assert.equal(me.id, ACCOUNT.sub);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await button.waitFor();
    assert.equal(await page.evaluate((key) => localStorage.getItem(key), TOKEN_KEY), null);
  });

  it('ignores an answer whose state it did not send, keeping no token', async () => {
    const before = provider.signIns();
    await page.goto(`${server.base}/?code=x&state=wrong`);
    const problem = page.locator('#signin-problem');
    await problem.waitFor();
    assert.match(await problem.innerText(), /does not belong to a sign-in started in this tab/);
    await button.waitFor();
    assert.equal(await page.evaluate((key) => localStorage.getItem(key), TOKEN_KEY), null);
    assert.equal(new URL(page.url()).search, '', 'the forged code left the address bar');
    assert.equal(provider.signIns(), before);
  });

  it('shows the provider\'s error and keeps no token', async () => {
    await page.goto(`${server.base}/?error=access_denied&error_description=The+user+said+no&state=s`);
    const problem = page.locator('#signin-problem');
    await problem.waitFor();
    assert.match(await problem.innerText(), /failed: The user said no/);
    assert.equal(await page.evaluate((key) => localStorage.getItem(key), TOKEN_KEY), null);
    assert.equal(new URL(page.url()).search, '');
  });

  it('shows a failed token request and keeps no token', async () => {
    // A sign-in pending in this tab whose code the provider did not issue: the state matches,
    // the exchange is refused.
    await page.goto(server.base);
    await button.waitFor();
    await page.evaluate((endpoint) => sessionStorage.setItem('taskstream.oidc', JSON.stringify({
      state: 'known', verifier: 'v'.repeat(43), nonce: 'n', tokenEndpoint: endpoint,
    })), provider.tokenEndpoint);
    await page.goto(`${server.base}/?code=not-issued&state=known`);
    const problem = page.locator('#signin-problem');
    await problem.waitFor();
    assert.match(await problem.innerText(), /refused the token request: \S/);
    assert.equal(await page.evaluate((key) => localStorage.getItem(key), TOKEN_KEY), null);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  });

  it('keeps a signed-in user signed in when a forged answer arrives', async () => {
    await page.goto(server.base);
    await button.click();
    await page.locator('#zone-note', { hasText: `Signed in as ${ACCOUNT.sub}` }).waitFor();
    const token = await page.evaluate((key) => localStorage.getItem(key), TOKEN_KEY);
    assert.ok(token, 'signed in');

    await page.goto(`${server.base}/?code=x&state=wrong`);

    await page.locator('#zone-note', { hasText: `Signed in as ${ACCOUNT.sub}` }).waitFor();
    assert.equal(await page.evaluate((key) => localStorage.getItem(key), TOKEN_KEY), token);
    assert.equal(new URL(page.url()).search, '', 'the forged code left the address bar');
    assert.equal(await page.locator('#signin-problem').count(), 0);
  });
});

describe('the web app without an OpenID Connect provider', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ JWT_SECRET: 'an-oidc-test-secret-that-is-long-enough' });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('offers no provider button, only the token form', async () => {
    assert.equal((await fetch(`${server.base}/auth/oidc`)).status, 404);
    const page = await browser.context.newPage();
    await page.goto(server.base);
    await page.locator('form.signin[data-oidc="off"]').waitFor();
    assert.equal(await page.getByRole('button', { name: /^Sign in with/ }).count(), 0);
    assert.ok(await page.getByLabel('Token', { exact: true }).isVisible());
    await waitFor('the token form has the focus', () => page.evaluate(() => document.activeElement?.id === 'token'));
  });
});
