// Small DOM helpers: element creation without innerHTML (so API text is never parsed as
// markup) and the one polite live region every view announces feedback through.

/** Keys set as attributes: they have no (writable) property of the same name. */
const ATTRIBUTES = new Set(['role', 'for', 'list', 'form']);

/**
 * Creates an element. `props` sets properties (`class`, `text`, `on*` handlers, `dataset`,
 * attributes with a dash or `aria`); children may be nodes, strings, or falsy (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key.includes('-') || ATTRIBUTES.has(key)) el.setAttribute(key, value === true ? '' : value);
    else el[key] = value;
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let announceTimer;
/**
 * Says `message` through the polite live region, also shown as a toast unless `shown` is false
 * (the undo toast shows its own message).
 */
export function announce(message, kind = 'info', { shown = true } = {}) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = message;
  region.dataset.kind = kind;
  region.classList.toggle('spoken', !shown);
  region.classList.add('shown');
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => region.classList.remove('shown'), 6000);
}

let uid = 0;
/** A document-unique id with a readable prefix. */
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** Debounces `fn` by `ms` milliseconds. */
export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
