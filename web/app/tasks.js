// The task list: smart views (Today, Upcoming grouped by day, Overdue, All), quick add,
// search, filters, multi-key sort, cursor paging and counts; complete (with Undo), reopen and
// delete (with Undo: the task is restored) in place, and a link to the deleted tasks (deleted.js). The view, search, filters and sort live in the address
// (task_views.js), so a reload and back/forward keep them. It renders from the task store
// (task_store.js), which applies each `taskChanged` (from this tab or another) to the list, and
// follows a completed recurring task until its next occurrence exists.

import { h, replace, announce, debounce } from './dom.js';
import { zone, formatDateTime, isPast, toWallClock } from './time.js';
import { describe } from './recurrence.js';
import { openEditor } from './editor.js';
import { priority } from './priority.js';
import { dayHeading } from './phrases.js';
import { offerUndo, deleteWithUndo } from './undo.js';
import { renderQuickAdd } from './quick_add_form.js';
import { renderControls } from './task_controls.js';
import {
  VIEWS, UPCOMING_DAYS, defaultState, stateFromHash, hashOf, hasListState, buildFilter, buildSort,
  activeFilterCount, groupByDay, todayIn, untilNextDay,
} from './task_views.js';

/** The list's state when the address does not say (opening Tasks from another screen): the last one. */
let remembered = defaultState();

/** What each smart view says when nothing is in it. */
const EMPTY = {
  today: 'Nothing is due today.',
  upcoming: `Nothing is due in the next ${UPCOMING_DAYS} days.`,
  overdue: 'Nothing is overdue.',
  all: 'No tasks yet: create one with “New task” or quick add.',
};

export function mountTasks(main, ctx) {
  const store = ctx.stores.tasks;
  const state = hasListState(location.hash) ? stateFromHash(location.hash) : { ...remembered };
  remembered = state;
  if (hashOf(state) !== location.hash && !/^#\/tasks\/./.test(location.hash)) {
    history.replaceState(null, '', hashOf(state));
  }
  /** Completed recurring tasks whose next occurrence we are waiting for: id -> title. */
  const awaitingNext = new Map();
  /** What was announced for each of them once the next occurrence arrived: id -> message. */
  const announcedNext = new Map();

  const counts = h('p', { class: 'counts', id: 'task-counts' });
  const resultCount = h('p', { class: 'result-count', id: 'result-count', role: 'status' });
  const list = h('ul', { class: 'task-list', id: 'task-list', 'aria-labelledby': 'tasks-heading' });
  const more = h('button', { type: 'button', class: 'more', id: 'load-more', hidden: true, text: 'Load more',
    onclick: () => store.loadMore() });
  const listError = h('p', { class: 'error', role: 'alert' });
  const listQuery = () => ({ filter: buildFilter(state, { tz: zone() }), search: state.search || null, sort: buildSort(state) });
  const load = () => {
    scheduleMidnight();
    return store.setQuery(listQuery());
  };

  /** The state changed here: a new history entry (`push`) or this one rewritten, then a load. */
  function changed({ push = true } = {}) {
    const hash = hashOf(state);
    if (hash !== location.hash) history[push ? 'pushState' : 'replaceState'](null, '', hash);
    drawTabs();
    load();
  }

  const searchInput = h('input', { type: 'search', id: 'search', name: 'search', value: state.search,
    placeholder: 'Words in title or description', autocomplete: 'off' });
  searchInput.addEventListener('input', debounce(() => {
    state.search = searchInput.value.trim();
    changed({ push: false });
  }, 250));

  const tabs = h('nav', { class: 'view-tabs', id: 'view-tabs', 'aria-label': 'Smart views' });
  function drawTabs() {
    const overdue = store.getState().loaded ? store.getState().overdue : 0;
    replace(tabs, VIEWS.map(([view, label]) => h('a', {
      href: hashOf({ ...state, view }), id: `view-${view}`, dataset: { view },
      'aria-current': state.view === view ? 'page' : null,
    }, label, view === 'overdue' && overdue > 0 && h('span', { class: 'tab-count', text: ` ${overdue}` }))));
  }

  const quickAdd = renderQuickAdd(ctx, (task) => store.saved(task, true));
  let controls = renderControls(ctx, state, changed);

  replace(main,
    h('section', { class: 'view tasks-view', 'aria-labelledby': 'tasks-heading' },
      h('div', { class: 'view-head' },
        h('h1', { id: 'tasks-heading', text: 'Tasks' }),
        counts,
        h('a', { href: '#/deleted', id: 'deleted-link', text: 'Recently deleted' }),
        h('button', { type: 'button', class: 'primary', id: 'new-task', text: 'New task',
          onclick: () => openEditor(null, ctx, afterSave) })),
      quickAdd.element,
      tabs,
      h('form', { role: 'search', class: 'search', onsubmit: (e) => e.preventDefault() },
        h('label', { for: 'search', text: 'Search' }), searchInput),
      controls.element,
      resultCount, listError, list, more));
  const section = main.querySelector('.tasks-view');
  drawTabs();

  function afterSave(task, created) {
    announce(created ? `Created “${task.title}”.` : `Saved “${task.title}”.`);
    store.saved(task, created);
  }

  let shown = null;
  function render(s) {
    if (s.loading) section.setAttribute('aria-busy', 'true');
    else section.removeAttribute('aria-busy');
    if (s.error) listError.textContent = s.error.message;
    if (!s.loaded || s.error || s === shown) return;
    listError.textContent = '';
    const { items } = s;
    replace(counts, `${s.open} open · `,
      h('span', { class: s.overdue ? 'overdue' : '', text: `${s.overdue} overdue` }));
    if (!shown || s.overdue !== shown.overdue) drawTabs();
    resultCount.textContent = s.totalCount === 0
      ? (state.search || activeFilterCount(state) ? 'No tasks match.' : EMPTY[state.view])
      : `Showing ${items.length} of ${s.totalCount} ${s.totalCount === 1 ? 'task' : 'tasks'}`;
    more.hidden = !s.pageInfo.hasNextPage;
    if (!shown || items !== shown.items) {
      const focusedId = document.activeElement?.closest?.('.task')?.dataset.id;
      const focusedRole = document.activeElement?.dataset?.role;
      replace(list, state.view === 'upcoming' ? renderDays(items) : items.map((task) => renderTask(task)));
      if (focusedId && focusedRole) {
        list.querySelector(`.task[data-id="${CSS.escape(focusedId)}"] [data-role="${focusedRole}"]`)?.focus();
      }
    }
    shown = s;
    controls.update();
  }

  /** Upcoming: a heading for each day with tasks ("Today · Mon 14 Dec"), its tasks under it. */
  function renderDays(items) {
    const tz = zone();
    const today = todayIn(tz);
    return groupByDay(items, tz).map(({ date, tasks }) => {
      const id = `day-${date || 'none'}`;
      return h('li', { class: 'day-group', dataset: { date: date || '' } },
        h('h2', { class: 'day-heading', id, text: date ? dayHeading(date, today) : 'No due date' }),
        h('ul', { class: 'task-list', 'aria-labelledby': id }, tasks.map((task) => renderTask(task))));
    });
  }

  function renderTask(task) {
    const checkbox = h('input', { type: 'checkbox', checked: task.completed, dataset: { role: 'done' },
      'aria-label': `${task.completed ? 'Reopen' : 'Complete'} “${task.title}”` });
    checkbox.addEventListener('change', () => toggle(task, checkbox));
    const overdue = !task.completed && isPast(task.dueAt);
    const prio = priority(task.priority);
    const meta = [
      prio.rank > 0 && h('span', { class: `prio ${prio.className}`, text: prio.label }),
      task.dueAt && h('span', { class: overdue ? 'due overdue' : 'due' },
        h('time', { dateTime: task.dueAt, text: `${overdue ? 'Overdue: ' : 'Due '}${
          // Under Upcoming's day headings, the time says the rest.
          state.view === 'upcoming' ? `at ${toWallClock(task.dueAt).time}` : formatDateTime(task.dueAt)}` })),
      task.recurrence && h('span', { class: 'recurs', text: `↻ ${describe(task.recurrence.rule)}` }),
      task.completed && task.recurrence && task.nextOccurrence && h('span', { class: 'next',
        text: `Next occurrence: ${task.nextOccurrence.dueAt ? formatDateTime(task.nextOccurrence.dueAt) : 'created'}` }),
      task.reminders.some((r) => r.status === 'PENDING') && h('span', { class: 'reminder', text: 'reminder set' }),
    ].filter(Boolean);
    return h('li', { class: `task${task.completed ? ' done' : ''}`, dataset: { id: task.id } },
      checkbox,
      h('div', { class: 'task-main' },
        h('button', { type: 'button', class: 'title link', dataset: { role: 'edit' }, text: task.title,
          'aria-label': `Edit “${task.title}”`, onclick: () => openEditor(task, ctx, afterSave) }),
        task.description && h('p', { class: 'desc', text: task.description }),
        meta.length > 0 && h('p', { class: 'meta' }, meta),
        task.tags.length > 0 && h('ul', { class: 'tags', 'aria-label': 'Tags' },
          task.tags.map((tag) => tagChip(tag)))),
      h('button', { type: 'button', class: 'danger small', dataset: { role: 'delete' }, text: 'Delete',
        'aria-label': `Delete “${task.title}”`, onclick: () => remove(task) }));
  }

  async function toggle(task, checkbox) {
    checkbox.disabled = true;
    try {
      if (checkbox.checked) {
        // Armed before the mutation: the next occurrence may be reported before its answer.
        if (task.recurrence) awaitingNext.set(task.id, task.title);
        await store.complete(task.id);
        let message = `Completed “${task.title}”.`;
        // The next occurrence may already have been reported (and announced) meanwhile.
        if (task.recurrence) {
          message += awaitingNext.has(task.id) ? ' Its next occurrence is being scheduled…'
            : ` ${announcedNext.get(task.id) || ''}`;
        }
        offerUndo(message.trim(), { onUndo: () => reopen(task) });
      } else {
        await reopen(task);
      }
    } catch (e) {
      awaitingNext.delete(task.id);
      checkbox.checked = !checkbox.checked;
      announce(e.message, 'error');
    } finally {
      checkbox.disabled = false;
    }
  }

  /** Reopens `task` (the checkbox, or Undo after completing it) and says so; errors are announced. */
  async function reopen(task) {
    try {
      await store.reopen(task.id);
      announce(`Reopened “${task.title}”.`);
    } catch (e) {
      announce(e.message, 'error');
    }
  }

  function remove(task) {
    deleteWithUndo(store, task);
    main.querySelector('#new-task')?.focus();
  }

  /** Today and Upcoming move on at midnight in the user's zone: load the list again then. */
  let midnight = null;
  function scheduleMidnight() {
    clearTimeout(midnight);
    if (state.view === 'today' || state.view === 'upcoming') midnight = setTimeout(load, untilNextDay(zone()) + 1000);
  }

  const onChange = (event) => {
    const change = event.detail;
    const previous = change.task?.previousOccurrence?.id;
    if (change.kind === 'CREATED' && previous && awaitingNext.has(previous)) {
      const title = awaitingNext.get(previous);
      awaitingNext.delete(previous);
      const message = `Next occurrence of “${title}”: due ${formatDateTime(change.task.dueAt)}.`;
      announcedNext.set(previous, message);
      announce(message);
    }
  };
  // Another zone in the settings: the times and the days of the views and filters are in it now.
  const onZone = debounce(load, 150);
  ctx.bus.addEventListener('task-changed', onChange);
  ctx.bus.addEventListener('zone', onZone);
  const unsubscribe = store.subscribe(render);
  const unsubscribeTags = ctx.stores.tags.subscribe(() => controls.update());
  const unwatch = store.watch();
  scheduleMidnight();
  store.restart(listQuery());
  // A link to one task (#/tasks/<id>, from a notification) opens it.
  const linked = /^#\/tasks\/([^?]+)$/.exec(location.hash);
  if (linked) {
    history.replaceState(null, '', hashOf(state));
    openEditor({ id: decodeURIComponent(linked[1]) }, ctx, afterSave);
  }
  return {
    /**
     * The address changed while the list shows (back, forward, a view tab, a link): take its
     * state. Returns false for an address this view does not handle in place (a task's link).
     */
    navigate() {
      if (/^#\/tasks\/./.test(location.hash)) return false;
      Object.assign(state, stateFromHash(location.hash));
      searchInput.value = state.search;
      const open = [...controls.element.querySelectorAll('details')].map((d) => d.open);
      const next = renderControls(ctx, state, changed);
      next.element.querySelectorAll('details').forEach((d, i) => { d.open = open[i]; });
      controls.element.replaceWith(next.element);
      controls = next;
      drawTabs();
      load();
      return true;
    },
    unmount() {
      clearTimeout(midnight);
      quickAdd.unmount();
      unwatch();
      unsubscribe();
      unsubscribeTags();
      ctx.bus.removeEventListener('task-changed', onChange);
      ctx.bus.removeEventListener('zone', onZone);
    },
  };
}

/** A tag as a coloured chip. */
export function tagChip(tag, extra) {
  const chip = h('li', { class: 'tag' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), tag.name, extra);
  if (tag.color) chip.style.setProperty('--tag-color', tag.color);
  return chip;
}
