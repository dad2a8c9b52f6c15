// The task list's data: the tasks the list shows for its query (filter, search, sort), cursor
// paging, the list's total and the open and overdue counts.
//
// A change of one task (a `taskChanged` event, or the answer of this tab's own mutation, which
// carries the same task) is applied where it is decidable here, without a request: the task is
// patched in place, inserted at its place in the sort order when it now matches the filter, or
// removed when it no longer does, and the counts move by the difference. It is not decidable
// with a search (word stems are matched on the server) for a task the list does not hold, with a
// title or relevance sort for a task that moves, and for an update or deletion of a task that is
// neither listed nor known to be absent from the list: then the store refetches the list once,
// debounced. Changes are applied once: a change whose version the store has seen is dropped.
// A deleted task stays deleted for the store until it is restored (`restoreTask`, from Undo or
// the deleted tasks): the API announces that as CREATED, at a version past the deletion.

import { gql } from './api.js';
import { TASK_LIST, COMPLETE_TASK, REOPEN_TASK, DELETE_TASK, RESTORE_TASK } from './operations.js';
import { priority } from './priority.js';
import { createState, createRequests, later, emptyPage, PAGE, MAX_PAGE, REFETCH_DELAY_MS } from './store.js';
import { instantMicros } from './time.js';

/** The sort keys the store can order by itself, as comparable values (null: no due date). */
const SORT_KEYS = {
  CREATED_AT: (t) => instantMicros(t.createdAt),
  UPDATED_AT: (t) => instantMicros(t.updatedAt),
  DUE_AT: (t) => (t.dueAt ? instantMicros(t.dueAt) : null),
  PRIORITY: (t) => priority(t.priority).rank,
};
/** What decides a task's place under the sort keys the store cannot order by. */
const POSITION_FIELDS = { TITLE: ['title'], RELEVANCE: ['title', 'description'] };

const tagKey = (name) => name.trim().toLowerCase();

/**
 * Whether `task` matches a TaskFilter as the server decides it (`now` in milliseconds): every
 * set field must hold; a due-date bound never matches a task without one; tag names compare
 * case-insensitively.
 */
export function matchesFilter(filter, task, now = Date.now()) {
  if (!filter) return true;
  const due = task.dueAt ? instantMicros(task.dueAt) : null;
  const overdue = due !== null && due < now * 1000 && !task.completed;
  const names = new Set(task.tags.map((tag) => tagKey(tag.name)));
  const has = (name) => names.has(tagKey(name));
  const { tags } = filter;
  const set = (value) => value !== undefined && value !== null;
  return (!set(filter.completed) || task.completed === filter.completed)
    && (!set(filter.priority) || filter.priority.includes(task.priority))
    && (!set(filter.minPriority) || priority(task.priority).rank >= priority(filter.minPriority).rank)
    && (!set(tags) || ((!set(tags.any) || tags.any.some(has)) && (!set(tags.all) || tags.all.every(has))
      && (!set(tags.none) || !tags.none.some(has))))
    && (!set(filter.dueAfter) || (due !== null && due >= instantMicros(filter.dueAfter)))
    && (!set(filter.dueBefore) || (due !== null && due < instantMicros(filter.dueBefore)))
    && (!set(filter.hasDueDate) || (due !== null) === filter.hasDueDate)
    && (!set(filter.overdue) || overdue === filter.overdue)
    && (!set(filter.recurring) || Boolean(task.recurrence) === filter.recurring)
    && (!set(filter.and) || filter.and.every((f) => matchesFilter(f, task, now)))
    && (!set(filter.or) || filter.or.some((f) => matchesFilter(f, task, now)))
    && (!set(filter.not) || !matchesFilter(filter.not, task, now));
}

/** The sort the server applies: the one asked for, else relevance with a search, else newest first. */
export function effectiveSort({ sort, search }) {
  return sort?.length ? sort : [{ field: search ? 'RELEVANCE' : 'CREATED_AT', direction: 'DESC' }];
}

/**
 * The order of two tasks under `sort` (keys the store can order by): tasks without a due date
 * last in both directions, ties by id in the direction of the last key, as the server does.
 */
export function compareTasks(a, b, sort) {
  const sign = (direction) => (direction === 'DESC' ? -1 : 1);
  for (const { field, direction } of sort) {
    const x = SORT_KEYS[field](a);
    const y = SORT_KEYS[field](b);
    if (x === y) continue;
    if (x === null) return 1;
    if (y === null) return -1;
    return (x < y ? -1 : 1) * sign(direction);
  }
  if (a.id === b.id) return 0;
  return (a.id < b.id ? -1 : 1) * sign(sort[sort.length - 1]?.direction);
}

/** Whether a change from `a` to `b` leaves the task's place under `sort` where it was. */
function samePlace(a, b, sort) {
  return sort.every(({ field }) => {
    if (SORT_KEYS[field]) return SORT_KEYS[field](a) === SORT_KEYS[field](b);
    return Boolean(POSITION_FIELDS[field]) && POSITION_FIELDS[field].every((name) => a[name] === b[name]);
  });
}

/** The task before a change of `kind` to `next`: null when it did not exist, undefined when unknown. */
function before(kind, next) {
  if (kind === 'CREATED') return null;
  if (kind === 'COMPLETED') return { ...next, completed: false, completedAt: null };
  if (kind === 'REOPENED') return { ...next, completed: true };
  return undefined;
}

/** How a change from `prior` to `next` (either null: none) moves a count of tasks with `test`. */
function delta(prior, next, test) {
  if (prior === undefined) return undefined;
  return (next && test(next) ? 1 : 0) - (prior && test(prior) ? 1 : 0);
}

/**
 * The listed tasks with their link to the occurrence `id` (now `next`, null once deleted)
 * brought up to date: the one it was generated from, and any that links to it already.
 */
function linkOccurrences(items, id, next) {
  const previous = next?.previousOccurrence?.id;
  const links = (t) => t.id === previous || (t.nextOccurrence && t.nextOccurrence.id === id);
  if (!items.some(links)) return items;
  const link = next && { id: next.id, dueAt: next.dueAt, completed: next.completed };
  return items.map((t) => (links(t) ? { ...t, nextOccurrence: link } : t));
}

export function createTaskStore({ request = gql, delay = REFETCH_DELAY_MS } = {}) {
  const state = createState({ ...emptyPage(), open: 0, overdue: 0, loading: false });
  let query = { filter: null, search: null, sort: null };
  /** How many tasks the list holds at most: a page, or more once "Load more" added some. */
  let limit = PAGE;
  /** Each listed task's cursor, as the server gave it (a task added or moved live has none). */
  let cursors = new Map();
  /** The newest version seen of each task. */
  const versions = new Map();
  /** The tasks known to be deleted (until a restore brings one back). */
  const deleted = new Set();
  const requests = createRequests(() => refetch.schedule());
  const refetch = later(() => load(), delay);
  const topUp = later(() => {
    const s = state.getState();
    if (s.pageInfo.hasNextPage && s.items.length < limit) load({ append: true, first: limit - s.items.length });
  }, delay);

  /**
   * Loads the list again (as many tasks as it holds, at least a page), or with `append` the
   * `first` tasks after the last one. Errors end up in the state.
   */
  async function load({ append = false, first = PAGE } = {}) {
    refetch.cancel();
    topUp.cancel();
    const variables = {
      ...query,
      first: append ? first : Math.min(MAX_PAGE, limit),
      after: append ? state.getState().pageInfo.endCursor : null,
    };
    state.set({ loading: true });
    try {
      await requests.run(() => request(TASK_LIST, variables), (data) => {
        const { edges, pageInfo } = data.tasks;
        if (!append) cursors = new Map();
        for (const { cursor, node } of edges) {
          cursors.set(node.id, cursor);
          versions.set(node.id, Math.max(versions.get(node.id) ?? 0, node.version));
        }
        const listed = state.getState().items;
        const ids = new Set(listed.map((t) => t.id));
        const page = edges.map((e) => e.node);
        const items = append ? listed.concat(page.filter((t) => !ids.has(t.id))) : page;
        limit = Math.max(PAGE, items.length);
        const counts = append ? {} : { totalCount: data.tasks.totalCount, open: data.open.totalCount,
          overdue: data.overdue.totalCount };
        state.set({ items, pageInfo, ...counts, loaded: true, loading: false, error: null });
      });
    } catch (error) {
      state.set({ loading: false, error });
    }
  }

  /** Refetches once, debounced, if a view shows the list (the next one to do so loads it anyway). */
  function invalidate() {
    if (state.watched) refetch.schedule();
    return 'refetch';
  }

  /**
   * The listed tasks and page info once `prior` (listed, or undefined) became `next` (null once
   * deleted), which does (`member`) or does not match the list's query; null when the place of
   * `next` cannot be decided here.
   */
  function place(s, id, prior, next, member) {
    const sort = effectiveSort(query);
    if (!prior && !member) return { items: linkOccurrences(s.items, id, next), pageInfo: s.pageInfo };
    const items = s.items.filter((t) => t !== prior);
    let { hasNextPage, endCursor } = s.pageInfo;
    if (member && sort.every(({ field }) => SORT_KEYS[field])) {
      const at = items.findIndex((t) => compareTasks(next, t, sort) < 0);
      // After the last listed task, with more to load: it is on a later page.
      if (at >= 0 || !hasNextPage) items.splice(at >= 0 ? at : items.length, 0, next);
    } else if (member) {
      if (!prior || !samePlace(prior, next, sort)) return null;
      items.splice(s.items.indexOf(prior), 0, next);
    }
    if (prior && !(next && samePlace(prior, next, sort))) cursors.delete(prior.id);
    if (items.length > limit) {
      // One too many: the last one goes to the next page, which starts after the new last one.
      items.length = limit;
      endCursor = cursors.get(items[items.length - 1].id);
      if (!endCursor) return null;
      hasNextPage = true;
    }
    return { items: linkOccurrences(items, id, next), pageInfo: { ...s.pageInfo, hasNextPage, endCursor } };
  }

  /**
   * Applies a change of one task: {kind, taskId, task} as `taskChanged` delivers it (`task` is
   * null after DELETED). Returns 'applied', 'ignored' (seen before, or nothing loaded) or
   * 'refetch' (not decidable here: the list is refetched once, debounced).
   */
  function applyChange({ kind, taskId, task }) {
    const next = kind === 'DELETED' ? null : task;
    const seen = versions.get(taskId) ?? 0;
    if (deleted.has(taskId)) {
      // Only a restore brings it back: created again, at a version past the deletion.
      if (kind !== 'CREATED' || !next || next.version <= seen) return 'ignored';
    } else if (next && next.version <= seen) {
      return 'ignored';
    }
    requests.noteEvent();
    // A change without its task (deleted since): only a refetch tells.
    if (next !== null && !next) return invalidate();
    if (next) {
      versions.set(taskId, next.version);
      deleted.delete(taskId);
    } else {
      deleted.add(taskId);
    }
    return applyToList(kind, taskId, next);
  }

  /** Applies a change of one task (`next`: after it, null once deleted) to the list and its counts. */
  function applyToList(kind, taskId, next) {
    const s = state.getState();
    if (!s.loaded) return 'ignored';
    const now = Date.now();
    const listed = s.items.find((t) => t.id === taskId);
    const prior = listed ?? before(kind, next);
    const open = kind === 'UPDATED' ? 0 : delta(prior, next, (t) => !t.completed);
    const isOverdue = (t) => !t.completed && Boolean(t.dueAt) && instantMicros(t.dueAt) < now * 1000;
    // An update leaves `completed` as it was: a completed task was not overdue before either.
    const overdue = kind === 'UPDATED' && prior === undefined && next.completed ? 0 : delta(prior, next, isOverdue);
    let was;
    if (listed) was = true;
    // Not listed though every match is: it did not match (or did not exist).
    else if (prior === null || !s.pageInfo.hasNextPage) was = false;
    else if (!query.search && prior !== undefined) was = matchesFilter(query.filter, prior, now);
    let is = false;
    // A search matches word stems on the server: known only for a listed task whose words stay.
    if (next && (!query.search || (listed && listed.title === next.title && listed.description === next.description))) {
      is = matchesFilter(query.filter, next, now);
    } else if (next) {
      is = undefined;
    }
    if ([open, overdue, was, is].includes(undefined)) return invalidate();
    const placed = place(s, taskId, listed, next, is);
    if (!placed) return invalidate();
    state.set({ ...placed, totalCount: s.totalCount + is - was, open: s.open + open, overdue: s.overdue + overdue });
    // A task left a full page with more after it: bring the next one up.
    if (placed.pageInfo.hasNextPage && placed.items.length < limit && state.watched) topUp.schedule();
    return 'applied';
  }

  /** Runs a mutation of one task and applies the task it answers with as a change of `kind`. */
  async function mutate(kind, operation, id) {
    const data = await request(operation, { id });
    const task = Object.values(data)[0];
    applyChange({ kind, taskId: id, task: kind === 'DELETED' ? null : task });
    return task;
  }

  return {
    ...state.readers,
    /** Loads the list for `next` query ({filter, search, sort}). */
    setQuery(next) {
      query = next;
      return load();
    },
    /** Starts afresh for a view that shows the list: nothing listed, then its first page. */
    restart(next) {
      query = next;
      limit = PAGE;
      cursors = new Map();
      state.set(emptyPage());
      return load();
    },
    load,
    loadMore: () => load({ append: true }),
    invalidate,
    applyChange,
    /** A task this tab saved in the editor: `created`, else updated. */
    saved: (task, created) => applyChange({ kind: created ? 'CREATED' : 'UPDATED', taskId: task.id, task }),
    complete: (id) => mutate('COMPLETED', COMPLETE_TASK, id),
    reopen: (id) => mutate('REOPENED', REOPEN_TASK, id),
    remove: (id) => mutate('DELETED', DELETE_TASK, id),
    /** Brings a deleted task back (`restoreTask`): a created task for the list and its counts. */
    restore: (id) => mutate('CREATED', RESTORE_TASK, id),
  };
}
