// The task list's controls: the filters (status, priority, tags any/all/none, due range,
// overdue, recurrence) and the sort keys. They edit the list's state (task_views.js) in place
// and call `changed()`; the list writes the state to the address and loads.

import { h, replace } from './dom.js';
import { PRIORITIES } from './priority.js';
import { SORT_FIELDS, activeFilterCount, defaultState, buildSort } from './task_views.js';

/**
 * The filters and the sort of `state`, side by side: {element, update()}; `update` redraws the
 * tag choices (the user's tags changed) and the summaries.
 */
export function renderControls(ctx, state, changed) {
  const filters = renderFilters(ctx, state, changed);
  const sort = renderSort(state, changed);
  return {
    element: h('div', { class: 'controls' }, filters.element, sort),
    update: filters.update,
  };
}

function renderFilters(ctx, state, changed) {
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
    const { status: s, priorities, tags, tagMode: mode, dueFrom: from, dueTo: to, overdue: late, recurring: r } = defaultState();
    Object.assign(state, { status: s, priorities, tags, tagMode: mode, dueFrom: from, dueTo: to, overdue: late, recurring: r });
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
    const { tags, loaded } = ctx.stores.tags.getState();
    const known = new Set(tags.map((t) => t.name.toLowerCase()));
    if (loaded) state.tags = state.tags.filter((name) => known.has(name.toLowerCase()));
    const chosen = new Set(state.tags.map((name) => name.toLowerCase()));
    replace(tagBoxes, tags.length ? tags.map((tag) => {
      const box = h('input', { type: 'checkbox', value: tag.name, checked: chosen.has(tag.name.toLowerCase()),
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

function renderSort(state, changed) {
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
    if (state.view === 'upcoming') {
      // Its days are headings: by due date first, whatever else was chosen (buildSort).
      const then = buildSort(state).slice(1);
      summary.textContent = `Sort: by day${then.length ? `, then ${then.map(label).join(', ')}` : ''}`;
    } else {
      summary.textContent = state.sort.length ? `Sort: ${state.sort.map(label).join(', ')}` : 'Sort: relevance or newest';
    }
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
