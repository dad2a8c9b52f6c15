// The words quick add (quick_add.js) reads, each at a position in the line's tokens: weekday
// names and lists, days of the month, month names with a day, whole dates and times; with the
// calendar arithmetic they need. Pure functions of the tokens and today's date ("YYYY-MM-DD",
// in the user's zone). A token is {text, word} (`word`: lower case, without trailing commas),
// or {text, literal} for quoted words, which never count.

import { nextDay } from './time.js';
import { weekday } from './phrases.js';

const WEEKDAY_NAMES = {
  monday: 'MO', tuesday: 'TU', wednesday: 'WE', thursday: 'TH', friday: 'FR', saturday: 'SA', sunday: 'SU',
};
/** Abbreviations, which count only after every/on/next/by/due: "sat" and "sun" are words too. */
const WEEKDAY_ABBREVIATIONS = {
  mon: 'MO', tue: 'TU', tues: 'TU', wed: 'WE', thu: 'TH', thur: 'TH', thurs: 'TH', fri: 'FR', sat: 'SA', sun: 'SU',
};
export const CODES = ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'];
/** The JavaScript weekday (0 Sunday) of each RRULE day code. */
export const JS_DAY = { SU: 0, MO: 1, TU: 2, WE: 3, TH: 4, FR: 5, SA: 6 };
const MONTH_NAMES = {
  jan: 1, january: 1, feb: 2, february: 2, mar: 3, march: 3, apr: 4, april: 4, may: 5, jun: 6, june: 6,
  jul: 7, july: 7, aug: 8, august: 8, sep: 9, sept: 9, september: 9, oct: 10, october: 10, nov: 11,
  november: 11, dec: 12, december: 12,
};
/** Units of repeats and of `in 3 days`, as RRULE frequencies. */
export const UNITS = {
  day: 'DAILY', days: 'DAILY', week: 'WEEKLY', weeks: 'WEEKLY', month: 'MONTHLY', months: 'MONTHLY',
  year: 'YEARLY', years: 'YEARLY',
};

/** The word at `i`; undefined past the end and for quoted words. */
export const wordAt = (tokens, i) => (tokens[i] && !tokens[i].literal ? tokens[i].word : undefined);

/** A weekday code at `i` (abbreviations only when `abbreviated` is allowed), or null. */
function weekdayAt(tokens, i, abbreviated) {
  const word = wordAt(tokens, i);
  if (!word) return null;
  return WEEKDAY_NAMES[word] || (abbreviated && WEEKDAY_ABBREVIATIONS[word]) || null;
}

/** "mon, wed and fri" at `i`: {days, length}, or null. */
export function weekdayListAt(tokens, i) {
  const days = [];
  let j = i;
  for (;;) {
    const day = weekdayAt(tokens, j, true);
    if (!day) break;
    if (!days.includes(day)) days.push(day);
    j += 1;
    if (['and', '&'].includes(wordAt(tokens, j)) && weekdayAt(tokens, j + 1, true)) j += 1;
  }
  return days.length ? { days: CODES.filter((c) => days.includes(c)), length: j - i } : null;
}

/** A day of the month written "1st", "22nd", "15th": the number, or null. */
function ordinalAt(tokens, i) {
  const match = /^(\d{1,2})(st|nd|rd|th)$/.exec(wordAt(tokens, i) || '');
  const day = match && Number(match[1]);
  return day >= 1 && day <= 31 ? day : null;
}

/** "on the 1st", "on day 15", "on the last day": {monthDay (-1: the last), length}, or null. */
export function monthDayAt(tokens, i) {
  let j = i;
  if (wordAt(tokens, j) === 'on') j += 1;
  if (wordAt(tokens, j) === 'the') j += 1;
  if (wordAt(tokens, j) === 'last' && wordAt(tokens, j + 1) === 'day') {
    return { monthDay: -1, length: j + 2 - i + ofTheMonth(tokens, j + 2) };
  }
  if (wordAt(tokens, j) === 'day' && /^\d{1,2}$/.test(wordAt(tokens, j + 1) || '')) {
    const day = Number(wordAt(tokens, j + 1));
    return day >= 1 && day <= 31 ? { monthDay: day, length: j + 2 - i } : null;
  }
  const day = ordinalAt(tokens, j);
  return day ? { monthDay: day, length: j + 1 - i + ofTheMonth(tokens, j + 1) } : null;
}

/** How many tokens "of the month" / "of each month" / "of every month" at `i` take (0 if absent). */
function ofTheMonth(tokens, i) {
  return wordAt(tokens, i) === 'of' && ['the', 'each', 'every'].includes(wordAt(tokens, i + 1))
    && wordAt(tokens, i + 2) === 'month' ? 3 : 0;
}

/** A valid date "YYYY-MM-DD" of year, month and day, or null (31 April is not one). */
function isoDate(y, m, d) {
  const date = new Date(Date.UTC(y, m - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return null;
  return date.toISOString().slice(0, 10);
}

/** The first date on or after `today` with this month and day (in a later year if need be). */
function nextMonthDay(m, d, today) {
  const year = Number(today.slice(0, 4));
  for (let y = year; y < year + 8; y += 1) {
    const date = isoDate(y, m, d);
    if (date && date >= today) return date;
  }
  return null;
}

/** `date` plus `n` days. */
export function addDays(date, n) {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

/** `date` plus `n` months, on the same day or the month's last. */
function addMonths(date, n) {
  const [y, m, d] = date.split('-').map(Number);
  const last = new Date(Date.UTC(y, m - 1 + n + 1, 0)).getUTCDate();
  return new Date(Date.UTC(y, m - 1 + n, Math.min(d, last))).toISOString().slice(0, 10);
}

/** "dec 24", "24 dec", "december 24th" (each with an optional year) at `i`: {date, length}, or null. */
export function monthAndDayAt(tokens, i, today) {
  const dayOf = (word) => {
    const match = /^(\d{1,2})(st|nd|rd|th)?$/.exec(word || '');
    return match ? Number(match[1]) : null;
  };
  let month = MONTH_NAMES[wordAt(tokens, i)];
  let day = month ? dayOf(wordAt(tokens, i + 1)) : null;
  if (!month || !day) {
    day = dayOf(wordAt(tokens, i));
    month = day ? MONTH_NAMES[wordAt(tokens, i + 1)] : null;
  }
  if (!month || !day) return null;
  const year = /^\d{4}$/.test(wordAt(tokens, i + 2) || '') ? Number(wordAt(tokens, i + 2)) : null;
  const date = year ? isoDate(year, month, day) : nextMonthDay(month, day, today);
  return date ? { date, length: year ? 3 : 2 } : null;
}

/** A date at `i` (with its on/by/due): {date, length}, or null. */
export function dateAt(tokens, i, today) {
  const lead = ['on', 'by', 'due', 'from', 'starting'].includes(wordAt(tokens, i)) ? 1 : 0;
  const at = i + lead;
  const word = wordAt(tokens, at);
  if (!word) return null;
  const found = (date, length) => (date ? { date, length: lead + length } : null);
  if (word === 'today') return found(today, 1);
  if (word === 'tomorrow') return found(nextDay(today), 1);
  if (word === 'next') {
    const unit = wordAt(tokens, at + 1);
    // Monday of next week; weeks start on Monday.
    const nextMonday = addDays(today, 7 - ((weekday(today) + 6) % 7));
    const day = weekdayAt(tokens, at + 1, true);
    if (day) return found(addDays(nextMonday, (JS_DAY[day] + 6) % 7), 2);
    if (unit === 'week') return found(nextMonday, 2);
    if (unit === 'month') return found(`${addMonths(today, 1).slice(0, 8)}01`, 2);
    return null;
  }
  const day = weekdayAt(tokens, at, lead > 0);
  if (day) {
    const ahead = ((JS_DAY[day] - weekday(today) + 6) % 7) + 1;
    return found(addDays(today, ahead), 1);
  }
  if (word === 'in') {
    const count = wordAt(tokens, at + 1);
    const n = ['a', 'an', 'one'].includes(count) ? 1 : /^\d{1,3}$/.test(count || '') ? Number(count) : 0;
    const unit = UNITS[wordAt(tokens, at + 2)];
    if (!n || !unit || unit === 'YEARLY') return null;
    if (unit === 'DAILY') return found(addDays(today, n), 3);
    if (unit === 'WEEKLY') return found(addDays(today, 7 * n), 3);
    return found(addMonths(today, n), 3);
  }
  if (word === 'the' && lead) {
    const monthDay = ordinalAt(tokens, at + 1);
    if (!monthDay) return null;
    let date = today;
    for (let k = 0; k < 62 && Number(date.slice(8)) !== monthDay; k += 1) date = addDays(date, 1);
    return found(Number(date.slice(8)) === monthDay ? date : null, 2);
  }
  const named = monthAndDayAt(tokens, at, today);
  if (named) return found(named.date, named.length);
  let match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(word);
  if (match) return found(isoDate(Number(match[1]), Number(match[2]), Number(match[3])), 1);
  match = /^(\d{1,2})\/(\d{1,2})(?:\/(\d{4}))?$/.exec(word);
  if (match) {
    const [d, m] = [Number(match[1]), Number(match[2])];
    return found(match[3] ? isoDate(Number(match[3]), m, d) : nextMonthDay(m, d, today), 1);
  }
  return null;
}

/** A time at `i` (with its `at`): {time: "HH:MM", length}, or null. */
export function timeAt(tokens, i) {
  const lead = wordAt(tokens, i) === 'at' ? 1 : 0;
  const word = wordAt(tokens, i + lead);
  if (!word) return null;
  const pad = (n) => String(n).padStart(2, '0');
  if (word === 'noon') return { time: '12:00', length: lead + 1 };
  let match = /^(\d{1,2})(?::(\d{2}))?(am|pm|a\.m\.|p\.m\.)$/.exec(word);
  let length = 1;
  if (!match) {
    const half = /^(\d{1,2})(?::(\d{2}))?$/.exec(word);
    const suffix = wordAt(tokens, i + lead + 1);
    if (half && ['am', 'pm', 'a.m.', 'p.m.'].includes(suffix)) {
      match = [word, half[1], half[2], suffix];
      length = 2;
    }
  }
  if (match) {
    const hour = Number(match[1]);
    const minute = Number(match[2] || 0);
    if (hour < 1 || hour > 12 || minute > 59) return null;
    const h24 = (hour % 12) + (match[3].startsWith('p') ? 12 : 0);
    return { time: `${pad(h24)}:${pad(minute)}`, length: lead + length };
  }
  match = /^(\d{1,2}):(\d{2})$/.exec(word);
  if (match && Number(match[1]) <= 23 && Number(match[2]) <= 59) {
    return { time: `${pad(Number(match[1]))}:${match[2]}`, length: lead + 1 };
  }
  return null;
}
