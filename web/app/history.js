// The history panel of one task, in a modal dialog over the editor or the deleted tasks: every
// version newest first (`Task.history`), each with its kind, time and changes in words
// (history_words.js), a page at a time ("Show older" follows the cursor). For an occurrence a
// recurrence rule created, the occurrence it came from is named and its history is a click
// away ("Back" returns). A deleted task is read as it was just before its deletion
// (`task(id, asOf)`), since `task(id)` no longer has it.

import { gql, humanMessage } from './api.js';
import { h, replace } from './dom.js';
import { TASK_HISTORY } from './operations.js';
import { formatDateTime, instantBefore } from './time.js';
import { kindWords, changeLines, causeWords, recurrenceSource, versionTime } from './history_words.js';

/** How many versions the panel asks for at a time. */
export const HISTORY_PAGE = 20;

/**
 * Opens the history of `task` ({id, title}). `deletedAt` (RFC 3339) for a deleted task: its
 * history is read from the moment before.
 */
export function openHistory(task, { deletedAt = null } = {}) {
  const opener = document.activeElement;
  const heading = h('h2', { id: 'history-heading', tabIndex: -1 });
  const status = h('p', { class: 'muted', id: 'history-status', role: 'status' });
  const list = h('ol', { class: 'history', id: 'history-list', 'aria-labelledby': 'history-heading' });
  const error = h('p', { class: 'error', id: 'history-error', role: 'alert' });
  const older = h('button', { type: 'button', id: 'history-older', hidden: true, text: 'Show older',
    onclick: () => loadPage() });
  const back = h('button', { type: 'button', id: 'history-back', hidden: true, onclick: () => show(trail.pop()) });
  const dialog = h('dialog', { class: 'editor history-panel', 'aria-labelledby': 'history-heading' },
    heading, status, list, error,
    h('div', { class: 'actions' }, older, back,
      h('button', { type: 'button', id: 'history-close', text: 'Close', onclick: () => close() })));
  document.body.append(dialog);
  /** The task shown ({id, title, asOf}), the ones shown before it, and where its next page starts. */
  let current = null;
  const trail = [];
  let cursor = null;
  let shown = 0;
  /** The number of the latest request: an answer for a task no longer shown is dropped. */
  let seq = 0;

  function close() {
    seq += 1;
    dialog.close();
    dialog.remove();
    if (opener?.isConnected) opener.focus();
  }
  dialog.addEventListener('cancel', (e) => { e.preventDefault(); close(); });

  /** Shows the history of `target` from its newest version. */
  function show(target) {
    current = target;
    cursor = null;
    shown = 0;
    heading.textContent = `History of “${target.title}”`;
    const previous = trail[trail.length - 1];
    back.hidden = !previous;
    back.textContent = previous ? `Back to “${previous.title}”` : '';
    replace(list);
    older.hidden = true;
    heading.focus();
    return loadPage();
  }

  async function loadPage() {
    const mine = ++seq;
    const first = shown === 0;
    error.textContent = '';
    older.disabled = true;
    list.setAttribute('aria-busy', 'true');
    status.textContent = 'Loading…';
    try {
      const data = await gql(TASK_HISTORY, { id: current.id, asOf: current.asOf, first: HISTORY_PAGE, after: cursor });
      if (mine !== seq) return;
      if (!data.task) {
        status.textContent = '';
        error.textContent = 'This task no longer exists, so its history cannot be shown.';
        older.hidden = true;
        return;
      }
      const { nodes, pageInfo } = data.task.history;
      const entries = nodes.map(entry);
      list.append(...entries);
      shown += nodes.length;
      cursor = pageInfo.endCursor;
      older.hidden = !pageInfo.hasNextPage;
      status.textContent = `Newest first: ${shown} ${shown === 1 ? 'version' : 'versions'}${
        pageInfo.hasNextPage ? ', older ones under “Show older”' : ''}.`;
      // After "Show older", the first of the older versions has the focus.
      if (!first && entries.length) entries[0].focus();
    } catch (e) {
      if (mine !== seq) return;
      status.textContent = '';
      error.textContent = `The history cannot be shown: ${humanMessage(e.message)}`;
    } finally {
      if (mine === seq) {
        older.disabled = false;
        list.removeAttribute('aria-busy');
      }
    }
  }

  /** One version: its kind and time, what caused it, and what it changed. */
  function entry(version) {
    const previous = version.task?.previousOccurrence;
    const cause = causeWords(version.causedBy, previous);
    const source = recurrenceSource(version.causedBy);
    const lines = changeLines(version);
    return h('li', { class: `version kind-${version.kind.toLowerCase()}`, tabIndex: -1,
      dataset: { version: String(version.version), kind: version.kind } },
      h('p', { class: 'version-head' },
        h('span', { class: 'kind', text: kindWords(version.kind) }), ' · ',
        h('time', { dateTime: version.at, title: formatDateTime(version.at), text: versionTime(version.at) })),
      cause && h('p', { class: 'cause' }, cause,
        previous && previous.id === source && ' ',
        previous && previous.id === source && h('button', { type: 'button', class: 'link', text: `Show its history`,
          'aria-label': `Show the history of “${previous.title}”`,
          onclick: () => {
            trail.push(current);
            show({ id: previous.id, title: previous.title, asOf: null });
          } })),
      lines.length > 0 && h('ul', { class: 'changes' }, lines.map((line) => h('li', { dataset: { field: line.field } },
        h('span', { class: 'change-field', text: `${line.label}:` }), ' ',
        line.from !== null && h('span', { class: 'old', text: line.from }),
        line.from !== null && ' → ',
        h('span', { class: 'new', text: line.to })))));
  }

  dialog.showModal();
  show({ id: task.id, title: task.title, asOf: deletedAt ? instantBefore(deletedAt) : null });
  return dialog;
}
