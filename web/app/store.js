// What the stores (task_store.js, tag_store.js, notification_store.js) share, small and
// hand-written: state behind getState() and subscribe(listener); watch(), held while a view
// shows the store (a store refetches for live events only then: the view that watches it next
// loads it anyway); numbered requests, so that an older answer arriving late never overwrites a
// newer one; and a debounced timer for "refetch once".

/** How many items a list asks for at first, and the most one request may ask for (the API's limits). */
export const PAGE = 20;
export const MAX_PAGE = 100;
/** How long live events that need a refetch are gathered into one. */
export const REFETCH_DELAY_MS = 150;

/** The state of a paged list before it has loaded. */
export function emptyPage() {
  return { items: [], pageInfo: { hasNextPage: false, endCursor: null }, totalCount: 0, loaded: false, error: null };
}

/**
 * State with getState(), subscribe(listener) (returns the unsubscribe) and set(changes);
 * `readers` holds what a store hands out as its own: getState, subscribe and watch.
 */
export function createState(initial) {
  let state = initial;
  const listeners = new Set();
  let watchers = 0;
  const readers = {
    getState: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Marks the store as shown until the returned function is called. */
    watch() {
      watchers += 1;
      let watching = true;
      return () => {
        if (watching) watchers -= 1;
        watching = false;
      };
    },
  };
  return {
    ...readers,
    readers,
    set(changes) {
      state = { ...state, ...changes };
      for (const listener of [...listeners]) listener(state);
    },
    get watched() {
      return watchers > 0;
    },
  };
}

/**
 * The requests behind one piece of state. Only the newest one's answer is applied; an older one
 * that arrives late is dropped. A live event noted while the newest is on its way may be missing
 * from its answer, so `onMissed` runs once that answer is applied (the store refetches).
 */
export function createRequests(onMissed) {
  let latest = 0;
  let waiting = false;
  let missed = false;
  return {
    /**
     * Sends a request (`send()`) and gives its answer to `apply` unless a newer request was
     * made meanwhile. Resolves to whether it was applied; rejects with the newest one's error.
     */
    async run(send, apply) {
      const mine = ++latest;
      waiting = true;
      missed = false;
      let data;
      try {
        data = await send();
      } catch (e) {
        if (mine !== latest) return false;
        waiting = false;
        throw e;
      }
      if (mine !== latest) return false;
      waiting = false;
      apply(data);
      if (missed) {
        missed = false;
        onMissed();
      }
      return true;
    },
    /** A live event arrived: the answer on its way may predate it. */
    noteEvent() {
      if (waiting) missed = true;
    },
  };
}

/** `fn` run once, `ms` after the last schedule(); cancel() forgets it. */
export function later(fn, ms) {
  let timer = null;
  return {
    schedule() {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        fn();
      }, ms);
    },
    cancel() {
      clearTimeout(timer);
      timer = null;
    },
  };
}
