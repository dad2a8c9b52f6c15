// Unit tests (no browser) of a task's history in words (history_words.js): each kind, each
// field by the form's label, values in the user's zone, what caused a version, why a restore
// failed; and the instant just before a deletion that a deleted task's history is read at.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { kindWords, changeLines, causeWords, durationWords, recurrenceWords, restoreFailure, versionTime }
  from '../app/history_words.js';
import { ApiError } from '../app/api.js';
import { instantBefore } from '../app/time.js';

// Thursday 10 December 2026, 12:00 in Berlin (11:00 UTC).
const now = Date.parse('2026-12-10T11:00:00Z');
const tz = 'Europe/Berlin';
const texts = (version) => changeLines(version, { now, tz }).map((line) => line.text);

describe('a task\'s history in words', () => {
  it('names each kind of version', () => {
    assert.deepEqual(['CREATED', 'UPDATED', 'COMPLETED', 'REOPENED', 'DELETED', 'RESTORED'].map(kindWords),
      ['Created', 'Edited', 'Completed', 'Reopened', 'Deleted', 'Restored']);
    assert.equal(kindWords('MERGED_AWAY'), 'Merged away', 'a kind this app does not know yet');
  });

  it('says what a first version set, without an old value', () => {
    const created = { kind: 'CREATED', changes: [
      { field: 'title', old: null, new: 'Pay rent' },
      { field: 'priority', old: null, new: 'HIGH' },
      { field: 'dueAt', old: null, new: '2026-12-11T08:00:00Z' },
      { field: 'tags', old: null, new: ['home'] },
    ] };
    assert.deepEqual(texts(created), ['Title: Pay rent', 'Priority: High', 'Due date: tomorrow at 09:00', 'Tags: home']);
  });

  it('says each change by the form\'s label, old then new, "none" for what is not set', () => {
    const edited = { kind: 'UPDATED', changes: [
      { field: 'title', old: 'Pay rent', new: 'Pay the rent' },
      { field: 'description', old: '', new: `Transfer\nbefore the 3rd, ${'and then some more words '.repeat(4)}` },
      { field: 'dueAt', old: '2026-12-11T08:00:00Z', new: null },
      { field: 'tags', old: ['home'], new: ['home', 'money'] },
      { field: 'recurrence', old: null, new: { rule: 'FREQ=WEEKLY;BYDAY=MO', timezone: tz, anchor: 'SCHEDULE' } },
      { field: 'reminders', old: [], new: [{ minutesBeforeDue: 30, at: null, status: 'PENDING' },
        { minutesBeforeDue: null, at: '2026-12-09T07:00:00Z', status: 'FIRED' }] },
    ] };
    assert.deepEqual(texts(edited), [
      'Title: Pay rent → Pay the rent',
      'Description: none → Transfer before the 3rd, and then some more words and then…',
      'Due date: tomorrow at 09:00 → none',
      'Tags: home → home, money',
      'Repeat: none → weekly on Mon',
      'Reminders: none → 30 minutes before due; yesterday at 08:00 (fired)',
    ]);
  });

  it('leaves being done to the kind that says so', () => {
    const completed = { kind: 'COMPLETED', changes: [
      { field: 'completed', old: false, new: true }, { field: 'completedAt', old: null, new: '2026-12-10T10:00:00Z' }] };
    assert.deepEqual(texts(completed), []);
    const edited = { kind: 'UPDATED', changes: [{ field: 'completed', old: false, new: true }] };
    assert.deepEqual(texts(edited), ['Done: no → yes']);
  });

  it('says durations, repeats and times in words, in the user\'s zone', () => {
    assert.deepEqual([0, 1, 30, 60, 90, 1440, 2940].map(durationWords),
      ['0 minutes', '1 minute', '30 minutes', '1 hour', '1 hour 30 minutes', '1 day', '2 days 1 hour']);
    assert.equal(recurrenceWords({ rule: 'FREQ=DAILY', timezone: 'Asia/Tokyo', anchor: 'COMPLETION' }, { tz }),
      'daily, from the completion, in Asia/Tokyo');
    assert.equal(recurrenceWords({ rule: 'FREQ=MONTHLY;BYMONTHDAY=-1', timezone: tz, anchor: 'SCHEDULE' }, { tz }),
      'monthly on the last day');
    assert.equal(versionTime('2026-12-10T09:30:00Z', { now, tz }), 'today at 10:30');
    assert.equal(versionTime('2026-12-10T09:30:00Z', { now, tz: 'America/New_York' }), 'today at 04:30');
  });

  it('names the occurrence a recurrence rule created a task from, while it exists', () => {
    const cause = 'created by the recurrence rule from task 0190-a';
    assert.equal(causeWords(cause, { id: '0190-a', title: 'Water the plants', dueAt: '2026-12-09T08:00:00Z' }, { now, tz }),
      'Created by the recurrence rule from “Water the plants”, due yesterday at 09:00.');
    assert.equal(causeWords(cause, null, { now, tz }),
      'Created by the recurrence rule from an earlier occurrence, deleted since.');
    assert.equal(causeWords('imported from the old server', null), 'Imported from the old server.');
    assert.equal(causeWords(null, null), null, 'the owner\'s own change');
  });

  it('says why a restore failed', () => {
    assert.equal(restoreFailure(new ApiError('task x is not deleted', 'CONFLICT')), 'This task is not deleted any more.');
    assert.match(restoreFailure(new ApiError('task x not found', 'NOT_FOUND')), /^This task no longer exists/);
    assert.equal(restoreFailure(new ApiError('The server cannot be reached (Failed to fetch).', 'NETWORK')),
      'The server cannot be reached (Failed to fetch).');
  });

  it('reads a deleted task one microsecond before its deletion', () => {
    assert.equal(instantBefore('2026-12-10T11:00:00.123456Z'), '2026-12-10T11:00:00.123455Z');
    assert.equal(instantBefore('2026-12-10T11:00:00Z'), '2026-12-10T10:59:59.999999Z');
    assert.equal(instantBefore('2026-12-10T12:00:00.000001+01:00'), '2026-12-10T11:00:00.000000Z');
  });
});
