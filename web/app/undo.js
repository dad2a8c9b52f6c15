// Undo: completing or deleting a task shows a toast with an Undo button for UNDO_MS (the timer
// pauses while the pointer or the focus is on the toast; Ctrl+Z or ⌘Z outside a text field is
// the same as the button). One offer at a time: a new one ends the one before.
//
// Both are sent at once. Undo reopens a completed task (`reopenTask`) and restores a deleted one
// (`restoreTask`: the same task, with its tags and pending reminders, as a new version of it).
// An offer that ends (timed out, dismissed or replaced) just goes away: there is nothing left to
// send, and a deleted task can still be restored from Recently deleted (deleted.js).

import { h, announce } from './dom.js';
import { restoreFailure } from './history_words.js';

/** How long an Undo is offered. */
export const UNDO_MS = 5000;

/** The offer on screen: {message, onUndo, onEnd, timer, remaining, since}, or null. */
let offer = null;
let toast = null;

/**
 * Shows `message` with an Undo button. `onUndo()` runs if the user undoes in time; `onEnd()`
 * otherwise, once: on time-out, dismissal or a newer offer.
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

/** Ends the offer on screen (not undone), e.g. when the user signs out. */
export function endUndo() {
  end();
}

/**
 * Deletes `task` through `store` (the task store), says so and offers to undo: Undo restores it.
 * Resolves once the offer has ended: to 'restored', 'deleted', or 'failed' (the deletion or the
 * restore was refused; the error is announced in words).
 */
export async function deleteWithUndo(store, task) {
  const title = task.title;
  try {
    await store.remove(task.id);
  } catch (e) {
    if (e.code !== 'NOT_FOUND') {
      announce(`“${title}” was not deleted: ${e.message}`, 'error');
      return 'failed';
    }
    // Deleted elsewhere meanwhile: what the user wanted, and just as restorable.
    store.applyChange({ kind: 'DELETED', taskId: task.id, task: null });
  }
  return new Promise((resolve) => {
    offerUndo(`Deleted “${title}”.`, {
      async onUndo() {
        try {
          await store.restore(task.id);
          announce(`Restored “${title}”.`);
          resolve('restored');
        } catch (e) {
          announce(`“${title}” was not restored: ${restoreFailure(e)}`, 'error');
          resolve('failed');
        }
      },
      onEnd: () => resolve('deleted'),
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

function end() {
  close()?.onEnd();
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
