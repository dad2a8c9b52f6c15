// The task form, in a modal dialog: title, description, priority, due date and time in the
// user's zone, tags with autocomplete and inline creation, recurrence (presets, or a raw RRULE
// under "Custom rule", with the next dates from `Recurrence.upcoming` for the saved rule and,
// live while editing, from `previewRecurrence`), reminders; for a saved task, its history
// (history.js). API errors are shown next to the field their message names, in the form's
// words (api.js `humanMessage`).

import { gql, humanMessage, pathIndex, withoutPath, withLabels } from './api.js';
import { h, replace, announce, nextId } from './dom.js';
import { zone, toInstant, toWallClock, formatDateTime } from './time.js';
import { DAYS, PRESETS, ruleOf, presetOf, describe, previewVariables } from './recurrence.js';
import { deleteWithUndo } from './undo.js';
import { openHistory } from './history.js';
import { ReminderList, DEFAULT_TIME } from './reminders.js';
import { TASK, CREATE_TASK, UPDATE_TASK, PREVIEW_RECURRENCE } from './operations.js';
import { PRIORITIES } from './priority.js';

/** How many next dates the form shows, and how many a save announces. */
const UPCOMING = 5;
const UPCOMING_SAVED = 3;
/** How long the rule, due date or zone must stay unchanged before the dates are asked for. */
const PREVIEW_DELAY_MS = 300;

/**
 * Opens the editor for `task` (null: a new task). `onSaved(task, created)` runs after a
 * successful save, once the dialog has closed.
 */
export async function openEditor(task, ctx, onSaved) {
  const opener = document.activeElement;
  let fresh = task;
  if (task) {
    try {
      fresh = (await gql(TASK, { id: task.id, upcoming: UPCOMING })).task;
    } catch (e) {
      announce(e.message, 'error');
      return;
    }
    if (!fresh) {
      announce('That task no longer exists.', 'error');
      return;
    }
  }
  const form = new TaskForm(fresh, ctx);
  const dialog = h('dialog', { class: 'editor', 'aria-labelledby': 'editor-heading' }, form.element);
  document.body.append(dialog);
  const close = () => {
    dialog.close();
    dialog.remove();
    if (opener?.isConnected) opener.focus();
  };
  dialog.addEventListener('cancel', (e) => { e.preventDefault(); close(); });
  form.onCancel = close;
  form.onSaved = (saved, created) => {
    close();
    onSaved?.(saved, created);
  };
  dialog.showModal();
  form.element.querySelector('#task-title').focus();
}

/** Which list item an error names, for people: "input.reminders[0]: ..." -> "Reminder 1: ...". */
const ITEM_NAMES = { reminders: 'Reminder', tags: 'Tag' };

/**
 * The message of `e` for people. At the very field it concerns, the input path it starts with
 * (`e.path`, from `extensions.field`) is redundant, except for the list item it points at.
 */
function atField(e, exact) {
  // Only "path: reason" loses its path; "input.title must not be empty" reads as a sentence.
  const named = exact && String(e.message).charAt((e.path || '').length) === ':';
  const rest = named ? withoutPath(e.message, e.path) : null;
  if (rest === null || !rest.trim()) return humanMessage(e.message);
  const index = pathIndex(e.path);
  if (index === null) return humanMessage(rest);
  return `${ITEM_NAMES[e.field] || 'Item'} ${index + 1}: ${withLabels(rest)}`;
}

/** Whether two RFC 3339 instants (or nulls) are the same moment. */
function sameInstant(a, b) {
  return (a && new Date(a).getTime()) === (b && new Date(b).getTime());
}

class TaskForm {
  constructor(task, ctx) {
    this.task = task;
    this.ctx = ctx;
    this.tz = zone();
    this.tags = task ? task.tags.map((t) => t.name) : [];
    this.errors = new Map();
    // The live preview: its pending timer, the number of the latest request (older answers
    // are dropped) and the field its error is shown at.
    this.previewTimer = null;
    this.previewSeq = 0;
    this.previewErrorAt = null;
    this.element = this.render();
  }

  field(name, label, control, { hint, id = control.id } = {}) {
    const error = h('p', { class: 'field-error', id: `${id}-error`, dataset: { errorFor: name } });
    const hintEl = hint && h('p', { class: 'hint', id: `${id}-hint`, text: hint });
    control.setAttribute('aria-describedby', [hintEl && hintEl.id, error.id].filter(Boolean).join(' '));
    this.errors.set(name, { error, control });
    return h('div', { class: 'field', dataset: { field: name } },
      h('label', { for: id, text: label }), control, hintEl, error);
  }

  group(name, legend, content, { hint } = {}) {
    const error = h('p', { class: 'field-error', id: nextId('error'), dataset: { errorFor: name } });
    const fieldset = h('fieldset', { dataset: { field: name } }, h('legend', { text: legend }), content,
      hint && h('p', { class: 'hint', text: hint }), error);
    fieldset.setAttribute('aria-describedby', error.id);
    this.errors.set(name, { error, control: fieldset });
    return fieldset;
  }

  render() {
    const t = this.task;
    this.title = h('input', { id: 'task-title', name: 'title', value: t?.title || '', autocomplete: 'off' });
    this.description = h('textarea', { id: 'task-description', name: 'description', rows: 3, value: t?.description || '' });

    this.priority = h('div', { class: 'segmented', role: 'radiogroup', 'aria-label': 'Priority' },
      PRIORITIES.map((p) => h('label', { class: `seg ${p.className}` },
        h('input', { type: 'radio', name: 'priority', value: p.name, checked: (t?.priority || 'NONE') === p.name }),
        h('span', { text: p.label }))));

    const due = t?.dueAt ? toWallClock(t.dueAt, this.tz) : { date: '', time: '' };
    this.dueDate = h('input', { type: 'date', id: 'task-due-date', name: 'dueDate', value: due.date });
    this.dueTime = h('input', { type: 'time', id: 'task-due-time', name: 'dueTime', value: due.time,
      'aria-label': `Due time (${this.tz})` });
    const clearDue = h('button', { type: 'button', class: 'small', text: 'Clear', 'aria-label': 'Clear due date',
      onclick: () => { this.dueDate.value = ''; this.dueTime.value = ''; this.dueDate.focus(); this.drawPreview(); } });
    for (const input of [this.dueDate, this.dueTime]) input.addEventListener('input', () => this.drawPreview());
    const dueError = h('p', { class: 'field-error', id: 'task-due-error', dataset: { errorFor: 'dueAt' } });
    this.dueDate.setAttribute('aria-describedby', 'task-due-hint task-due-error');
    this.errors.set('dueAt', { error: dueError, control: this.dueDate });

    this.tagInput = h('input', { id: 'task-tag-input', list: 'task-tag-options', autocomplete: 'off',
      placeholder: 'Type a tag, press Enter' });
    this.tagList = h('ul', { class: 'tags editable', id: 'task-tags', 'aria-label': 'Tags on this task' });
    const datalist = h('datalist', { id: 'task-tag-options' },
      this.knownTags().map((tag) => h('option', { value: tag.name, label: `${tag.name} (${tag.taskCount})` })));
    this.tagInput.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ',') {
        e.preventDefault();
        this.addTag();
      } else if (e.key === 'Backspace' && !this.tagInput.value && this.tags.length) {
        this.tags.pop();
        this.drawTags();
      }
    });
    this.tagInput.addEventListener('change', () => {
      // Picking a suggestion from the list adds it at once.
      if (this.knownTags().some((tag) => tag.name === this.tagInput.value)) this.addTag();
    });
    this.drawTags();

    const recurrence = this.renderRecurrence();
    this.reminders = new ReminderList(t?.reminders || [], this.tz);

    this.formError = h('p', { class: 'error', id: 'task-form-error', role: 'alert' });
    const save = h('button', { type: 'submit', class: 'primary', id: 'task-save', text: t ? 'Save' : 'Create task' });
    const form = h('form', { class: 'task-form', noValidate: true },
      h('h2', { id: 'editor-heading', text: t ? 'Edit task' : 'New task' }),
      this.field('title', 'Title', this.title),
      this.field('description', 'Description', this.description),
      this.group('priority', 'Priority', this.priority),
      h('fieldset', { dataset: { field: 'dueAt' } },
        h('legend', { text: 'Due' }),
        h('div', { class: 'row' },
          h('label', { for: 'task-due-date', class: 'visually-hidden', text: 'Due date' }), this.dueDate,
          this.dueTime, clearDue),
        h('p', { class: 'hint', id: 'task-due-hint', text: `In your time zone, ${this.tz}. Without a time: ${DEFAULT_TIME}.` }),
        dueError),
      this.group('tags', 'Tags', [
        this.tagList,
        h('div', { class: 'row' },
          h('label', { for: 'task-tag-input', class: 'visually-hidden', text: 'Add a tag' }),
          this.tagInput,
          h('button', { type: 'button', class: 'small', text: 'Add tag', onclick: () => { this.addTag(); this.tagInput.focus(); } })),
        datalist,
      ], { hint: 'New names create a tag.' }),
      recurrence,
      this.group('reminders', 'Reminders', [
        this.reminders.element,
      ]),
      t?.completed && t.recurrence && h('p', { class: 'next', id: 'task-next-occurrence', text: t.nextOccurrence
        ? `Next occurrence: due ${formatDateTime(t.nextOccurrence.dueAt)}${t.nextOccurrence.completed ? ' (completed)' : ''}.`
        : 'The next occurrence is being created.' }),
      this.formError,
      h('div', { class: 'actions' },
        save,
        h('button', { type: 'button', text: 'Cancel', onclick: () => this.onCancel?.() }),
        t && h('button', { type: 'button', id: 'task-history', text: 'History', onclick: () => openHistory(t) }),
        t && h('button', { type: 'button', class: 'danger', text: 'Delete', onclick: () => this.remove() })));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.save(save);
    });
    return form;
  }

  renderRecurrence() {
    const rec = this.task?.recurrence;
    const parsed = presetOf(rec?.rule);
    this.preset = h('select', { id: 'task-recurrence-preset' },
      PRESETS.map(([value, label]) => h('option', { value, text: label, selected: parsed.preset === value })));
    this.days = h('fieldset', { class: 'days', id: 'task-recurrence-days' }, h('legend', { text: 'On' }),
      DAYS.map(([code, name]) => h('label', { class: 'check' },
        h('input', { type: 'checkbox', value: code, checked: parsed.days.includes(code) }), name)));
    this.monthDay = h('input', { type: 'number', id: 'task-recurrence-monthday', min: 1, max: 31,
      value: String(parsed.monthDay) });
    this.rule = h('input', { id: 'task-recurrence-rule', value: rec?.rule || '', autocomplete: 'off',
      spellcheck: false, placeholder: 'FREQ=WEEKLY;BYDAY=MO,TH' });
    this.anchor = h('select', { id: 'task-recurrence-anchor' },
      [['SCHEDULE', 'the schedule'], ['COMPLETION', 'the completion time']].map(([value, text]) =>
        h('option', { value, text, selected: (rec?.anchor || 'SCHEDULE') === value })));
    this.preview = h('div', { class: 'preview', id: 'task-recurrence-preview', 'aria-live': 'polite' });
    const monthDayField = h('div', { class: 'field', id: 'task-recurrence-monthday-field' },
      h('label', { for: 'task-recurrence-monthday', text: 'Day of the month' }), this.monthDay);

    // The raw rule is shown only under "Custom rule": typing it there keeps that choice. A
    // saved rule keeps its text until another preset is chosen.
    const sync = ({ fromPreset = true } = {}) => {
      if (fromPreset && this.preset.value !== 'custom') {
        this.rule.value = ruleOf({
          preset: this.preset.value,
          days: [...this.days.querySelectorAll('input:checked')].map((b) => b.value),
          monthDay: Number(this.monthDay.value) || 1,
        }) || '';
      }
      this.days.hidden = this.preset.value !== 'weekly';
      monthDayField.hidden = this.preset.value !== 'monthly-day';
      ruleField.hidden = this.preset.value !== 'custom';
      this.drawPreview();
    };
    this.preset.addEventListener('change', () => {
      if (this.preset.value === 'weekly' && !this.days.querySelector('input:checked')) {
        // Default to the weekday of the due date, else Monday.
        const day = this.dueDate.value ? new Date(`${this.dueDate.value}T12:00:00Z`).getUTCDay() : 1;
        const code = DAYS[(day + 6) % 7][0];
        this.days.querySelector(`input[value="${code}"]`).checked = true;
      }
      sync();
    });
    this.days.addEventListener('change', () => sync());
    this.monthDay.addEventListener('input', () => sync());
    this.rule.addEventListener('input', () => sync({ fromPreset: false }));
    const ruleField = this.field('recurrence.rule', 'Rule (RRULE)', this.rule,
      { hint: 'RFC 5545, without DTSTART: the due date starts the series.' });
    sync({ fromPreset: !rec });

    return this.group('recurrence', 'Repeat', [
      this.field('recurrence.preset', 'Repeats', this.preset),
      this.days,
      monthDayField,
      ruleField,
      this.field('recurrence.anchor', 'Next date counts from', this.anchor),
      this.preview,
    ], { hint: `Dates repeat at the due time in ${this.tz}. A repeating task needs a due date.` });
  }

  /**
   * Shows the next dates of the rule as it stands: the saved task's own while its rule and due
   * date are unchanged, else `previewRecurrence` once the user paused typing. An invalid rule
   * gets the API's message at the rule field.
   */
  drawPreview() {
    clearTimeout(this.previewTimer);
    const seq = ++this.previewSeq;
    const saved = this.task?.recurrence;
    const recurrence = this.recurrenceValue();
    const dueAt = this.dueAtValue();
    this.preview.removeAttribute('aria-busy');
    if (!recurrence) {
      this.clearPreviewError();
      replace(this.preview);
      return;
    }
    if (saved?.upcoming && saved.rule === recurrence.rule && sameInstant(dueAt, this.task.dueAt)) {
      this.clearPreviewError();
      this.drawDates(recurrence.rule, saved.upcoming);
      return;
    }
    const variables = previewVariables(recurrence, dueAt, UPCOMING);
    if (!variables) {
      this.clearPreviewError();
      replace(this.preview, h('p', { class: 'hint',
        text: `Repeats ${describe(recurrence.rule)}. Set a due date to see the next dates.` }));
      return;
    }
    this.preview.setAttribute('aria-busy', 'true');
    this.previewTimer = setTimeout(async () => {
      if (!this.element?.isConnected) return;
      let dates = null;
      let failure = null;
      try {
        dates = (await gql(PREVIEW_RECURRENCE, variables)).previewRecurrence;
      } catch (e) {
        failure = e;
      }
      // A later edit has its own request on the way.
      if (seq !== this.previewSeq) return;
      this.preview.removeAttribute('aria-busy');
      this.clearPreviewError();
      if (failure) this.drawPreviewError(failure);
      else this.drawDates(recurrence.rule, dates);
    }, PREVIEW_DELAY_MS);
  }

  drawDates(rule, dates) {
    if (!dates.length) {
      replace(this.preview, h('p', { class: 'hint', text: `Repeats ${describe(rule)}; no dates follow the due date.` }));
      return;
    }
    replace(this.preview,
      h('p', { class: 'hint', text: `Next dates (${describe(rule)}):` }),
      h('ol', { class: 'upcoming' }, dates.map((iso) =>
        h('li', {}, h('time', { dateTime: iso, text: formatDateTime(iso) })))));
  }

  /** Shows a failed preview at the field it names (without moving the focus), else in its place. */
  drawPreviewError(e) {
    const field = e.code === 'BAD_USER_INPUT' ? this.errorField(e) : null;
    if (!field) {
      replace(this.preview, h('p', { class: 'error', text: `The next dates cannot be shown: ${humanMessage(e.message)}` }));
      return;
    }
    const { error, control } = this.errors.get(field);
    error.textContent = atField(e, field === e.field);
    control.setAttribute('aria-invalid', 'true');
    this.previewErrorAt = field;
    replace(this.preview, h('p', { class: 'hint', text: 'No dates until the rule is valid.' }));
  }

  clearPreviewError() {
    const shown = this.previewErrorAt && this.errors.get(this.previewErrorAt);
    this.previewErrorAt = null;
    if (!shown) return;
    shown.error.textContent = '';
    shown.control.removeAttribute('aria-invalid');
  }

  /** The user's tags, as the tag store has them. */
  knownTags() {
    return this.ctx.stores.tags.getState().tags;
  }

  addTag() {
    const name = this.tagInput.value.replace(/,/g, ' ').trim();
    if (!name) return;
    if (!this.tags.some((t) => t.toLowerCase() === name.toLowerCase())) {
      const existing = this.knownTags().find((t) => t.name.toLowerCase() === name.toLowerCase());
      this.tags.push(existing ? existing.name : name);
      announce(existing ? `Tag ${existing.name} added.` : `New tag ${name} will be created.`);
    }
    this.tagInput.value = '';
    this.drawTags();
  }

  drawTags() {
    replace(this.tagList, this.tags.map((name, i) => {
      const known = this.knownTags().find((t) => t.name.toLowerCase() === name.toLowerCase());
      const chip = h('li', { class: 'tag' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), name,
        !known && h('span', { class: 'new', text: ' (new)' }),
        h('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove tag ${name}`, text: '×',
          onclick: () => {
            this.tags.splice(i, 1);
            this.drawTags();
            this.tagInput.focus();
          } }));
      if (known?.color) chip.style.setProperty('--tag-color', known.color);
      return chip;
    }));
  }

  dueAtValue() {
    return this.dueDate.value ? toInstant(this.dueDate.value, this.dueTime.value || DEFAULT_TIME, this.tz) : null;
  }

  /** The recurrence to save: the saved zone while the rule is unchanged, else the user's. */
  recurrenceValue() {
    const rule = this.rule.value.trim();
    return rule ? { rule, timezone: this.task?.recurrence?.rule === rule ? this.task.recurrence.timezone : this.tz,
      anchor: this.anchor.value } : null;
  }

  values() {
    return {
      title: this.title.value,
      description: this.description.value,
      priority: this.element.querySelector('input[name=priority]:checked')?.value || 'NONE',
      dueAt: this.dueAtValue(),
      tags: this.tags.slice(),
      recurrence: this.recurrenceValue(),
      reminders: this.reminders.values(),
    };
  }

  /** The UpdateTaskInput: only what changed, plus expectedVersion. */
  changes(v) {
    const t = this.task;
    const input = { expectedVersion: t.version };
    if (v.title !== t.title) input.title = v.title;
    if (v.description !== t.description) input.description = v.description;
    if (v.priority !== t.priority) input.priority = v.priority;
    if ((v.dueAt && new Date(v.dueAt).getTime()) !== (t.dueAt && new Date(t.dueAt).getTime())) input.dueAt = v.dueAt;
    const names = (list) => list.map((n) => n.toLowerCase()).sort().join('\n');
    if (names(v.tags) !== names(t.tags.map((x) => x.name))) input.tags = v.tags;
    const rec = t.recurrence && { rule: t.recurrence.rule, timezone: t.recurrence.timezone, anchor: t.recurrence.anchor };
    if (JSON.stringify(v.recurrence) !== JSON.stringify(rec)) input.recurrence = v.recurrence;
    const pending = t.reminders.filter((r) => r.status !== 'CANCELLED')
      .map((r) => (r.at ? { at: new Date(r.at).toISOString() } : { minutesBeforeDue: r.minutesBeforeDue }));
    const mine = v.reminders.map((r) => (r.at ? { at: new Date(r.at).toISOString() } : r));
    if (JSON.stringify(mine) !== JSON.stringify(pending)) input.reminders = v.reminders;
    return input;
  }

  clearErrors() {
    this.formError.textContent = '';
    for (const { error, control } of this.errors.values()) {
      error.textContent = '';
      control.removeAttribute('aria-invalid');
    }
  }

  /** The field an error message names, or its closest enclosing field shown; null for neither. */
  errorField(e) {
    const shown = (name) => this.errors.has(name) && !this.errors.get(name).control.closest('[hidden]');
    let field = e.field;
    while (field && !shown(field)) field = field.includes('.') ? field.slice(0, field.lastIndexOf('.')) : null;
    return field;
  }

  /** Shows `e` at the field its message names (or its closest enclosing field), else above the buttons. */
  showError(e) {
    const field = this.errorField(e);
    const text = e.code === 'CONFLICT'
      ? 'This task was changed elsewhere since you opened it. Close and open it again to see the changes.'
      : atField(e, field && field === e.field);
    if (field) {
      const { error, control } = this.errors.get(field);
      error.textContent = text;
      control.setAttribute('aria-invalid', 'true');
      (control.matches('fieldset') ? control.querySelector('input, select, textarea, button') : control)?.focus();
    } else {
      this.formError.textContent = text;
    }
  }

  async save(button) {
    this.clearErrors();
    button.disabled = true;
    const v = this.values();
    try {
      let saved;
      if (this.task) {
        const input = this.changes(v);
        saved = (await gql(UPDATE_TASK, { id: this.task.id, input, upcoming: UPCOMING_SAVED })).updateTask;
      } else {
        const input = { ...v };
        if (!input.recurrence) delete input.recurrence;
        if (!input.dueAt) delete input.dueAt;
        saved = (await gql(CREATE_TASK, { input, upcoming: UPCOMING_SAVED })).createTask;
      }
      if (v.tags.some((name) => !this.knownTags().some((t) => t.name.toLowerCase() === name.toLowerCase()))) {
        this.ctx.stores.tags.refresh().catch(() => {});
      }
      this.onSaved?.(saved, !this.task);
      if (saved.recurrence?.upcoming?.length) {
        announce(`${this.task ? 'Saved' : 'Created'} “${saved.title}”, repeating ${describe(saved.recurrence.rule)}; next: ${saved.recurrence.upcoming.map((d) => formatDateTime(d)).join('; ')}.`);
      }
    } catch (e) {
      this.showError(e);
    } finally {
      button.disabled = false;
    }
  }

  /** Deletes the task with an offer to undo (undo.js) and closes the form. */
  remove() {
    deleteWithUndo(this.ctx.stores.tasks, this.task);
    this.onCancel?.();
  }
}
