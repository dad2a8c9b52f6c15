// The task list: search, filters, multi-key sort, cursor paging and counts; complete (with
// Undo), reopen and delete (with Undo) in place. It renders from the task store (task_store.js), which applies each
// `taskChanged` (from this tab or another) to the list, and follows a completed recurring task
// until its next occurrence exists.

import { h, replace, announce, debounce } from './dom.js';
import { zone, toInstant, nextDay, formatDateTime, isPast } from './time.js';
import { describe } from './recurrence.js';
import { openEditor } from './editor.js';
import { PRIORITIES, priority } from './priority.js';
import { offerUndo, deleteWithUndo } from './undo.js';

const SORT_FIELDS = [
  ['CREATED_AT', 'Created'], ['UPDATED_AT', 'Updated'], ['DUE_AT', 'Due date'],
  ['PRIORITY', 'Priority'], ['TITLE', 'Title'], ['RELEVANCE', 'Relevance (with search)'],
];

/** The view's state survives switching views (not reloads). */
const state = {
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

/** The TaskFilter for the current state; null when nothing filters. */
export function buildFilter(s, tz = zone()) {
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

function activeFilterCount(s) {
  return [s.status !== 'open', s.priorities.length, s.tags.length, s.dueFrom || s.dueTo,
    s.overdue, s.recurring !== 'any'].filter(Boolean).length;
}

/** The list's query ({filter, search, sort}) for the current state. */
function listQuery() {
  return { filter: buildFilter(state), search: state.search || null, sort: state.sort.length ? state.sort : null };
}

export function mountTasks(main, ctx) {
  const store = ctx.stores.tasks;
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
  const load = () => store.setQuery(listQuery());

  const searchInput = h('input', { type: 'search', id: 'search', name: 'search', value: state.search,
    placeholder: 'Words in title or description', autocomplete: 'off' });
  searchInput.addEventListener('input', debounce(() => {
    state.search = searchInput.value.trim();
    load();
  }, 250));

  const filters = renderFilters(ctx, load);
  const sorter = renderSort(load);

  replace(main,
    h('section', { class: 'view tasks-view', 'aria-labelledby': 'tasks-heading' },
      h('div', { class: 'view-head' },
        h('h1', { id: 'tasks-heading', text: 'Tasks' }),
        counts,
        h('button', { type: 'button', class: 'primary', id: 'new-task', text: 'New task',
          onclick: () => openEditor(null, ctx, afterSave) })),
      h('form', { role: 'search', class: 'search', onsubmit: (e) => e.preventDefault() },
        h('label', { for: 'search', text: 'Search' }), searchInput),
      h('div', { class: 'controls' }, filters.element, sorter),
      resultCount, listError, list, more));
  const section = main.querySelector('.tasks-view');

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
    resultCount.textContent = s.totalCount === 0
      ? (state.search || activeFilterCount(state) ? 'No tasks match.' : 'No tasks yet: create one with “New task”.')
      : `Showing ${items.length} of ${s.totalCount} ${s.totalCount === 1 ? 'task' : 'tasks'}`;
    more.hidden = !s.pageInfo.hasNextPage;
    if (!shown || items !== shown.items) {
      const focusedId = document.activeElement?.closest?.('.task')?.dataset.id;
      const focusedRole = document.activeElement?.dataset?.role;
      replace(list, items.map((task) => renderTask(task)));
      if (focusedId && focusedRole) {
        list.querySelector(`.task[data-id="${CSS.escape(focusedId)}"] [data-role="${focusedRole}"]`)?.focus();
      }
    }
    shown = s;
    filters.update();
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
        h('time', { dateTime: task.dueAt, text: `${overdue ? 'Overdue: ' : 'Due '}${formatDateTime(task.dueAt)}` })),
      task.recurrence && h('span', { class: 'recurs', text: `↻ ${describe(task.recurrence.rule)}` }),
      task.completed && task.recurrence && task.nextOccurrence && h('span', { class: 'next',
        text: `Next occurrence: ${task.nextOccurrence.dueAt ? formatDateTime(task.nextOccurrence.dueAt) : 'created'}` }),
      task.reminders.some((r) => r.status === 'PENDING') && h('span', { class: 'reminder', text: 'reminder set' }),
    ].filter(Boolean);
    const item = h('li', { class: `task${task.completed ? ' done' : ''}`, dataset: { id: task.id } },
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
    return item;
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
  // Another zone in the settings: the times and the due-date filter's days are in it now.
  const onZone = debounce(load, 150);
  ctx.bus.addEventListener('task-changed', onChange);
  ctx.bus.addEventListener('zone', onZone);
  const unsubscribe = store.subscribe(render);
  const unsubscribeTags = ctx.stores.tags.subscribe(() => filters.update());
  const unwatch = store.watch();
  store.restart(listQuery());
  // A link to one task (#/tasks/<id>, from a notification) opens it.
  const linked = /^#\/tasks\/(.+)$/.exec(location.hash);
  if (linked) {
    history.replaceState(null, '', '#/tasks');
    openEditor({ id: decodeURIComponent(linked[1]) }, ctx, afterSave);
  }
  return {
    unmount() {
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

function renderFilters(ctx, changed) {
  const summary = h('summary', {});
  const status = h('select', { id: 'filter-status' },
    [['open', 'Open'], ['completed', 'Completed'], ['all', 'All']].map(([value, label]) =>
      h('option', { value, text: label, selected: state.status === value })));
  status.addEventListener('change', () => { state.status = status.value; changed(); });

  const priorityBoxes = PRIORITIES.slice().reverse().map((p) => {
    const box = h('input', { type: 'checkbox', id: `filter-priority-${p.key}`, value: p.name,
      checked: state.priorities.includes(p.name) });
    box.addEventListener('change', () => {
      state.priorities = PRIORITIES.filter((q) => document.getElementById(`filter-priority-${q.key}`)?.checked)
        .map((q) => q.name);
      changed();
    });
    return h('label', { class: 'check' }, box, p.label);
  });

  const tagMode = h('select', { id: 'filter-tag-mode' },
    [['any', 'any of'], ['all', 'all of'], ['none', 'none of']].map(([value, label]) =>
      h('option', { value, text: label, selected: state.tagMode === value })));
  tagMode.addEventListener('change', () => { state.tagMode = tagMode.value; if (state.tags.length) changed(); });
  const tagBoxes = h('div', { class: 'checks', id: 'filter-tags' });

  const dueFrom = h('input', { type: 'date', id: 'filter-due-from', value: state.dueFrom });
  dueFrom.addEventListener('change', () => { state.dueFrom = dueFrom.value; changed(); });
  const dueTo = h('input', { type: 'date', id: 'filter-due-to', value: state.dueTo });
  dueTo.addEventListener('change', () => { state.dueTo = dueTo.value; changed(); });
  const overdue = h('input', { type: 'checkbox', id: 'filter-overdue', checked: state.overdue });
  overdue.addEventListener('change', () => { state.overdue = overdue.checked; changed(); });
  const recurring = h('select', { id: 'filter-recurring' },
    [['any', 'Any'], ['yes', 'Recurring only'], ['no', 'One-off only']].map(([value, label]) =>
      h('option', { value, text: label, selected: state.recurring === value })));
  recurring.addEventListener('change', () => { state.recurring = recurring.value; changed(); });

  const clear = h('button', { type: 'button', text: 'Clear filters', onclick: () => {
    Object.assign(state, { status: 'open', priorities: [], tags: [], tagMode: 'any', dueFrom: '', dueTo: '',
      overdue: false, recurring: 'any' });
    status.value = 'open'; tagMode.value = 'any'; dueFrom.value = ''; dueTo.value = '';
    overdue.checked = false; recurring.value = 'any';
    for (const box of element.querySelectorAll('input[type=checkbox]')) box.checked = false;
    changed();
  } });

  const element = h('details', { class: 'filters', id: 'filters' },
    summary,
    h('div', { class: 'filter-grid' },
      h('div', { class: 'field' }, h('label', { for: 'filter-status', text: 'Status' }), status),
      h('fieldset', {}, h('legend', { text: 'Priority (any of)' }), h('div', { class: 'checks' }, priorityBoxes)),
      h('fieldset', {},
        h('legend', { text: 'Tags' }),
        h('label', { for: 'filter-tag-mode', class: 'inline', text: 'Tasks with ' }), tagMode,
        tagBoxes),
      h('div', { class: 'field' }, h('label', { for: 'filter-due-from', text: 'Due from' }), dueFrom),
      h('div', { class: 'field' }, h('label', { for: 'filter-due-to', text: 'Due through' }), dueTo),
      h('div', { class: 'field' }, h('label', { for: 'filter-recurring', text: 'Recurrence' }), recurring),
      h('label', { class: 'check' }, overdue, 'Overdue only'),
      h('div', { class: 'field' }, clear)));

  function update() {
    const n = activeFilterCount(state);
    summary.textContent = n ? `Filters (${n} active)` : 'Filters';
    const { tags } = ctx.stores.tags.getState();
    const known = new Set(tags.map((t) => t.name.toLowerCase()));
    state.tags = state.tags.filter((name) => known.has(name.toLowerCase()));
    replace(tagBoxes, tags.length ? tags.map((tag) => {
      const box = h('input', { type: 'checkbox', value: tag.name, checked: state.tags.includes(tag.name),
        id: `filter-tag-${tag.id}` });
      box.addEventListener('change', () => {
        state.tags = [...tagBoxes.querySelectorAll('input:checked')].map((b) => b.value);
        changed();
      });
      return h('label', { class: 'check' }, box, tag.name);
    }) : h('span', { class: 'muted', text: 'No tags yet.' }));
  }
  update();
  return { element, update };
}

function renderSort(changed) {
  const summary = h('summary', {});
  const rows = h('ol', { class: 'sort-keys', id: 'sort-keys' });
  const element = h('details', { class: 'sort', id: 'sort' }, summary, rows,
    h('button', { type: 'button', id: 'add-sort', text: 'Add sort key', onclick: () => {
      const used = new Set(state.sort.map((s) => s.field));
      const field = SORT_FIELDS.map(([f]) => f).find((f) => !used.has(f) && f !== 'RELEVANCE');
      if (!field) return;
      state.sort.push({ field, direction: 'ASC' });
      draw();
      rows.lastElementChild?.querySelector('select')?.focus();
      changed();
    } }));

  function draw() {
    const label = (s) => `${SORT_FIELDS.find(([f]) => f === s.field)[1].replace(/ \(.*\)/, '')} ${s.direction === 'ASC' ? '↑' : '↓'}`;
    summary.textContent = state.sort.length ? `Sort: ${state.sort.map(label).join(', ')}` : 'Sort: relevance or newest';
    replace(rows, state.sort.map((key, i) => {
      const field = h('select', { id: `sort-field-${i}`, 'aria-label': `Sort key ${i + 1}: field` },
        SORT_FIELDS.map(([value, text]) => h('option', { value, text, selected: key.field === value })));
      field.addEventListener('change', () => { key.field = field.value; draw(); changed(); });
      const direction = h('select', { id: `sort-direction-${i}`, 'aria-label': `Sort key ${i + 1}: direction` },
        [['ASC', 'Ascending'], ['DESC', 'Descending']].map(([value, text]) =>
          h('option', { value, text, selected: key.direction === value })));
      direction.addEventListener('change', () => { key.direction = direction.value; draw(); changed(); });
      const removeButton = h('button', { type: 'button', class: 'small', text: 'Remove',
        'aria-label': `Remove sort key ${i + 1}`, onclick: () => {
          state.sort.splice(i, 1);
          draw();
          element.querySelector('#add-sort').focus();
          changed();
        } });
      return h('li', {}, field, direction, removeButton);
    }));
  }
  draw();
  return element;
}
