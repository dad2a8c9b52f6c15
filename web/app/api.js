// The GraphQL client: one POST per operation with the stored bearer token. Errors keep the
// API's `extensions.code` and `extensions.field` (the input path a BAD_USER_INPUT concerns),
// so forms can show them next to that field.

const TOKEN_KEY = 'taskstream.token';

export function storedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function storeToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
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
    throw new ApiError(first.message, code, code === 'BAD_USER_INPUT' ? first.extensions?.field : null);
  }
  return body.data;
}
