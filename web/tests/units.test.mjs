// Unit tests of the app's pure modules (no browser): recurrence presets, wall-clock time in a
// zone, and which field an API error names.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ruleOf, presetOf, describe as describeRule } from '../app/recurrence.js';
import { toInstant, toWallClock, nextDay } from '../app/time.js';
import { fieldOf, humanMessage } from '../app/api.js';

describe('recurrence presets', () => {
  it('turn into RRULEs and back', () => {
    const cases = [
      [{ preset: 'daily' }, 'FREQ=DAILY'],
      [{ preset: 'weekdays' }, 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR'],
      [{ preset: 'weekly', days: ['TH', 'MO'] }, 'FREQ=WEEKLY;BYDAY=MO,TH'],
      [{ preset: 'monthly-day', monthDay: 15 }, 'FREQ=MONTHLY;BYMONTHDAY=15'],
      [{ preset: 'monthly-last' }, 'FREQ=MONTHLY;BYMONTHDAY=-1'],
      [{ preset: 'yearly' }, 'FREQ=YEARLY'],
    ];
    for (const [input, rule] of cases) {
      assert.equal(ruleOf(input), rule);
      assert.equal(presetOf(rule).preset, input.preset);
    }
    assert.equal(ruleOf({ preset: 'none' }), null);
  });

  it('call anything else custom and describe it', () => {
    assert.equal(presetOf('FREQ=WEEKLY;INTERVAL=2;BYDAY=MO').preset, 'custom');
    assert.equal(presetOf('FREQ=MONTHLY;BYDAY=1FR').preset, 'custom');
    assert.equal(presetOf('').preset, 'none');
    assert.equal(describeRule('FREQ=WEEKLY;BYDAY=MO,TH'), 'weekly on Mon, Thu');
    assert.equal(describeRule('FREQ=MONTHLY;BYMONTHDAY=-1'), 'monthly on the last day');
    assert.equal(describeRule('FREQ=HOURLY'), 'FREQ=HOURLY');
  });
});

describe('wall-clock time in a zone', () => {
  it('converts both ways across daylight saving time', () => {
    assert.equal(toInstant('2030-03-04', '09:00', 'Europe/Berlin'), '2030-03-04T08:00:00.000Z');
    assert.equal(toInstant('2030-07-04', '09:00', 'Europe/Berlin'), '2030-07-04T07:00:00.000Z');
    assert.equal(toInstant('2030-07-04', '09:00', 'America/New_York'), '2030-07-04T13:00:00.000Z');
    assert.equal(toInstant('2030-01-01', '00:30', 'UTC'), '2030-01-01T00:30:00.000Z');
    assert.deepEqual(toWallClock('2030-03-04T08:00:00Z', 'Europe/Berlin'), { date: '2030-03-04', time: '09:00' });
    assert.deepEqual(toWallClock('2030-03-31T23:30:00Z', 'Asia/Kolkata'), { date: '2030-04-01', time: '05:00' });
  });

  it('resolves a time skipped by the spring jump without failing', () => {
    // 02:30 does not exist in Berlin on 31 March 2030.
    const instant = toInstant('2030-03-31', '02:30', 'Europe/Berlin');
    assert.match(instant, /^2030-03-31T0[01]:30:00.000Z$/);
  });

  it('steps over month and year ends', () => {
    assert.equal(nextDay('2030-02-28'), '2030-03-01');
    assert.equal(nextDay('2030-12-31'), '2031-01-01');
  });
});

describe('API error messages', () => {
  it('name the field the form shows them at', () => {
    assert.equal(fieldOf('input.title must not be empty'), 'title');
    assert.equal(fieldOf('input.recurrence.rule: unknown FREQ'), 'recurrence.rule');
    assert.equal(fieldOf('input.recurrence requires input.dueAt: the due date starts the series'), 'recurrence');
    assert.equal(fieldOf('input.reminders[1] needs exactly one of minutesBeforeDue and at'), 'reminders');
    assert.equal(fieldOf('name must not be empty'), 'name');
    assert.equal(fieldOf('Unknown field "x"'), null);
    assert.equal(humanMessage('input.title must not be empty'), 'Title must not be empty');
  });
});
