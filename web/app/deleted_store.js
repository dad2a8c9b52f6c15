// The deleted tasks (`deletedTasks`): most recently deleted first, each as it was when deleted,
// a page at a time. Live changes keep it current while a view shows it: a deletion anywhere
// loads it again (debounced; the new one goes on top), and a task created again that it lists
// (a restore, here or elsewhere) leaves it without a request. Restoring itself is the task
// store's (`restore`), since the task goes back into the list; the view then calls `restored`.

import { gql } from './api.js';
import { DELETED_TASKS } from './operations.js';
import { createState, createRequests, later, emptyPage, PAGE, MAX_PAGE, REFETCH_DELAY_MS } from './store.js';

export function createDeletedStore({ request = gql, delay = REFETCH_DELAY_MS } = {}) {
  const state = createState({ ...emptyPage(), loading: false });
  const requests = createRequests(() => refetch.schedule());
  const refetch = later(() => load(), delay);

  /**
   * Loads the deleted tasks again (as many as are listed, at least a page), or with `append`
   * the page after the last one. Errors end up in the state.
   */
  async function load({ append = false } = {}) {
    refetch.cancel();
    const listed = state.getState().items;
    const variables = {
      first: append ? PAGE : Math.min(MAX_PAGE, Math.max(PAGE, listed.length)),
      after: append ? state.getState().pageInfo.endCursor : null,
    };
    state.set({ loading: true });
    try {
      await requests.run(() => request(DELETED_TASKS, variables), (data) => {
        const { nodes, pageInfo } = data.deletedTasks;
        const before = state.getState().items;
        const ids = new Set(before.map((d) => d.task.id));
        const items = append ? before.concat(nodes.filter((d) => !ids.has(d.task.id))) : nodes;
        state.set({ items, pageInfo, loaded: true, loading: false, error: null });
      });
    } catch (error) {
      state.set({ loading: false, error });
    }
  }

  /** Takes task `id` off the list (it was restored); whether it was listed. */
  function drop(id) {
    const { items } = state.getState();
    if (!items.some((d) => d.task.id === id)) return false;
    state.set({ items: items.filter((d) => d.task.id !== id) });
    return true;
  }

  return {
    ...state.readers,
    /** Starts afresh for a view that shows the list: nothing listed, then its first page. */
    restart() {
      state.set(emptyPage());
      return load();
    },
    load,
    loadMore: () => load({ append: true }),
    /** Loads again, debounced, if a view shows the list (the next one to do so loads it anyway). */
    invalidate() {
      if (state.watched) refetch.schedule();
    },
    /**
     * Applies a change of one task ({kind, taskId}, as `taskChanged` delivers it): 'refetch'
     * for a deletion, 'applied' for a listed task created again, else 'ignored'.
     */
    applyChange({ kind, taskId }) {
      if (kind === 'DELETED') {
        requests.noteEvent();
        if (state.watched) refetch.schedule();
        return 'refetch';
      }
      if (kind !== 'CREATED') return 'ignored';
      // A load on its way may still list it.
      requests.noteEvent();
      return drop(taskId) ? 'applied' : 'ignored';
    },
    /** Task `id` was restored from this tab: it leaves the list. */
    restored: (id) => {
      drop(id);
    },
  };
}
