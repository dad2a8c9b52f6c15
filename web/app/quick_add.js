// Quick add: one line such as "Pay rent every month on the 1st at 9am #home !high" read into a
// task (title, due date and time in the user's zone, an RFC 5545 RRULE, tags, priority), plus
// what was understood, for the preview the user sees before saving. A pure function of the
// text, the current time and the zone; the API still decides whether the task is valid.
//
// What it understands (case does not matter; anything else stays in the title):
// - tags: `#home`, `#side-project` (letters, digits, `-`, `_`, `/`, `.`);
// - priority: `!low`, `!medium` (`!med`), `!high`, `!urgent` (`!none` too);
// - dates: `today`, `tomorrow`; weekday names (`friday`, or `fri` after on, by, next…), meaning
//   the next one after today; `next monday` (that day in next week, weeks starting on Monday),
//   `next week` (its Monday), `next month` (its 1st); `in 3 days`, `in 2 weeks`, `in a month`;
//   `dec 24`, `24 dec`, `december 24th`, with a year or without (the next one); numbers are
//   day/month, `24/12` or `24/12/2031`, or ISO `2031-12-24`; `on the 15th` (the next 15th of a
//   month). `on`, `by`, `due`, `from` or `starting` before a date belongs to it;
// - times: `9am`, `9 am`, `9:30pm`, `21:00`, `noon`, with an optional `at` before. A bare number
//   is not a time (`at 5` stays in the title: morning or evening?);
// - repeats: `every day`, `daily`, `every 3 days`, `every other day`, `every weekday`,
//   `every weekend`, `every week`, `weekly`, `every 2 weeks`, `every week on mon and thu`,
//   `every monday`, `every mon, wed and fri`, `every month`, `monthly`, `every 3 months`,
//   `every month on the 1st`, `every 15th`, `every month on the last day`, `every last day`,
//   `every year`, `yearly`, `annually`, `every dec 24`;
// - "double quotes" keep words as they are: `"Tomorrow never dies" on blu-ray`.
// Only the first date, time, repeat and priority count: a second one stays in the title, so
// nothing typed is lost without the preview showing it.
//
// Which moment it becomes: a date without a time is at 09:00 (the form's default); a time
// without a date is today, or tomorrow once it has passed; a repeat without a date starts at its
// first date that is not past (`every monday at 9am` on a Monday at 10:00 is next Monday).

import { toInstant, toWallClock, nextDay, zone } from './time.js';
import { weekday, dateTimeWords } from './phrases.js';
import {
  JS_DAY, UNITS, wordAt, weekdayListAt, monthDayAt, monthAndDayAt, dateAt, timeAt, addDays,
} from './quick_add_words.js';
import { describe } from './recurrence.js';
import { priority as priorityNamed } from './priority.js';

/** The time a date without one means (the task form's default too). */
export const QUICK_ADD_DEFAULT_TIME = '09:00';

const PRIORITY_WORDS = { none: 'NONE', low: 'LOW', med: 'MEDIUM', medium: 'MEDIUM', high: 'HIGH', urgent: 'URGENT' };

/**
 * Reads `text`. Returns {title, priority (a Priority name or null), tags, date ("YYYY-MM-DD")
 * and time ("HH:MM") or nulls, dueAt (RFC 3339, or null), rule (an RRULE or null), understood:
 * [{kind, text}] for the preview (kind: due, repeat, tag, priority)}. `now` is epoch ms.
 */
export function parseQuickAdd(text, { now = Date.now(), tz = zone() } = {}) {
  const tokens = tokenize(text);
  const today = toWallClock(new Date(now).toISOString(), tz).date;
  const found = { date: null, time: null, rule: null, priority: null, tags: [] };
  const title = [];
  for (let i = 0; i < tokens.length;) {
    const token = tokens[i];
    if (token.literal) {
      title.push(token.text);
      i += 1;
      continue;
    }
    const matched = matchTag(tokens, i, found) || matchPriority(tokens, i, found)
      || (!found.rule && matchRepeat(tokens, i, found, today))
      || (!found.date && matchDate(tokens, i, found, today))
      || (!found.time && matchTime(tokens, i, found));
    if (matched) {
      i += matched;
    } else {
      title.push(token.text);
      i += 1;
    }
  }
  const due = dueOf(found, { now, tz, today });
  const dueAt = due ? toInstant(due.date, due.time, tz) : null;
  const understood = [];
  if (dueAt) understood.push({ kind: 'due', text: dateTimeWords(dueAt, { now, tz }) });
  if (found.rule) understood.push({ kind: 'repeat', text: describe(found.rule.rrule) });
  for (const tag of found.tags) understood.push({ kind: 'tag', text: tag });
  if (found.priority) understood.push({ kind: 'priority', text: priorityNamed(found.priority).label });
  return {
    title: title.join(' ').trim(),
    priority: found.priority,
    tags: found.tags,
    date: due?.date ?? null,
    time: due?.time ?? null,
    dueAt,
    rule: found.rule?.rrule ?? null,
    understood,
  };
}

/** The CreateTaskInput of a parsed line: only what it set; the recurrence in the zone `tz`. */
export function createInput(parsed, tz = zone()) {
  const input = { title: parsed.title };
  if (parsed.priority) input.priority = parsed.priority;
  if (parsed.dueAt) input.dueAt = parsed.dueAt;
  if (parsed.tags.length) input.tags = parsed.tags;
  if (parsed.rule) input.recurrence = { rule: parsed.rule, timezone: tz };
  return input;
}

/** Words, and "quoted parts" as one literal token (without their quotes). */
function tokenize(text) {
  const tokens = [];
  const pattern = /"([^"]*)"|“([^”]*)”|(\S+)/g;
  for (const match of String(text || '').matchAll(pattern)) {
    if (match[3] === undefined) {
      const inside = match[1] ?? match[2];
      if (inside.trim()) tokens.push({ text: inside.trim(), literal: true });
    } else {
      // Trailing commas separate lists ("mon, wed"); other punctuation stays with the word.
      tokens.push({ text: match[3], word: match[3].toLowerCase().replace(/,+$/, '') });
    }
  }
  return tokens;
}

function matchTag(tokens, i, found) {
  const match = /^#([\p{L}\p{N}_\-/.]+?)[.,;:!?]*$/u.exec(tokens[i].text);
  if (!match) return 0;
  const name = match[1];
  if (!found.tags.some((tag) => tag.toLowerCase() === name.toLowerCase())) found.tags.push(name);
  return 1;
}

function matchPriority(tokens, i, found) {
  const match = /^!([a-z]+)$/.exec(wordAt(tokens, i) || '');
  if (!match || !PRIORITY_WORDS[match[1]] || found.priority) return 0;
  found.priority = PRIORITY_WORDS[match[1]];
  return 1;
}

/** Builds the rule {freq, interval, days, monthDay, rrule}. */
function rule(freq, { interval = 1, days = [], monthDay = null } = {}) {
  const parts = [`FREQ=${freq}`];
  if (interval > 1) parts.push(`INTERVAL=${interval}`);
  if (days.length) parts.push(`BYDAY=${days.join(',')}`);
  if (monthDay !== null) parts.push(`BYMONTHDAY=${monthDay}`);
  return { freq, interval, days, monthDay, rrule: parts.join(';') };
}

function matchRepeat(tokens, i, found, today) {
  const single = { daily: 'DAILY', weekly: 'WEEKLY', monthly: 'MONTHLY', yearly: 'YEARLY', annually: 'YEARLY' };
  const word = wordAt(tokens, i);
  if (single[word]) {
    found.rule = rule(single[word]);
    return 1;
  }
  if (word !== 'every') return 0;
  let j = i + 1;
  const next = wordAt(tokens, j);
  if (['weekday', 'weekdays', 'workday', 'workdays'].includes(next)) {
    found.rule = rule('WEEKLY', { days: ['MO', 'TU', 'WE', 'TH', 'FR'] });
    return 2;
  }
  if (['weekend', 'weekends'].includes(next)) {
    found.rule = rule('WEEKLY', { days: ['SA', 'SU'] });
    return 2;
  }
  const list = weekdayListAt(tokens, j);
  if (list) {
    found.rule = rule('WEEKLY', { days: list.days });
    return 1 + list.length;
  }
  const yearly = !found.date && monthAndDayAt(tokens, j, today);
  if (yearly) {
    found.rule = rule('YEARLY');
    found.date = yearly.date;
    return 1 + yearly.length;
  }
  const day = monthDayAt(tokens, j);
  if (day && wordAt(tokens, j) !== 'on') {
    found.rule = rule('MONTHLY', { monthDay: day.monthDay });
    return 1 + day.length;
  }
  let interval = 1;
  if (/^\d{1,3}$/.test(next || '') && Number(next) >= 1) {
    interval = Number(next);
    j += 1;
  } else if (next === 'other') {
    interval = 2;
    j += 1;
  }
  const freq = UNITS[wordAt(tokens, j)];
  // "every 2 week" is tolerated; "every days" is not a repeat.
  if (!freq || (interval === 1 && wordAt(tokens, j).endsWith('s'))) return 0;
  j += 1;
  if (freq === 'WEEKLY' && wordAt(tokens, j) === 'on') {
    const on = weekdayListAt(tokens, j + 1);
    if (on) {
      found.rule = rule(freq, { interval, days: on.days });
      return j + 1 + on.length - i;
    }
  }
  if (freq === 'MONTHLY') {
    const on = monthDayAt(tokens, j);
    if (on && wordAt(tokens, j) === 'on') {
      found.rule = rule(freq, { interval, monthDay: on.monthDay });
      return j + on.length - i;
    }
  }
  found.rule = rule(freq, { interval });
  return j - i;
}

function matchDate(tokens, i, found, today) {
  const date = dateAt(tokens, i, today);
  if (!date) return 0;
  found.date = date.date;
  return date.length;
}

function matchTime(tokens, i, found) {
  const time = timeAt(tokens, i);
  if (!time) return 0;
  found.time = time.time;
  return time.length;
}

/** Whether a series of `r` may start on `date`. */
function startsOn(r, date) {
  if (r.days.length) return r.days.some((code) => JS_DAY[code] === weekday(date));
  if (r.monthDay === -1) return nextDay(date).slice(8) === '01';
  if (r.monthDay !== null) return Number(date.slice(8)) === r.monthDay;
  return true;
}

/** The due date and time the parts found make: {date, time}, or null for none. */
function dueOf(found, { now, tz, today }) {
  const time = found.time || QUICK_ADD_DEFAULT_TIME;
  if (found.date) return { date: found.date, time };
  const notPast = (date) => Date.parse(toInstant(date, time, tz)) >= now;
  if (found.rule) {
    // The first date of the series that is not past (a 31st may be two months away).
    let date = today;
    for (let k = 0; k < 400; k += 1, date = addDays(date, 1)) {
      if (startsOn(found.rule, date) && notPast(date)) return { date, time };
    }
    return null;
  }
  if (found.time) return { date: notPast(today) ? today : nextDay(today), time };
  return null;
}
