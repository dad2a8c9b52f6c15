// Unit tests (no browser) of the quick add parser (quick_add.js): every date, time, repeat, tag
// and priority form its comment documents, what it leaves in the title, and the moment each
// line becomes in the user's zone. The browser tests (habits.test.mjs) send its rules to the
// real API.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseQuickAdd, createInput } from '../app/quick_add.js';

// Thursday 10 December 2026, 12:00 in Berlin (11:00 UTC).
const now = Date.parse('2026-12-10T11:00:00Z');
const tz = 'Europe/Berlin';
const parse = (text, options = {}) => parseQuickAdd(text, { now, tz, ...options });
/** The due date and time, the rule and the title of `text`, for compact comparisons. */
const read = (text, options) => {
  const p = parse(text, options);
  return [p.date && `${p.date} ${p.time}`, p.rule, p.title];
};

describe('quick add: the example line', () => {
  it('reads a monthly rent payment with its time, tag and priority', () => {
    const p = parse('Pay rent every month on the 1st at 9am #home !high');
    assert.equal(p.title, 'Pay rent');
    assert.equal(p.rule, 'FREQ=MONTHLY;BYMONTHDAY=1');
    assert.equal(p.dueAt, '2027-01-01T08:00:00.000Z', 'the next 1st, 09:00 in Berlin');
    assert.deepEqual(p.tags, ['home']);
    assert.equal(p.priority, 'HIGH');
    assert.deepEqual(p.understood, [
      { kind: 'due', text: 'Fri 1 Jan 2027 at 09:00' },
      { kind: 'repeat', text: 'monthly on day 1' },
      { kind: 'tag', text: 'home' },
      { kind: 'priority', text: 'High' },
    ]);
    assert.deepEqual(createInput(p, tz), {
      title: 'Pay rent', priority: 'HIGH', dueAt: '2027-01-01T08:00:00.000Z', tags: ['home'],
      recurrence: { rule: 'FREQ=MONTHLY;BYMONTHDAY=1', timezone: tz },
    });
  });

  it('sends only what the line set', () => {
    assert.deepEqual(createInput(parse('Read a book')), { title: 'Read a book' });
  });
});

describe('quick add: dates', () => {
  it('reads today, tomorrow and weekday names (the next one after today)', () => {
    assert.deepEqual(read('Call mum today'), ['2026-12-10 09:00', null, 'Call mum']);
    assert.deepEqual(read('Call mum tomorrow'), ['2026-12-11 09:00', null, 'Call mum']);
    assert.deepEqual(read('Call mum friday'), ['2026-12-11 09:00', null, 'Call mum']);
    assert.deepEqual(read('Call mum Thursday'), ['2026-12-17 09:00', null, 'Call mum'], 'not today: a week on');
    assert.deepEqual(read('Call mum on mon'), ['2026-12-14 09:00', null, 'Call mum'], 'an abbreviation after on');
    assert.deepEqual(read('Report due fri'), ['2026-12-11 09:00', null, 'Report']);
    assert.deepEqual(read('Finish by wednesday'), ['2026-12-16 09:00', null, 'Finish']);
  });

  it('reads next monday as that day in next week, and next week and next month', () => {
    assert.deepEqual(read('Plan next monday'), ['2026-12-14 09:00', null, 'Plan']);
    assert.deepEqual(read('Plan next friday'), ['2026-12-18 09:00', null, 'Plan'], 'not tomorrow');
    assert.deepEqual(read('Plan next sun'), ['2026-12-20 09:00', null, 'Plan']);
    assert.deepEqual(read('Plan next week'), ['2026-12-14 09:00', null, 'Plan']);
    assert.deepEqual(read('Plan next month'), ['2027-01-01 09:00', null, 'Plan']);
    // On a Sunday, next week starts the next day.
    assert.deepEqual(read('Plan next monday', { now: Date.parse('2026-12-13T11:00:00Z') }), ['2026-12-14 09:00', null, 'Plan']);
  });

  it('reads days, weeks and months from now', () => {
    assert.deepEqual(read('Trip in 3 days'), ['2026-12-13 09:00', null, 'Trip']);
    assert.deepEqual(read('Trip in 2 weeks'), ['2026-12-24 09:00', null, 'Trip']);
    assert.deepEqual(read('Trip in a month'), ['2027-01-10 09:00', null, 'Trip']);
    assert.deepEqual(read('Renew in 3 months', { now: Date.parse('2026-11-30T11:00:00Z') }),
      ['2027-02-28 09:00', null, 'Renew'], 'the month\'s last day when it has no 30th');
  });

  it('reads month names with a day, either way round, with or without a year', () => {
    assert.deepEqual(read('Presents dec 24'), ['2026-12-24 09:00', null, 'Presents']);
    assert.deepEqual(read('Presents 24 December'), ['2026-12-24 09:00', null, 'Presents']);
    assert.deepEqual(read('Presents on december 24th'), ['2026-12-24 09:00', null, 'Presents']);
    assert.deepEqual(read('Taxes may 31'), ['2027-05-31 09:00', null, 'Taxes'], 'past this year: next year');
    assert.deepEqual(read('Taxes jan 5 2028'), ['2028-01-05 09:00', null, 'Taxes']);
    assert.deepEqual(read('Leap feb 29'), ['2028-02-29 09:00', null, 'Leap'], 'the next year that has one');
    assert.deepEqual(read('Nothing on april 31'), [null, null, 'Nothing on april 31'], 'no such day');
  });

  it('reads numbers as day/month, and ISO dates', () => {
    assert.deepEqual(read('Dentist 24/12'), ['2026-12-24 09:00', null, 'Dentist']);
    assert.deepEqual(read('Dentist 3/1'), ['2027-01-03 09:00', null, 'Dentist'], '3 January');
    assert.deepEqual(read('Dentist 24/12/2027'), ['2027-12-24 09:00', null, 'Dentist']);
    assert.deepEqual(read('Dentist 2027-03-01'), ['2027-03-01 09:00', null, 'Dentist']);
    assert.deepEqual(read('Dentist 12/24'), [null, null, 'Dentist 12/24'], 'no 24th month');
    assert.deepEqual(read('Payday on the 15th'), ['2026-12-15 09:00', null, 'Payday']);
    assert.deepEqual(read('Payday on the 5th'), ['2027-01-05 09:00', null, 'Payday']);
  });
});

describe('quick add: times', () => {
  it('reads 12-hour and 24-hour times, with or without at', () => {
    assert.deepEqual(read('Call tomorrow at 9am'), ['2026-12-11 09:00', null, 'Call']);
    assert.deepEqual(read('Call tomorrow 9:30pm'), ['2026-12-11 21:30', null, 'Call']);
    assert.deepEqual(read('Call tomorrow at 9 pm'), ['2026-12-11 21:00', null, 'Call']);
    assert.deepEqual(read('Call tomorrow 21:00'), ['2026-12-11 21:00', null, 'Call']);
    assert.deepEqual(read('Call tomorrow at 12am'), ['2026-12-11 00:00', null, 'Call'], 'midnight');
    assert.deepEqual(read('Call tomorrow at 12pm'), ['2026-12-11 12:00', null, 'Call']);
    assert.deepEqual(read('Lunch tomorrow at noon'), ['2026-12-11 12:00', null, 'Lunch']);
    assert.deepEqual(read('at 9am call tomorrow'), ['2026-12-11 09:00', null, 'call'], 'in any order');
  });

  it('puts a time without a date today while it is ahead, else tomorrow', () => {
    assert.deepEqual(read('Call at 3pm'), ['2026-12-10 15:00', null, 'Call']);
    assert.deepEqual(read('Call at 9am'), ['2026-12-11 09:00', null, 'Call'], '09:00 has passed at 12:00');
    assert.equal(parse('Call at 3pm').dueAt, '2026-12-10T14:00:00.000Z');
  });

  it('leaves bare numbers and impossible times in the title', () => {
    assert.deepEqual(read('Meet at 5'), [null, null, 'Meet at 5']);
    assert.deepEqual(read('Buy 2 eggs'), [null, null, 'Buy 2 eggs']);
    assert.deepEqual(read('Call at 13pm'), [null, null, 'Call at 13pm']);
    assert.deepEqual(read('Call at 24:00'), [null, null, 'Call at 24:00']);
  });

  it('is in the user\'s zone, across a daylight saving change', () => {
    // Saturday 28 March 2026; Berlin moves from +01:00 to +02:00 that night.
    const saturday = Date.parse('2026-03-28T11:00:00Z');
    assert.equal(parse('Run tomorrow at 9am', { now: saturday }).dueAt, '2026-03-29T07:00:00.000Z');
    assert.equal(parse('Run today at 9pm', { now: saturday }).dueAt, '2026-03-28T20:00:00.000Z');
    assert.equal(parse('Run tomorrow at 9am', { now: saturday, tz: 'America/New_York' }).dueAt,
      '2026-03-29T13:00:00.000Z');
    // Late evening in New York is already tomorrow in UTC: "today" is New York's.
    const evening = Date.parse('2026-12-11T03:00:00Z');
    assert.equal(parse('Call today at 11pm', { now: evening, tz: 'America/New_York' }).dueAt, '2026-12-11T04:00:00.000Z');
  });
});

describe('quick add: repeats', () => {
  const rule = (text, options) => parse(text, options).rule;

  it('reads every day, week, month and year, with intervals', () => {
    assert.equal(rule('Stretch every day'), 'FREQ=DAILY');
    assert.equal(rule('Stretch daily'), 'FREQ=DAILY');
    assert.equal(rule('Stretch every 3 days'), 'FREQ=DAILY;INTERVAL=3');
    assert.equal(rule('Stretch every other day'), 'FREQ=DAILY;INTERVAL=2');
    assert.equal(rule('Review every week'), 'FREQ=WEEKLY');
    assert.equal(rule('Review weekly'), 'FREQ=WEEKLY');
    assert.equal(rule('Review every 2 weeks'), 'FREQ=WEEKLY;INTERVAL=2');
    assert.equal(rule('Backup every month'), 'FREQ=MONTHLY');
    assert.equal(rule('Backup monthly'), 'FREQ=MONTHLY');
    assert.equal(rule('Backup every 3 months'), 'FREQ=MONTHLY;INTERVAL=3');
    assert.equal(rule('Taxes every year'), 'FREQ=YEARLY');
    assert.equal(rule('Taxes yearly'), 'FREQ=YEARLY');
    assert.equal(rule('Taxes annually'), 'FREQ=YEARLY');
    assert.equal(rule('Taxes every 2 years'), 'FREQ=YEARLY;INTERVAL=2');
  });

  it('reads weekdays, weekends and named days', () => {
    assert.equal(rule('Standup every weekday'), 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR');
    assert.equal(rule('Hike every weekend'), 'FREQ=WEEKLY;BYDAY=SA,SU');
    assert.equal(rule('Gym every monday'), 'FREQ=WEEKLY;BYDAY=MO');
    assert.equal(rule('Gym every fri, mon and wed'), 'FREQ=WEEKLY;BYDAY=MO,WE,FR', 'in the week\'s order');
    assert.equal(rule('Gym every week on tue and thu'), 'FREQ=WEEKLY;BYDAY=TU,TH');
    assert.equal(rule('Gym every 2 weeks on sat'), 'FREQ=WEEKLY;INTERVAL=2;BYDAY=SA');
  });

  it('reads days of the month, the last one included, and a yearly date', () => {
    assert.equal(rule('Rent every month on the 1st'), 'FREQ=MONTHLY;BYMONTHDAY=1');
    assert.equal(rule('Rent every month on day 15'), 'FREQ=MONTHLY;BYMONTHDAY=15');
    assert.equal(rule('Rent every 2 months on the 3rd'), 'FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=3');
    assert.equal(rule('Rent every 22nd'), 'FREQ=MONTHLY;BYMONTHDAY=22');
    assert.equal(rule('Rent every 1st of the month'), 'FREQ=MONTHLY;BYMONTHDAY=1');
    assert.equal(rule('Invoice every month on the last day'), 'FREQ=MONTHLY;BYMONTHDAY=-1');
    assert.equal(rule('Invoice every last day of the month'), 'FREQ=MONTHLY;BYMONTHDAY=-1');
    assert.deepEqual(read('Birthday every dec 24'), ['2026-12-24 09:00', 'FREQ=YEARLY', 'Birthday']);
    assert.deepEqual(read('Birthday every 3 march'), ['2027-03-03 09:00', 'FREQ=YEARLY', 'Birthday']);
  });

  it('starts a series on its first date that is not past', () => {
    assert.deepEqual(read('Stretch every day at 7pm'), ['2026-12-10 19:00', 'FREQ=DAILY', 'Stretch']);
    assert.deepEqual(read('Stretch every day at 7am'), ['2026-12-11 07:00', 'FREQ=DAILY', 'Stretch'], '07:00 has passed');
    assert.deepEqual(read('Gym every monday'), ['2026-12-14 09:00', 'FREQ=WEEKLY;BYDAY=MO', 'Gym']);
    assert.deepEqual(read('Gym every thursday at 6pm'), ['2026-12-10 18:00', 'FREQ=WEEKLY;BYDAY=TH', 'Gym'], 'today, later');
    assert.deepEqual(read('Standup every weekday at 9:15'), ['2026-12-11 09:15', 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR', 'Standup']);
    assert.deepEqual(read('Invoice every month on the last day'), ['2026-12-31 09:00', 'FREQ=MONTHLY;BYMONTHDAY=-1', 'Invoice']);
    assert.deepEqual(read('Rent every 31st', { now: Date.parse('2027-02-01T11:00:00Z') }),
      ['2027-03-31 09:00', 'FREQ=MONTHLY;BYMONTHDAY=31', 'Rent'], 'February has none');
    assert.deepEqual(read('Review every 2 weeks starting'), ['2026-12-11 09:00', 'FREQ=WEEKLY;INTERVAL=2', 'Review starting'],
      'a series on any day starts tomorrow once 09:00 is past');
  });

  it('takes a date given with a repeat as the start of the series', () => {
    assert.deepEqual(read('Review every week from tomorrow at 10:00'), ['2026-12-11 10:00', 'FREQ=WEEKLY', 'Review']);
    assert.deepEqual(read('Gym every monday starting jan 4'), ['2027-01-04 09:00', 'FREQ=WEEKLY;BYDAY=MO', 'Gym']);
  });

  it('describes the rule in the preview', () => {
    const repeat = (text) => parse(text).understood.find((u) => u.kind === 'repeat').text;
    assert.equal(repeat('a every 2 weeks on sat'), 'every 2 weeks on Sat');
    assert.equal(repeat('a every weekday'), 'every weekday');
    assert.equal(repeat('a every 3 months'), 'every 3 months');
    assert.equal(repeat('a every mon and thu'), 'weekly on Mon, Thu');
  });
});

describe('quick add: tags, priority and the title', () => {
  it('reads tags once each, whatever their case, without trailing punctuation', () => {
    const p = parse('Fix the bike #home #Garage, #home #side-project.');
    assert.deepEqual(p.tags, ['home', 'Garage', 'side-project']);
    assert.equal(p.title, 'Fix the bike');
    assert.deepEqual(parse('Ünïcode #café').tags, ['café']);
    assert.equal(parse('Issue # 5').title, 'Issue # 5', 'a lone # is a word');
  });

  it('reads the priorities the API has', () => {
    for (const [word, name] of [['!low', 'LOW'], ['!medium', 'MEDIUM'], ['!med', 'MEDIUM'], ['!high', 'HIGH'],
      ['!urgent', 'URGENT'], ['!URGENT', 'URGENT'], ['!none', 'NONE']]) {
      assert.equal(parse(`Task ${word}`).priority, name, word);
    }
    assert.equal(parse('Task !important').priority, null);
    assert.equal(parse('Task !important').title, 'Task !important');
    assert.equal(parse('Wow!').title, 'Wow!');
  });

  it('keeps unknown words, a second date or priority, and quoted words in the title', () => {
    assert.deepEqual(read('Call the 3rd floor'), [null, null, 'Call the 3rd floor'], '"the 15th" needs an "on"');
    assert.deepEqual(read('Buy sun cream'), [null, null, 'Buy sun cream'], 'sun alone is a word');
    assert.deepEqual(read('Watch every episode'), [null, null, 'Watch every episode']);
    assert.deepEqual(read('Move meeting tomorrow to friday'), ['2026-12-11 09:00', null, 'Move meeting to friday']);
    const p = parse('Task !high !low');
    assert.equal(p.priority, 'HIGH');
    assert.equal(p.title, 'Task !low');
    assert.deepEqual(read('"Tomorrow never dies" on dvd friday'), ['2026-12-11 09:00', null, 'Tomorrow never dies on dvd']);
    assert.deepEqual(read('Read “Monday morning” today'), ['2026-12-10 09:00', null, 'Read Monday morning']);
  });

  it('may leave an empty title for the API to refuse', () => {
    const p = parse('tomorrow at 9am #home');
    assert.equal(p.title, '');
    assert.equal(createInput(p).title, '');
    assert.deepEqual(parse('').understood, []);
  });
});
