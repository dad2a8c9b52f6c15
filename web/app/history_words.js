// A task's history in words: what each version did ("Created", "Completed", "Restored"), when
// (in the user's zone, "today at 10:00"), what it changed by the form's labels ("Title: Pay
// rent → Pay the rent", "Tags: home → home, money", "Reminders: none → 30 minutes before
// due"), what caused it ("Created by the recurrence rule from “Pay rent”, due …"), and why a
// restore failed. Pure functions of the API's values (`TaskVersion`, `FieldChange`), the zone
// and the current time, so the unit tests pin them down without a browser.

import { fieldLabel, humanMessage } from './api.js';
import { dateTimeWords } from './phrases.js';
import { describe as describeRule } from './recurrence.js';
import { priority } from './priority.js';
import { zone } from './time.js';

/** Each `TaskVersionKind` in words. */
export const KIND_WORDS = {
  CREATED: 'Created',
  UPDATED: 'Edited',
  COMPLETED: 'Completed',
  REOPENED: 'Reopened',
  DELETED: 'Deleted',
  RESTORED: 'Restored',
};

/** Labels of the fields the form has no input for (the checkbox and its time). */
const OTHER_LABELS = { completed: 'Done', completedAt: 'Done at' };

/** What a value that is not set reads as. */
const NONE = 'none';
/** How much of a description a change shows. */
const DESCRIPTION_CHARS = 60;

/** A version's kind in words: "Created", "Edited", …; an unknown kind as "Something else". */
export function kindWords(kind) {
  const known = KIND_WORDS[kind];
  if (known) return known;
  const text = String(kind || '').toLowerCase().replace(/_/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The label of a changed field, as the form calls it ("dueAt" -> "Due date"). */
export function fieldWords(field) {
  return fieldLabel(field) || OTHER_LABELS[field] || field;
}

/** A number of minutes in words: "30 minutes", "1 hour", "1 day 2 hours". */
export function durationWords(minutes) {
  const units = [['day', 1440], ['hour', 60], ['minute', 1]];
  let rest = Math.abs(Math.round(minutes));
  const parts = [];
  for (const [name, size] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n} ${name}${n === 1 ? '' : 's'}`);
  }
  return parts.join(' ') || '0 minutes';
}

/** One reminder (`{minutesBeforeDue, at, status}`) in words: "30 minutes before due", "tomorrow at 08:00 (fired)". */
export function reminderWords(reminder, { now = Date.now(), tz = zone() } = {}) {
  let text;
  if (reminder.minutesBeforeDue !== null && reminder.minutesBeforeDue !== undefined) {
    text = reminder.minutesBeforeDue === 0 ? 'at the due time' : `${durationWords(reminder.minutesBeforeDue)} before due`;
  } else if (reminder.at) {
    text = dateTimeWords(reminder.at, { now, tz });
  } else {
    text = 'a reminder';
  }
  const status = reminder.status && reminder.status !== 'PENDING' ? ` (${reminder.status.toLowerCase()})` : '';
  return text + status;
}

/** A recurrence (`{rule, timezone, anchor}`) in words: "weekly on Mon", "daily, from the completion, in Asia/Tokyo". */
export function recurrenceWords(recurrence, { tz = zone() } = {}) {
  const parts = [describeRule(recurrence.rule)];
  if (recurrence.anchor === 'COMPLETION') parts.push('from the completion');
  if (recurrence.timezone && recurrence.timezone !== tz) parts.push(`in ${recurrence.timezone}`);
  return parts.join(', ');
}

/** The value of `field` (JSON, as `FieldChange` has it) in words; "none" when it is not set. */
export function valueWords(field, value, { now = Date.now(), tz = zone() } = {}) {
  if (value === null || value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) return NONE;
  switch (field) {
    case 'description': {
      const text = String(value).replace(/\s+/g, ' ').trim();
      return text.length > DESCRIPTION_CHARS ? `${text.slice(0, DESCRIPTION_CHARS - 1).trimEnd()}…` : text;
    }
    case 'priority': return priority(value).label;
    case 'dueAt':
    case 'completedAt': return dateTimeWords(value, { now, tz });
    case 'completed': return value ? 'yes' : 'no';
    case 'tags': return value.join(', ');
    case 'recurrence': return recurrenceWords(value, { tz });
    case 'reminders': return value.map((r) => reminderWords(r, { now, tz })).join('; ');
    default: return typeof value === 'string' ? value : JSON.stringify(value);
  }
}

/**
 * What a version changed, one line per field: [{field, label, from, to, text}], `from` null in
 * a task's first version (what it was created with: "Title: Pay rent"). Whether a task is done
 * and since when are left to the kind ("Completed", "Reopened") when it says so.
 */
export function changeLines(version, { now = Date.now(), tz = zone() } = {}) {
  const saidByKind = version.kind === 'COMPLETED' || version.kind === 'REOPENED';
  return (version.changes || [])
    .filter((c) => !(saidByKind && (c.field === 'completed' || c.field === 'completedAt')))
    .map((c) => {
      const label = fieldWords(c.field);
      const from = version.kind === 'CREATED' ? null : valueWords(c.field, c.old, { now, tz });
      const to = valueWords(c.field, c.new, { now, tz });
      return { field: c.field, label, from, to, text: from === null ? `${label}: ${to}` : `${label}: ${from} → ${to}` };
    });
}

/** The id of the task a recurrence rule created this one from, read from `causedBy`; null for another cause. */
export function recurrenceSource(causedBy) {
  return /recurrence rule from task (\S+)/.exec(causedBy || '')?.[1] || null;
}

/**
 * What caused a version in words, or null for the owner's own change. `previous` is the
 * occurrence the recurrence rule started from (`task.previousOccurrence`), named when it still
 * exists: "Created by the recurrence rule from “Pay rent”, due Mon 1 Dec at 09:00."
 */
export function causeWords(causedBy, previous, { now = Date.now(), tz = zone() } = {}) {
  if (!causedBy) return null;
  const source = recurrenceSource(causedBy);
  if (source) {
    if (!previous || previous.id !== source) return 'Created by the recurrence rule from an earlier occurrence, deleted since.';
    const due = previous.dueAt ? `, due ${dateTimeWords(previous.dueAt, { now, tz })}` : '';
    return `Created by the recurrence rule from “${previous.title}”${due}.`;
  }
  const text = String(causedBy).trim();
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}`;
}

/** When a version was made, in words: "today at 10:00". */
export function versionTime(at, { now = Date.now(), tz = zone() } = {}) {
  return dateTimeWords(at, { now, tz });
}

/** Why `restoreTask` failed, in words (`e` is an ApiError). */
export function restoreFailure(e) {
  switch (e.code) {
    case 'CONFLICT': return 'This task is not deleted any more.';
    case 'NOT_FOUND': return 'This task no longer exists: its history is gone, so it cannot be restored.';
    default: return humanMessage(e.message);
  }
}
