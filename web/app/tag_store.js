// The user's tags with how many tasks carry each: the tag filter, the editor's suggestions and
// the Tags screen read them here. The counts are kept live only while the Tags screen shows
// them (elsewhere they are refreshed when it opens): a new task adds one to each of its tags,
// a task with a tag the store does not know yet, an edit or a deletion (whose tags before the
// change only the server knows) make it refetch once, debounced. Completing or reopening
// changes no tag.

import { gql } from './api.js';
import { TAG_LIST, CREATE_TAG, UPDATE_TAG, DELETE_TAG } from './operations.js';
import { createState, createRequests, later, REFETCH_DELAY_MS } from './store.js';

export function createTagStore({ request = gql, delay = REFETCH_DELAY_MS } = {}) {
  const state = createState({ tags: [], loaded: false });
  const requests = createRequests(() => refetch.schedule());
  const refetch = later(() => refresh().catch(() => {}), delay);

  /** Loads the tags; resolves to them (rejects on an error). */
  async function refresh() {
    refetch.cancel();
    await requests.run(() => request(TAG_LIST), (data) => state.set({ tags: data.tags, loaded: true }));
    return state.getState().tags;
  }

  /** Applies a change of one task ({kind, task}, as `taskChanged` delivers it). */
  function applyTaskChange({ kind, task }) {
    if (!state.watched || kind === 'COMPLETED' || kind === 'REOPENED') return 'ignored';
    if (kind === 'CREATED' && task && !task.tags.length) return 'ignored';
    requests.noteEvent();
    const { tags } = state.getState();
    const carried = new Set(task && kind === 'CREATED' ? task.tags.map((t) => t.id) : []);
    if (carried.size && [...carried].every((id) => tags.some((t) => t.id === id))) {
      state.set({ tags: tags.map((t) => (carried.has(t.id) ? { ...t, taskCount: t.taskCount + 1 } : t)) });
      return 'applied';
    }
    refetch.schedule();
    return 'refetch';
  }

  /** Runs a tag mutation, then reloads the tags; resolves to the mutation's answer. */
  async function mutate(operation, variables) {
    const answer = Object.values(await request(operation, variables))[0];
    await refresh();
    return answer;
  }

  return {
    ...state.readers,
    refresh,
    applyTaskChange,
    create: (name, color) => mutate(CREATE_TAG, { name, color }),
    /** `changes`: {name?, color?}; a null colour removes it. */
    update: (id, changes) => mutate(UPDATE_TAG, { id, ...changes }),
    remove: (id) => mutate(DELETE_TAG, { id }),
  };
}
