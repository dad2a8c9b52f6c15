// The reminder rows of the task form: each is "N minutes before due" or "at a date and time"
// (in the user's zone), as the API's ReminderInput has exactly one of the two.

import { h } from './dom.js';
import { toInstant, toWallClock } from './time.js';

/** The time a date without one means: due dates and reminder dates alike. */
export const DEFAULT_TIME = '09:00';

/** Which reminders the form shows: cancelled ones are history, not settings. */
const SHOWN = new Set(['PENDING', 'FIRED', 'MISSED']);

export class ReminderList {
  constructor(reminders, tz) {
    this.tz = tz;
    this.rows = h('ul', { class: 'reminders', id: 'task-reminders' });
    this.addButton = h('button', { type: 'button', class: 'small', id: 'add-reminder', text: 'Add reminder',
      onclick: () => {
        this.add(null);
        this.rows.lastElementChild?.querySelector('select')?.focus();
      } });
    this.element = h('div', {}, this.rows, this.addButton);
    for (const r of reminders) if (SHOWN.has(r.status)) this.add(r);
  }

  /** The ReminderInput list. */
  values() {
    return [...this.rows.children].map((row) => row.reminderValue());
  }

  add(reminder) {
    const kind = h('select', { class: 'reminder-kind' },
      h('option', { value: 'before', text: 'Minutes before due', selected: !reminder?.at }),
      h('option', { value: 'at', text: 'At a time', selected: Boolean(reminder?.at) }));
    const minutes = h('input', { type: 'number', min: 0, step: 5, class: 'reminder-minutes',
      value: String(reminder?.minutesBeforeDue ?? 30) });
    const at = reminder?.at ? toWallClock(reminder.at, this.tz) : { date: '', time: '' };
    const atDate = h('input', { type: 'date', class: 'reminder-date', value: at.date });
    const atTime = h('input', { type: 'time', class: 'reminder-time', value: at.time });
    const status = reminder && reminder.status !== 'PENDING'
      ? h('span', { class: 'muted', text: reminder.status.toLowerCase() }) : null;
    const remove = h('button', { type: 'button', class: 'small', text: 'Remove', onclick: () => {
      row.remove();
      this.label();
      this.addButton.focus();
    } });
    const row = h('li', { class: 'reminder-row' }, kind, minutes, atDate, atTime, status, remove);
    row.labelled = (n) => {
      kind.setAttribute('aria-label', `Reminder ${n}: kind`);
      minutes.setAttribute('aria-label', `Reminder ${n}: minutes before due`);
      atDate.setAttribute('aria-label', `Reminder ${n}: date (${this.tz})`);
      atTime.setAttribute('aria-label', `Reminder ${n}: time (${this.tz})`);
      remove.setAttribute('aria-label', `Remove reminder ${n}`);
    };
    const sync = () => {
      minutes.hidden = kind.value !== 'before';
      atDate.hidden = atTime.hidden = kind.value !== 'at';
    };
    kind.addEventListener('change', sync);
    sync();
    row.reminderValue = () => {
      if (kind.value === 'before') return { minutesBeforeDue: Number(minutes.value) };
      return { at: atDate.value ? toInstant(atDate.value, atTime.value || DEFAULT_TIME, this.tz) : null };
    };
    this.rows.append(row);
    this.label();
  }

  /** Numbers the rows' labels 1, 2, ... in their order. */
  label() {
    [...this.rows.children].forEach((row, i) => row.labelled(i + 1));
  }
}
