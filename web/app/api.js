// The GraphQL client: one POST per operation with the stored bearer token. Errors keep the
// API's `extensions.code` and the input field their message names, so forms can show them
// next to that field.

const TOKEN_KEY = 'taskstream.token';

export function storedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function storeToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** An error the API returned (`code` is `extensions.code`), or a transport failure. */
export class ApiError extends Error {
  constructor(message, code, field) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.field = field;
  }
}

/**
 * The input field an error message names, as a dotted path without the `input.` prefix and
 * list indices: "input.recurrence.rule: ..." -> "recurrence.rule", "input.reminders[1] ..." ->
 * "reminders", "name must not be empty" -> "name". Null when the message starts otherwise.
 */
export function fieldOf(message) {
  const match = /^([a-z][A-Za-z]*(?:\[\d+\])?(?:\.[a-z][A-Za-z]*(?:\[\d+\])?)*)(?=[\s:]|$)/.exec(message || '');
  if (!match) return null;
  const path = match[1].replace(/\[\d+\]/g, '').replace(/^input\./, '');
  return path === 'input' ? null : path;
}

/** The message with its `input.` prefixes dropped and a capital first letter, for people. */
export function humanMessage(message) {
  const text = String(message || '').replace(/\binput\./g, '');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

let onUnauthenticated = () => {};
/** Registers what to do when the API rejects the token (HTTP 401). */
export function setUnauthenticatedHandler(handler) {
  onUnauthenticated = handler;
}

/** Runs one operation and returns its `data`; throws an ApiError on any error. */
export async function gql(query, variables = {}) {
  const headers = { 'Content-Type': 'application/json' };
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables }),
    });
  } catch (e) {
    throw new ApiError(`The server cannot be reached (${e.message}).`, 'NETWORK', null);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The server answered HTTP ${response.status} without JSON.`, 'NETWORK', null);
  }
  if (response.status === 401) {
    onUnauthenticated();
    const first = body.errors?.[0];
    throw new ApiError(first?.message || 'Not signed in.', 'UNAUTHENTICATED', null);
  }
  if (body.errors?.length) {
    const first = body.errors[0];
    const code = first.extensions?.code || 'ERROR';
    throw new ApiError(first.message, code, code === 'BAD_USER_INPUT' ? fieldOf(first.message) : null);
  }
  return body.data;
}
