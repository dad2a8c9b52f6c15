// Sign-in through an OpenID Connect provider: the authorization code flow with PKCE, run by
// the browser as a public client (no secret). The server only hands out its settings at
// GET /auth/oidc; the app discovers the provider's endpoints, sends the user there, and on the
// way back exchanges the code for a token that it keeps like a pasted one. The gateway checks
// that token against the provider's keys. There is no refresh token: when the token expires,
// the API answers UNAUTHENTICATED and signing in again is one click.

/** Where a sign-in in progress (state, PKCE verifier, nonce, token endpoint) waits for the
 * provider's answer: this tab only, and only until that answer comes back. */
const PENDING_KEY = 'taskstream.oidc';

let settingsPromise = null;
let settingsValue;

/** The server's OIDC settings ({issuer, clientId, scopes, token}), or null when sign-in with a
 * provider is off. Fetched once; a failed fetch counts as off. */
export function oidcSettings() {
  settingsPromise ??= fetch('/auth/oidc', { cache: 'no-store' })
    .then((response) => (response.ok ? response.json() : null))
    .catch(() => null)
    .then((settings) => {
      settingsValue = settings;
      return settings;
    });
  return settingsPromise;
}

/** The settings if they were fetched already: an object, null (off) or undefined (unknown). */
export function knownOidcSettings() {
  return settingsValue;
}

/** How the sign-in button names the provider: the issuer's host (with its port, if any). */
export function providerName(settings) {
  return new URL(settings.issuer).host;
}

/** Bytes as unpadded base64url (RFC 4648 §5), as PKCE and JWTs use it. */
export function base64url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A random value of `size` bytes, base64url-encoded. */
export function randomValue(size = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

/** The PKCE S256 challenge of a verifier: base64url(SHA-256(verifier)). */
export async function codeChallenge(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** The claims of a JWT (its payload, not verified: the gateway verifies the signature). */
export function jwtClaims(token) {
  const part = String(token).split('.')[1];
  if (!part) throw new Error('not a JWT');
  const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** Whether `url` is the provider sending the user back (a code and a state, or an error). */
export function isCallback(url) {
  const params = new URL(url).searchParams;
  return (params.has('code') && params.has('state')) || params.has('error');
}

/** A fetch of the provider's JSON that names what failed in words for people. */
async function providerJson(what, url, init) {
  let response;
  try {
    response = await fetch(url, { cache: 'no-store', ...init });
  } catch (e) {
    throw new Error(`The sign-in provider cannot be reached for ${what} (${e.message}). ` +
      'It must be reachable from this browser and allow this site (CORS).');
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Handled below: a failed request says its status, a successful one must be JSON.
  }
  if (!response.ok) {
    const reason = body?.error_description || body?.error || `HTTP ${response.status}`;
    throw new Error(`The sign-in provider refused ${what}: ${reason}.`);
  }
  if (!body) throw new Error(`The sign-in provider's ${what} answer is not JSON.`);
  return body;
}

/**
 * The endpoints of a discovery document, checked: it must name the configured issuer (OpenID
 * Connect Discovery §4.3, so one provider cannot stand in for another) and https endpoints
 * (http only when the issuer itself is http, i.e. on loopback). Throws an Error for people.
 */
export function checkDiscovery(discovery, settings) {
  const issuer = String(discovery?.issuer ?? '').replace(/\/+$/, '');
  if (issuer !== settings.issuer) {
    throw new Error(`The sign-in provider's discovery document names the issuer ${JSON.stringify(issuer)}, ` +
      `not ${settings.issuer}; sign-in was stopped.`);
  }
  const scheme = new URL(settings.issuer).protocol;
  const endpoint = (name) => {
    let url;
    try {
      url = new URL(discovery[name]);
    } catch {
      throw new Error(`The sign-in provider's discovery document has no valid ${name}.`);
    }
    if (url.protocol !== 'https:' && url.protocol !== scheme) {
      throw new Error(`The sign-in provider's ${name} is not https: ${url.href}.`);
    }
    return url.href;
  };
  return {
    authorization_endpoint: endpoint('authorization_endpoint'),
    token_endpoint: endpoint('token_endpoint'),
  };
}

/**
 * Starts signing in: discovers the provider's endpoints, keeps a new state, nonce and PKCE
 * verifier in this tab's session storage and leaves for the provider's authorization page.
 */
export async function beginSignIn(settings) {
  const discovery = checkDiscovery(await providerJson('discovery',
    `${settings.issuer}/.well-known/openid-configuration`), settings);
  const verifier = randomValue(32);
  const pending = { state: randomValue(16), verifier, nonce: randomValue(16), tokenEndpoint: discovery.token_endpoint };
  const params = new URLSearchParams({
    response_type: 'code',
    client_id: settings.clientId,
    redirect_uri: `${location.origin}/`,
    scope: settings.scopes,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await codeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const separator = discovery.authorization_endpoint.includes('?') ? '&' : '?';
  location.assign(`${discovery.authorization_endpoint}${separator}${params}`);
}

/**
 * Finishes signing in on the provider's way back to `/`: checks the state, exchanges the code
 * for a token and, for an ID token, checks its nonce. Returns the token to store; throws an
 * Error whose message is for people. Either way the pending sign-in is forgotten and the code
 * leaves the address bar, so a reload does not replay it.
 */
export async function completeSignIn() {
  const params = new URL(location.href).searchParams;
  let pending = null;
  try {
    pending = JSON.parse(sessionStorage.getItem(PENDING_KEY));
  } catch {
    // Unreadable counts as missing.
  }
  sessionStorage.removeItem(PENDING_KEY);
  history.replaceState(history.state, '', `/${location.hash}`);

  const settings = await oidcSettings();
  const provider = settings ? providerName(settings) : 'the sign-in provider';
  if (params.has('error')) {
    const reason = params.get('error_description') || params.get('error');
    throw new Error(`Signing in with ${provider} failed: ${reason}.`);
  }
  if (!pending?.state || params.get('state') !== pending.state) {
    throw new Error('This sign-in answer does not belong to a sign-in started in this tab, so it was ignored. ' +
      'Sign in again.');
  }
  if (!settings) throw new Error('Sign-in with a provider is not configured on this server (any more).');
  const issuer = params.get('iss');
  if (issuer && issuer.replace(/\/+$/, '') !== settings.issuer) {
    throw new Error(`The sign-in answer comes from ${issuer}, not from ${settings.issuer}; it was ignored.`);
  }
  const tokens = await providerJson('the token request', pending.tokenEndpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: `${location.origin}/`,
      client_id: settings.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const token = tokens[settings.token];
  if (!token || typeof token !== 'string') {
    throw new Error(`${provider} answered without an ${settings.token}.`);
  }
  if (settings.token === 'id_token') {
    let nonce;
    try {
      nonce = jwtClaims(token).nonce;
    } catch {
      throw new Error(`The ID token from ${provider} is not a readable JWT.`);
    }
    if (nonce !== pending.nonce) throw new Error(`The ID token from ${provider} is not for this sign-in (its nonce differs).`);
  }
  return token;
}
