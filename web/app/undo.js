// Undo: completing or deleting a task shows a toast with an Undo button for UNDO_MS (the timer
// pauses while the pointer or the focus is on the toast; Ctrl+Z or ⌘Z outside a text field is
// the same as the button). One offer at a time: a new one ends the one before.
//
// Completing is sent at once; Undo reopens the task (`reopenTask`). Deleting cannot be sent at
// once, since the API has no `restoreTask` yet: `deleteWithUndo` hides the task in the list and
// sends `deleteTask` only when the offer ends (it timed out, was dismissed or replaced), or at
// once, with `keepalive`, when the page is hidden or the user signs out, so no deletion is lost
// with the tab. Undo before then just shows the task again. When the API gains `restoreTask`,
// `deleteWithUndo` is the one function to replace: delete at once, and undo with restoreTask.

import { h, announce } from './dom.js';

/** How long an Undo is offered. */
export const UNDO_MS = 5000;

/** The offer on screen: {message, onUndo, onEnd, timer, remaining, since}, or null. */
let offer = null;
let toast = null;

/**
 * Shows `message` with an Undo button. `onUndo()` runs if the user undoes in time; `onEnd({
 * keepalive })` otherwise, once: on time-out, dismissal, a newer offer, or (with `keepalive`)
 * when the page is hidden or the user signs out.
 */
export function offerUndo(message, { onUndo, onEnd = () => {} }) {
  end();
  const el = ensureToast();
  el.querySelector('#undo-message').textContent = message;
  el.hidden = false;
  offer = { message, onUndo, onEnd, timer: null, remaining: UNDO_MS, since: 0 };
  // Said once, through the one live region; the toast shows it.
  announce(`${message} Undo is offered for ${UNDO_MS / 1000} seconds.`, 'info', { shown: false });
  if (!el.matches(':hover, :focus-within')) resume();
}

/** Ends the offer on screen (not undone), e.g. before the page goes away. */
export function endUndo({ keepalive = false } = {}) {
  end({ keepalive });
}

/**
 * Deletes `task` from `store` with an offer to undo (see the module comment), and says so.
 * Resolves once the offer has ended: to 'undone', 'deleted', or 'failed' (the task is shown again).
 */
export function deleteWithUndo(store, task) {
  const title = task.title;
  store.hide(task);
  return new Promise((resolve) => {
    offerUndo(`Deleted “${title}”.`, {
      onUndo() {
        store.unhide(task.id);
        announce(`Restored “${title}”.`);
        resolve('undone');
      },
      async onEnd({ keepalive }) {
        try {
          await store.remove(task.id, { keepalive });
          resolve('deleted');
        } catch (e) {
          if (e.code === 'NOT_FOUND') {
            // Deleted elsewhere meanwhile: what the user wanted.
            store.forget(task.id);
            resolve('deleted');
            return;
          }
          store.unhide(task.id);
          announce(`“${title}” was not deleted: ${e.message}`, 'error');
          resolve('failed');
        }
      },
    });
  });
}

function ensureToast() {
  if (toast?.isConnected) return toast;
  toast = h('div', { class: 'toast undo-toast', id: 'undo-toast', hidden: true },
    h('p', { id: 'undo-message' }),
    h('button', { type: 'button', id: 'undo-button', text: 'Undo', onclick: undo }),
    h('button', { type: 'button', class: 'dismiss', id: 'undo-dismiss', text: '×', 'aria-label': 'Dismiss',
      onclick: () => end() }));
  // While the user is on the toast, time stands still.
  toast.addEventListener('pointerenter', pause);
  toast.addEventListener('focusin', pause);
  toast.addEventListener('pointerleave', () => { if (!toast.matches(':focus-within')) resume(); });
  toast.addEventListener('focusout', (event) => {
    if (!toast.contains(event.relatedTarget) && !toast.matches(':hover')) resume();
  });
  document.body.append(toast);
  return toast;
}

function pause() {
  if (!offer || offer.timer === null) return;
  clearTimeout(offer.timer);
  offer.timer = null;
  offer.remaining = Math.max(0, offer.remaining - (Date.now() - offer.since));
}

function resume() {
  if (!offer || offer.timer !== null) return;
  offer.since = Date.now();
  offer.timer = setTimeout(() => end(), offer.remaining);
}

/** Hides the toast and forgets the offer; returns it. */
function close() {
  const current = offer;
  offer = null;
  if (current) clearTimeout(current.timer);
  if (toast) {
    const hadFocus = toast.contains(document.activeElement);
    toast.hidden = true;
    if (hadFocus) document.getElementById('main')?.focus();
  }
  return current;
}

function undo() {
  close()?.onUndo();
}

function end({ keepalive = false } = {}) {
  close()?.onEnd({ keepalive });
}

document.addEventListener('keydown', (event) => {
  if (!offer || event.key.toLowerCase() !== 'z' || !(event.ctrlKey || event.metaKey) || event.shiftKey || event.altKey) return;
  // In a text field, Ctrl+Z undoes typing; in the editor, the form is what is being undone.
  const text = 'input:not([type="checkbox"]):not([type="radio"]):not([type="button"]):not([type="submit"]), '
    + 'textarea, select, [contenteditable=""], [contenteditable="true"], dialog';
  if (event.target?.closest?.(text)) return;
  event.preventDefault();
  undo();
});
// A deletion waiting for its offer to end is sent now: the page may never come back.
window.addEventListener('pagehide', () => end({ keepalive: true }));
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') end({ keepalive: true });
});
