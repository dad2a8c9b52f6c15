// What the task list shows, as data: the smart view (Today, Upcoming, Overdue, All), the
// search, the filters and the sort; how that state is written in the address (so a reload, a
// bookmark and back/forward keep it) and read back; and the TaskFilter and sort the API gets.
// Pure functions of the state, the current time and the user's zone.
//
// Address: `#/tasks?view=upcoming&q=rent&status=all&priority=HIGH&tag=home&tags=all&from=
// 2030-03-01&to=2030-03-31&overdue=1&recurring=yes&sort=DUE_AT.asc&sort=TITLE.asc`; a value
// that is the default is left out, and one that makes no sense is read as the default.

import { toInstant, toWallClock, nextDay, zone } from './time.js';
import { PRIORITIES } from './priority.js';

/** The smart views, in the order of their tabs. */
export const VIEWS = [['today', 'Today'], ['upcoming', 'Upcoming'], ['overdue', 'Overdue'], ['all', 'All']];
/** How many days Upcoming covers, today included. */
export const UPCOMING_DAYS = 7;

export const SORT_FIELDS = [
  ['CREATED_AT', 'Created'], ['UPDATED_AT', 'Updated'], ['DUE_AT', 'Due date'],
  ['PRIORITY', 'Priority'], ['TITLE', 'Title'], ['RELEVANCE', 'Relevance (with search)'],
];

/** The list's state before anything is chosen: every open task, newest first. */
export function defaultState() {
  return {
    view: 'all',
    search: '',
    status: 'open',
    priorities: [],
    tags: [],
    tagMode: 'any',
    dueFrom: '',
    dueTo: '',
    overdue: false,
    recurring: 'any',
    sort: [{ field: 'CREATED_AT', direction: 'DESC' }],
  };
}

const oneOf = (value, allowed, fallback) => (allowed.includes(value) ? value : fallback);
const isDate = (value) => /^\d{4}-\d{2}-\d{2}$/.test(value || '');
const sortKey = ({ field, direction }) => `${field}.${direction.toLowerCase()}`;
const DEFAULT_SORT = sortKey(defaultState().sort[0]);

/** The query string of an address ("#/tasks?view=today" -> "view=today"), or "". */
function queryOf(hash) {
  const at = String(hash || '').indexOf('?');
  return at < 0 ? '' : String(hash).slice(at + 1);
}

/** Whether an address says anything about the list (a query string), so it is read from it. */
export function hasListState(hash) {
  return queryOf(hash).length > 0;
}

/** The list's state written in an address ("#/tasks?…"). */
export function stateFromHash(hash) {
  const params = new URLSearchParams(queryOf(hash));
  const state = defaultState();
  const names = PRIORITIES.map((p) => p.name);
  state.view = oneOf(params.get('view'), VIEWS.map(([v]) => v), state.view);
  state.search = (params.get('q') || '').trim();
  state.status = oneOf(params.get('status'), ['open', 'completed', 'all'], state.status);
  state.priorities = names.filter((name) => params.getAll('priority').includes(name));
  state.tags = [...new Set(params.getAll('tag').filter((tag) => tag.trim()))];
  state.tagMode = oneOf(params.get('tags'), ['any', 'all', 'none'], state.tagMode);
  state.dueFrom = isDate(params.get('from')) ? params.get('from') : '';
  state.dueTo = isDate(params.get('to')) ? params.get('to') : '';
  state.overdue = params.get('overdue') === '1';
  state.recurring = oneOf(params.get('recurring'), ['yes', 'no'], state.recurring);
  if (params.has('sort')) {
    const fields = SORT_FIELDS.map(([f]) => f);
    const keys = [];
    for (const value of params.getAll('sort')) {
      const [field, direction] = value.split('.');
      if (fields.includes(field) && ['asc', 'desc'].includes(direction) && !keys.some((k) => k.field === field)) {
        keys.push({ field, direction: direction.toUpperCase() });
      }
    }
    state.sort = keys;
  }
  return state;
}

/** The address of a state: `#/tasks`, and a query string of what differs from the defaults. */
export function hashOf(state) {
  const params = new URLSearchParams();
  const d = defaultState();
  if (state.view !== d.view) params.set('view', state.view);
  if (state.search) params.set('q', state.search);
  if (state.status !== d.status) params.set('status', state.status);
  for (const name of state.priorities) params.append('priority', name);
  for (const tag of state.tags) params.append('tag', tag);
  if (state.tags.length && state.tagMode !== d.tagMode) params.set('tags', state.tagMode);
  if (state.dueFrom) params.set('from', state.dueFrom);
  if (state.dueTo) params.set('to', state.dueTo);
  if (state.overdue) params.set('overdue', '1');
  if (state.recurring !== d.recurring) params.set('recurring', state.recurring);
  const sort = state.sort.map(sortKey);
  if (sort.join() !== DEFAULT_SORT) {
    if (sort.length) for (const key of sort) params.append('sort', key);
    else params.set('sort', '');
  }
  const query = params.toString();
  return query ? `#/tasks?${query}` : '#/tasks';
}

/** Today's date in `tz` at `now` (epoch ms). */
export function todayIn(tz = zone(), now = Date.now()) {
  return toWallClock(new Date(now).toISOString(), tz).date;
}

/** `date` plus `n` days. */
function addDays(date, n) {
  let day = date;
  for (let i = 0; i < n; i += 1) day = nextDay(day);
  return day;
}

/**
 * The TaskFilter of a smart view at `now` in `tz`, or null (All). Days are the user's: Today is
 * from 00:00 today to 00:00 tomorrow in their zone (23 or 25 hours on a daylight saving day);
 * Upcoming is today and the six days after it; Overdue is the API's own (due before now, open).
 */
export function viewFilter(view, { tz = zone(), now = Date.now() } = {}) {
  const today = todayIn(tz, now);
  const start = (date) => toInstant(date, '00:00', tz);
  switch (view) {
    case 'today': return { dueAfter: start(today), dueBefore: start(nextDay(today)) };
    case 'upcoming': return { dueAfter: start(today), dueBefore: start(addDays(today, UPCOMING_DAYS)) };
    case 'overdue': return { overdue: true };
    default: return null;
  }
}

/** The TaskFilter of the filters alone (the due range in whole days of `tz`); null when nothing filters. */
export function filtersFilter(s, tz = zone()) {
  const filter = {};
  if (s.status === 'open') filter.completed = false;
  if (s.status === 'completed') filter.completed = true;
  if (s.priorities.length) filter.priority = s.priorities;
  if (s.tags.length) filter.tags = { [s.tagMode]: s.tags };
  if (s.dueFrom) filter.dueAfter = toInstant(s.dueFrom, '00:00', tz);
  if (s.dueTo) filter.dueBefore = toInstant(nextDay(s.dueTo), '00:00', tz);
  if (s.overdue) filter.overdue = true;
  if (s.recurring !== 'any') filter.recurring = s.recurring === 'yes';
  return Object.keys(filter).length ? filter : null;
}

/** The TaskFilter of the whole state: the filters and the view's, both holding. */
export function buildFilter(s, { tz = zone(), now = Date.now() } = {}) {
  const filters = filtersFilter(s, tz);
  const view = viewFilter(s.view, { tz, now });
  if (!view) return filters;
  if (!filters) return view;
  return { ...filters, and: [view] };
}

/** The sort the API gets: Upcoming is by due date first (its days are headings), then the chosen keys. */
export function buildSort(s) {
  if (s.view !== 'upcoming') return s.sort.length ? s.sort : null;
  const rest = s.sort.filter((k) => k.field !== 'DUE_AT' && k.field !== 'RELEVANCE');
  return [{ field: 'DUE_AT', direction: 'ASC' }, ...rest];
}

/** How many filters are set (the view is not one). */
export function activeFilterCount(s) {
  return [s.status !== 'open', s.priorities.length, s.tags.length, s.dueFrom || s.dueTo,
    s.overdue, s.recurring !== 'any'].filter(Boolean).length;
}

/** Tasks in due order grouped by their due date in `tz`: [{date, tasks}], undated ones under date null. */
export function groupByDay(tasks, tz = zone()) {
  const groups = [];
  for (const task of tasks) {
    const date = task.dueAt ? toWallClock(task.dueAt, tz).date : null;
    const last = groups[groups.length - 1];
    if (last && last.date === date) last.tasks.push(task);
    else groups.push({ date, tasks: [task] });
  }
  return groups;
}

/** Milliseconds from `now` until the next midnight in `tz`, when Today and Upcoming move on. */
export function untilNextDay(tz = zone(), now = Date.now()) {
  return Date.parse(toInstant(nextDay(todayIn(tz, now)), '00:00', tz)) - now;
}
