// The GraphQL client: one POST per operation with the stored bearer token. Errors keep the
// API's `extensions.code` and `extensions.field` (the input path a BAD_USER_INPUT concerns),
// so forms can show them next to that field.

const TOKEN_KEY = 'taskstream.token';
/** Set while the stored token came from the development server's `/dev/token`. */
const DEVELOPMENT_KEY = 'taskstream.token.development';

export function storedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

/** Keeps `token` (null: forgets it); `development` when it came from `/dev/token`. */
export function storeToken(token, { development = false } = {}) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  if (token && development) localStorage.setItem(DEVELOPMENT_KEY, '1');
  else localStorage.removeItem(DEVELOPMENT_KEY);
}

/** Whether the stored token came from `/dev/token` (the app is in development mode). */
export function isDevelopmentToken() {
  return Boolean(storedToken()) && localStorage.getItem(DEVELOPMENT_KEY) === '1';
}

/**
 * An error the API returned (`code` is `extensions.code`, `path` its `extensions.field`), or a
 * transport failure. `field` is the form field `path` concerns (see `formField`).
 */
export class ApiError extends Error {
  constructor(message, code, path) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.path = path || null;
    this.field = formField(this.path);
  }
}

/**
 * The form field an input path concerns: without the `input.` root and list indices.
 * "input.recurrence.rule" -> "recurrence.rule", "input.reminders[1]" -> "reminders",
 * "name" -> "name"; null for none.
 */
export function formField(path) {
  if (!path) return null;
  const parts = path.split('.').map((part) => part.split('[')[0]);
  if (parts[0] === 'input') parts.shift();
  return parts.length ? parts.join('.') : null;
}

/** The list index an input path ends in ("input.reminders[1]" -> 1), or null. */
export function pathIndex(path) {
  if (!path || !path.endsWith(']')) return null;
  const open = path.lastIndexOf('[');
  const index = Number(path.slice(open + 1, -1));
  return Number.isInteger(index) ? index : null;
}

/**
 * The message without the input path it starts with (`path`, from `extensions.field`) and its
 * colon, when it does start with it; the API's messages name their field first.
 */
export function withoutPath(message, path) {
  const text = String(message || '');
  if (!path || !text.startsWith(path)) return null;
  const rest = text.slice(path.length);
  return rest.startsWith(':') ? rest.slice(1).trimStart() : rest;
}

/**
 * What the forms call each field the API names (its input path without `input.` and list
 * indices, as `formField` gives it): people read these labels, never `dueAt` or `input.dueAt`.
 */
export const FIELD_LABELS = {
  title: 'Title',
  description: 'Description',
  priority: 'Priority',
  dueAt: 'Due date',
  tags: 'Tags',
  recurrence: 'Repeat',
  'recurrence.rule': 'Rule',
  'recurrence.timezone': 'Repeat time zone',
  'recurrence.anchor': 'Next date counts from',
  reminders: 'Reminders',
  'reminders.minutesBeforeDue': 'Minutes before due',
  'reminders.at': 'Time',
  minutesBeforeDue: 'Minutes before due',
  expectedVersion: 'Version',
  timezone: 'Time zone',
  webhookUrl: 'Webhook URL',
  webhookSecret: 'Webhook secret',
  name: 'Name',
  color: 'Colour',
  search: 'Search',
  dueAfter: 'Due from',
  dueBefore: 'Due through',
};

/** How a list item is called: "input.reminders[1]" is "Reminder 2". */
const ITEM_LABELS = { reminders: 'Reminder', tags: 'Tag' };

/** The label of an input path ("input.dueAt" -> "Due date", "input.reminders[1]" -> "Reminder 2"), or null. */
export function fieldLabel(path) {
  const field = formField(path);
  if (!field) return null;
  const index = pathIndex(path);
  if (index !== null && ITEM_LABELS[field]) return `${ITEM_LABELS[field]} ${index + 1}`;
  // "input.reminders[0].at": the item, then the part of it.
  const item = /^(\w+)\[(\d+)\]\.(\w+)$/.exec(String(path).replace(/^input\./, ''));
  if (item && ITEM_LABELS[item[1]]) {
    const part = FIELD_LABELS[`${item[1]}.${item[3]}`] || FIELD_LABELS[item[3]];
    return `${ITEM_LABELS[item[1]]} ${Number(item[2]) + 1}${part ? `: ${part.toLowerCase()}` : ''}`;
  }
  return FIELD_LABELS[field] || null;
}

/** An input path with `input.` (list indices included), or a bare API field name the labels know. */
const PATH = /\binput\.[A-Za-z_]\w*(?:\[\d+\])?(?:\.[A-Za-z_]\w*(?:\[\d+\])?)*|\b[a-z]+[A-Z]\w*\b/g;

/**
 * The message with every field it names (`input.dueAt`, `minutesBeforeDue`) called by its
 * label: one that starts the message is its subject ("Title must not be empty"), one inside it
 * is quoted ("Repeat requires “Due date”: …").
 */
export function withLabels(message) {
  return String(message || '').replace(PATH, (path, offset) => {
    const label = fieldLabel(path);
    if (!label) return path.startsWith('input.') ? path.slice('input.'.length) : path;
    return offset === 0 ? label : `“${label}”`;
  }).replace(/(“Minutes before due”) and at\b/g, '$1 and “At a time”');
}

/** The message for people: the form's labels for the fields (`withLabels`), a capital first letter. */
export function humanMessage(message) {
  const text = withLabels(message);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

let onUnauthenticated = () => {};
/** Registers what to do when the API rejects the token (HTTP 401) for good. */
export function setUnauthenticatedHandler(handler) {
  onUnauthenticated = handler;
}

let renewer = null;
let renewal = null;
/**
 * Registers how to get a new development token (`/dev/token`), used when the API refuses one:
 * a development server makes a new signing key each time it starts, so after a restart the
 * open tab fetches a new token once and retries, instead of signing out. A pasted or provider
 * token is never renewed this way.
 */
export function setTokenRenewer(renew) {
  renewer = renew;
}

/**
 * A new token from the renewer, stored; null when there is none. Requests refused together
 * share one renewal. `refused` is the token the server refused: when another request renewed
 * it meanwhile, the newer token is the answer.
 */
export function renewToken(refused = storedToken()) {
  if (storedToken() && storedToken() !== refused) return Promise.resolve(storedToken());
  if (renewal) return renewal;
  if (!renewer || !isDevelopmentToken()) return Promise.resolve(null);
  renewal = (async () => {
    try {
      const token = await renewer();
      if (token) storeToken(token, { development: true });
      return token || null;
    } catch {
      return null;
    } finally {
      renewal = null;
    }
  })();
  return renewal;
}

/**
 * Runs one operation and returns its `data`; throws an ApiError on any error. A request
 * refused as unauthenticated is retried once with a renewed token, when there is a way to
 * renew it (development mode).
 */
export async function gql(query, variables = {}) {
  const token = storedToken();
  try {
    return await send(query, variables, token);
  } catch (e) {
    if (e.code !== 'UNAUTHENTICATED' || !e.refusedToken) throw e;
    const renewed = await renewToken(token);
    if (!renewed) {
      onUnauthenticated();
      throw e;
    }
    try {
      return await send(query, variables, renewed);
    } catch (again) {
      if (again.code === 'UNAUTHENTICATED' && again.refusedToken) onUnauthenticated();
      throw again;
    }
  }
}

/** One POST /graphql with `token`. A 401 is an UNAUTHENTICATED ApiError with `refusedToken` set. */
async function send(query, variables, token) {
  const headers = { 'Content-Type': 'application/json' };
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
    const first = body.errors?.[0];
    const error = new ApiError(first?.message || 'Not signed in.', 'UNAUTHENTICATED', null);
    error.refusedToken = true;
    throw error;
  }
  if (body.errors?.length) {
    const first = body.errors[0];
    const code = first.extensions?.code || 'ERROR';
    throw new ApiError(first.message, code, code === 'BAD_USER_INPUT' ? first.extensions?.field : null);
  }
  return body.data;
}
