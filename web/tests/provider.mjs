// A real OpenID Provider for the browser tests: panva's certified `oidc-provider` on a free
// loopback port, with one public client (the web app, PKCE required) and one account. Its login
// and consent are automatic: the interaction page signs the account in and grants the scopes
// asked for at once, so a test sees the provider only as a redirect there and back.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';
import { freePort } from './harness.mjs';

/** The one account the provider signs in, and the claims it has. */
export const ACCOUNT = { sub: 'oidc-user', email: 'oidc-user@example.test' };

export const CLIENT_ID = 'taskstream-web';

/**
 * Starts the provider. `redirectOrigin`: the web app's origin, whose `/` is the client's only
 * redirect URI. Returns its issuer and JWKS URL, how many sign-ins it completed, and `stop`.
 */
export async function startProvider({ redirectOrigin }) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [`${redirectOrigin}/`],
    }],
    jwks: { keys: [{ ...key, kid: 'test-key', use: 'sig', alg: 'RS256' }] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    async findAccount(ctx, id) {
      if (id !== ACCOUNT.sub) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: ACCOUNT.email, email_verified: true, name: 'OIDC User' };
        },
      };
    },
    pkce: { methods: ['S256'], required: () => true },
    // Lifetimes of what a test run creates (seconds); a test never outlives them.
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600 },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // A public client may call the token endpoint from its redirect URIs' origins only.
    clientBasedCORS: (ctx, origin, client) => client.redirectUris.some((uri) => new URL(uri).origin === origin),
  });
  let signIns = 0;
  const callback = provider.callback();
  const server = http.createServer((req, res) => {
    if (!req.url.startsWith('/interaction/')) {
      callback(req, res);
      return;
    }
    finishInteraction(provider, req, res).then(() => { signIns += 1; }, (e) => {
      res.statusCode = 500;
      res.end(`interaction failed: ${e.message}`);
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  return {
    issuer,
    jwksUrl: discovery.jwks_uri,
    tokenEndpoint: discovery.token_endpoint,
    signIns: () => signIns,
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Logs the account in and grants every scope the client asked for, in one step. */
async function finishInteraction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: ACCOUNT.sub, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, {
    login: { accountId: ACCOUNT.sub },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}
