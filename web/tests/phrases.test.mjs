// Unit tests (no browser) of the words the app says dates and notifications in (phrases.js):
// relative days in the user's zone, across midnight and daylight saving time, and the texts of
// reminder notifications built from what the server writes.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dateTimeWords, dayWords, dayHeading, shortDate, instantIn, notificationText } from '../app/phrases.js';

// Thursday 10 December 2026, 12:00 in Berlin (11:00 UTC).
const now = Date.parse('2026-12-10T11:00:00Z');
const tz = 'Europe/Berlin';

describe('dates in words', () => {
  it('say today, tomorrow and yesterday, else the weekday, day and month', () => {
    assert.equal(dateTimeWords('2026-12-10T09:00:00Z', { now, tz }), 'today at 10:00');
    assert.equal(dateTimeWords('2026-12-11T08:00:00Z', { now, tz }), 'tomorrow at 09:00');
    assert.equal(dateTimeWords('2026-12-09T20:30:00Z', { now, tz }), 'yesterday at 21:30');
    assert.equal(dateTimeWords('2026-12-14T09:00:00Z', { now, tz }), 'Mon 14 Dec at 10:00');
    assert.equal(dateTimeWords('2027-01-04T09:00:00Z', { now, tz }), 'Mon 4 Jan 2027 at 10:00', 'another year');
    assert.equal(dateTimeWords('2026-11-02T09:00:00Z', { now, tz }), 'Mon 2 Nov at 10:00', 'past days too');
  });

  it('count days in the user\'s zone, not in UTC nor the browser\'s', () => {
    // 23:30 UTC on the 10th is already the 11th in Berlin, and still the 10th in New York.
    assert.equal(dateTimeWords('2026-12-10T23:30:00Z', { now, tz }), 'tomorrow at 00:30');
    assert.equal(dateTimeWords('2026-12-10T23:30:00Z', { now, tz: 'America/New_York' }), 'today at 18:30');
    // 01:00 UTC on the 11th: Auckland (+13) is on the 11th at 14:00, with "now" its 11th at 00:00.
    assert.equal(dateTimeWords('2026-12-11T01:00:00Z', { now, tz: 'Pacific/Auckland' }), 'today at 14:00');
  });

  it('keep the wall-clock time across a daylight saving change', () => {
    // Sunday 29 March 2026 in Berlin: 01:59 CET, then 03:00 CEST.
    const saturday = Date.parse('2026-03-28T12:00:00Z');
    assert.equal(dateTimeWords('2026-03-29T00:30:00Z', { now: saturday, tz }), 'tomorrow at 01:30');
    assert.equal(dateTimeWords('2026-03-29T07:00:00Z', { now: saturday, tz }), 'tomorrow at 09:00');
    assert.equal(dateTimeWords('2026-03-30T07:00:00Z', { now: saturday, tz }), 'Mon 30 Mar at 09:00');
  });

  it('head the days of a week', () => {
    assert.equal(dayWords('2026-12-10', '2026-12-10'), 'today');
    assert.equal(dayHeading('2026-12-10', '2026-12-10'), 'Today · Thu 10 Dec');
    assert.equal(dayHeading('2026-12-11', '2026-12-10'), 'Tomorrow · Fri 11 Dec');
    assert.equal(dayHeading('2026-12-12', '2026-12-10'), 'Sat 12 Dec');
    assert.equal(dayHeading('2027-01-01', '2026-12-31'), 'Tomorrow · Fri 1 Jan 2027');
    assert.equal(shortDate('2028-02-29', '2028-01-01'), 'Tue 29 Feb');
  });
});

describe('reminder notifications', () => {
  const reminder = (fields) => ({ id: 'n1', kind: 'REMINDER_DUE', title: 'Pay rent', body: '', createdAt: '2026-12-10T09:00:00Z',
    readAt: null, task: { id: 't1', title: 'Pay rent', dueAt: '2026-12-10T09:00:00Z' }, ...fields });

  it('say when the task is due in the user\'s zone and in words, not the server\'s UTC', () => {
    assert.deepEqual(notificationText(reminder({ body: 'Due at 2026-12-10T09:00:00Z' }), { now, tz }),
      { title: 'Pay rent', body: 'Due today at 10:00' });
    assert.deepEqual(notificationText(reminder({ body: 'Due at 2026-12-11T08:00:00Z' }), { now, tz }),
      { title: 'Pay rent', body: 'Due tomorrow at 09:00' });
    assert.deepEqual(notificationText(reminder({ body: 'Due at 2026-12-14T09:00:00Z' }), { now, tz }),
      { title: 'Pay rent', body: 'Due Mon 14 Dec at 10:00' });
    assert.deepEqual(notificationText(reminder({ kind: 'REMINDER_MISSED', body: 'Missed: was due at 2026-12-09T09:00:00Z' }),
      { now, tz }), { title: 'Pay rent', body: 'Missed: was due yesterday at 10:00' });
  });

  it('say what a reminder on a task without a due date is', () => {
    const undated = { id: 't2', title: 'Call Anna', dueAt: null };
    assert.deepEqual(notificationText(reminder({ title: 'Call Anna', body: 'Due at 2026-12-10T10:45:00Z', task: undated }),
      { now, tz }), { title: 'Reminder: Call Anna', body: '' });
    assert.deepEqual(notificationText(reminder({ kind: 'REMINDER_MISSED', title: 'Call Anna',
      body: 'Missed: was due at 2026-12-10T10:45:00Z', task: undated }), { now, tz }),
    { title: 'Reminder: Call Anna', body: 'Missed: it was set for today at 11:45' });
  });

  it('use the times the notification carries, also once the task is deleted', () => {
    assert.deepEqual(notificationText(reminder({ dueAt: '2026-12-11T08:00:00Z', remindAt: '2026-12-11T07:30:00Z',
      body: 'Due at 2026-12-11T08:00:00Z', task: null }), { now, tz }), { title: 'Pay rent', body: 'Due tomorrow at 09:00' });
    assert.deepEqual(notificationText(reminder({ title: 'Call Anna', dueAt: null, remindAt: '2026-12-10T10:45:00Z',
      body: 'Due at 2026-12-10T10:45:00Z', task: null }), { now, tz }), { title: 'Reminder: Call Anna', body: '' },
    'a reminder on a task that had no due date says so even after the task is gone');
    assert.deepEqual(notificationText(reminder({ kind: 'REMINDER_MISSED', dueAt: '2026-12-09T09:00:00Z',
      remindAt: '2026-12-09T08:30:00Z', body: 'Something else' }), { now, tz }),
    { title: 'Pay rent', body: 'Missed: was due yesterday at 10:00' }, 'the fields win over the text');
  });

  it('fall back to the task\'s due date, then to the server\'s words', () => {
    assert.deepEqual(notificationText(reminder({ body: 'Something new' }), { now, tz }),
      { title: 'Pay rent', body: 'Due today at 10:00' }, 'the task says when');
    assert.deepEqual(notificationText(reminder({ body: 'Something new', task: null }), { now, tz }),
      { title: 'Pay rent', body: 'Something new' }, 'the task is deleted: as written');
    assert.deepEqual(notificationText(reminder({ body: 'Due at 2026-12-14T09:00:00Z', task: null }), { now, tz }),
      { title: 'Pay rent', body: 'Due Mon 14 Dec at 10:00' });
  });

  it('find an RFC 3339 instant in a text, with or without seconds and offset', () => {
    assert.equal(instantIn('Due at 2026-12-10T09:00:00Z'), '2026-12-10T09:00:00Z');
    assert.equal(instantIn('at 2026-12-10T09:00:00.123456+01:00.'), '2026-12-10T09:00:00.123456+01:00');
    assert.equal(instantIn('Due at 2026-12-10 09:00'), null);
    assert.equal(instantIn(null), null);
  });
});
