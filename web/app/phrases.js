// Dates, times and notifications in words, in the user's zone: "today at 10:00", "tomorrow at
// 09:00", "Mon 14 Dec at 10:00", and the texts of reminder notifications built from them. Pure
// functions of an instant, a zone and the current time (`now`, epoch milliseconds), so the unit
// tests pin them down without a browser. The words are English and the clock is 24-hour, like
// the rest of the app; what is not near gets a weekday, day and month (and the year, when it is
// not this year's).

import { zone, toWallClock } from './time.js';

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY_MS = 86400000;

/** Days from `from` to `to` (both "YYYY-MM-DD"): 1 for the next day, -1 for the one before. */
export function daysBetween(from, to) {
  const utc = (date) => {
    const [y, m, d] = date.split('-').map(Number);
    return Date.UTC(y, m - 1, d);
  };
  return Math.round((utc(to) - utc(from)) / DAY_MS);
}

/** The weekday of `date` ("YYYY-MM-DD"): 0 for Sunday to 6 for Saturday. */
export function weekday(date) {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d)).getUTCDay();
}

/** "Mon 14 Dec" for `date`, with the year when it is not the year of `today`. */
export function shortDate(date, today) {
  const [y, m, d] = date.split('-').map(Number);
  const year = today && Number(today.slice(0, 4)) === y ? '' : ` ${y}`;
  return `${WEEKDAYS[weekday(date)]} ${d} ${MONTHS[m - 1]}${year}`;
}

/** `date` in words, seen from `today`: "today", "tomorrow", "yesterday" or "Mon 14 Dec". */
export function dayWords(date, today) {
  const days = daysBetween(today, date);
  if (days === 0) return 'today';
  if (days === 1) return 'tomorrow';
  if (days === -1) return 'yesterday';
  return shortDate(date, today);
}

/** A heading for the tasks due on `date`: "Today · Mon 14 Dec", "Tomorrow · Tue 15 Dec", "Wed 16 Dec". */
export function dayHeading(date, today) {
  const words = dayWords(date, today);
  const short = shortDate(date, today);
  return words === short ? short : `${words[0].toUpperCase()}${words.slice(1)} · ${short}`;
}

/** The instant `iso` in words in `tz`, seen from `now`: "today at 10:00", "Mon 14 Dec at 10:00". */
export function dateTimeWords(iso, { now = Date.now(), tz = zone() } = {}) {
  const at = toWallClock(iso, tz);
  const today = toWallClock(new Date(now).toISOString(), tz).date;
  return `${dayWords(at.date, today)} at ${at.time}`;
}

/** The first RFC 3339 instant in `text` ("… at 2030-12-14T09:00:00Z"), or null. */
export function instantIn(text) {
  const match = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})/i.exec(String(text || ''));
  return match && !Number.isNaN(Date.parse(match[0])) ? match[0] : null;
}

/**
 * The texts a reminder notification is shown with: {title, body}, the time said in words in
 * the user's zone. A notification carries `dueAt` (the task's due date when the reminder fired,
 * null if it had none) and `remindAt` (the time the reminder was set for); a reminder on a task
 * without a due date says what it is: "Reminder: <title>". Notifications stored before the
 * server had those fields have only the server's text, "Due at <UTC instant>" (or "Missed: was
 * due at …"): the instant is read from it, else the task's due date is used, else the text is
 * shown as written.
 */
export function notificationText(n, { now = Date.now(), tz = zone() } = {}) {
  const missed = n.kind === 'REMINDER_MISSED';
  const timed = n.remindAt != null;
  const undated = timed ? !n.dueAt : Boolean(n.task && !n.task.dueAt);
  const at = timed ? n.dueAt || n.remindAt : instantIn(n.body) || n.task?.dueAt || null;
  const words = at && dateTimeWords(at, { now, tz });
  if (undated) {
    return { title: `Reminder: ${n.title}`, body: missed && words ? `Missed: it was set for ${words}` : '' };
  }
  if (!words) return { title: n.title, body: n.body || '' };
  return { title: n.title, body: missed ? `Missed: was due ${words}` : `Due ${words}` };
}
