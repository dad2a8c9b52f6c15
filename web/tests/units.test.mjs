// Unit tests of the app's pure modules (no browser): recurrence presets, wall-clock time in a
// zone, which field an API error names and in which words, the task list's state in the address
// and the filters of its smart views, and the encodings of the OpenID Connect sign-in.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ruleOf, presetOf, describe as describeRule } from '../app/recurrence.js';
import { toInstant, toWallClock, nextDay, formatDateTime, setZone, zone, browserZone, isKnownZone, zoneSuggestions }
  from '../app/time.js';
import { ApiError, formField, fieldLabel, humanMessage, pathIndex, withoutPath } from '../app/api.js';
import { defaultState, stateFromHash, hashOf, hasListState, viewFilter, buildFilter, buildSort, groupByDay, untilNextDay }
  from '../app/task_views.js';
import { base64url, randomValue, codeChallenge, jwtClaims, isCallback, checkDiscovery } from '../app/oidc.js';

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

  it('describe intervals, days and days of the month beyond the presets in words', () => {
    assert.equal(describeRule('FREQ=WEEKLY;INTERVAL=2;BYDAY=MO'), 'every 2 weeks on Mon');
    assert.equal(describeRule('FREQ=DAILY;INTERVAL=3'), 'every 3 days');
    assert.equal(describeRule('FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=-1'), 'every 2 months on the last day');
    assert.equal(describeRule('FREQ=MONTHLY'), 'every month');
    assert.equal(describeRule('FREQ=MONTHLY;BYDAY=1FR'), 'FREQ=MONTHLY;BYDAY=1FR', 'an ordinal weekday: as written');
    assert.equal(describeRule('FREQ=WEEKLY;INTERVAL=0'), 'FREQ=WEEKLY;INTERVAL=0');
    assert.equal(describeRule('FREQ=DAILY;COUNT=3'), 'FREQ=DAILY;COUNT=3');
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

  it('converts around the Europe/London changes (01:00 UTC, last Sundays of March and October)', () => {
    const tz = 'Europe/London';
    assert.equal(toInstant('2030-03-31', '00:59', tz), '2030-03-31T00:59:00.000Z', 'GMT before the jump');
    assert.equal(toInstant('2030-03-31', '03:00', tz), '2030-03-31T02:00:00.000Z', 'BST after it');
    // 01:00 to 01:59 do not exist: counted in GMT, they land as far after the jump.
    assert.equal(toInstant('2030-03-31', '01:30', tz), '2030-03-31T01:30:00.000Z');
    assert.deepEqual(toWallClock('2030-03-31T01:30:00Z', tz), { date: '2030-03-31', time: '02:30' });
    // 01:00 to 01:59 happen twice in October: the earlier (BST) one is meant.
    assert.equal(toInstant('2030-10-27', '01:30', tz), '2030-10-27T00:30:00.000Z');
    assert.equal(toInstant('2030-10-27', '00:59', tz), '2030-10-26T23:59:00.000Z');
    assert.equal(toInstant('2030-10-27', '02:00', tz), '2030-10-27T02:00:00.000Z');
    assert.deepEqual(toWallClock('2030-10-27T00:30:00Z', tz), { date: '2030-10-27', time: '01:30' });
    assert.deepEqual(toWallClock('2030-10-27T01:30:00Z', tz), { date: '2030-10-27', time: '01:30' });
    assert.equal(toInstant('2030-07-01', '12:00', tz), '2030-07-01T11:00:00.000Z');
    assert.equal(toInstant('2030-12-01', '12:00', tz), '2030-12-01T12:00:00.000Z');
  });

  it('converts around the America/New_York changes (02:00 local, March and November)', () => {
    const tz = 'America/New_York';
    assert.equal(toInstant('2030-03-10', '01:59', tz), '2030-03-10T06:59:00.000Z', 'EST before the jump');
    assert.equal(toInstant('2030-03-10', '02:30', tz), '2030-03-10T07:30:00.000Z', 'skipped: 03:30 EDT');
    assert.deepEqual(toWallClock('2030-03-10T07:30:00Z', tz), { date: '2030-03-10', time: '03:30' });
    assert.equal(toInstant('2030-03-10', '03:00', tz), '2030-03-10T07:00:00.000Z', 'EDT after it');
    assert.equal(toInstant('2030-11-03', '01:30', tz), '2030-11-03T05:30:00.000Z', 'twice: the EDT one');
    assert.equal(toInstant('2030-11-03', '02:00', tz), '2030-11-03T07:00:00.000Z', 'EST after it');
    assert.equal(toInstant('2030-11-02', '23:30', tz), '2030-11-03T03:30:00.000Z', 'the evening before');
    // Across midnight UTC: late evening in New York is the next day in UTC, and back.
    assert.equal(toInstant('2030-12-31', '22:00', tz), '2031-01-01T03:00:00.000Z');
    assert.deepEqual(toWallClock('2031-01-01T03:00:00Z', tz), { date: '2030-12-31', time: '22:00' });
  });

  it('converts around the Pacific/Auckland changes (southern hemisphere, +12/+13)', () => {
    const tz = 'Pacific/Auckland';
    // Summer time ends on Sunday 7 April 2030 at 03:00 NZDT (14:00 UTC the day before).
    assert.equal(toInstant('2030-04-07', '01:59', tz), '2030-04-06T12:59:00.000Z', 'NZDT');
    assert.equal(toInstant('2030-04-07', '02:30', tz), '2030-04-06T13:30:00.000Z', 'twice: the NZDT one');
    assert.equal(toInstant('2030-04-07', '03:00', tz), '2030-04-06T15:00:00.000Z', 'NZST');
    // It starts on Sunday 29 September 2030 at 02:00 NZST: 02:00 to 02:59 do not exist.
    assert.equal(toInstant('2030-09-29', '01:59', tz), '2030-09-28T13:59:00.000Z', 'NZST');
    assert.equal(toInstant('2030-09-29', '02:30', tz), '2030-09-28T14:30:00.000Z', 'skipped: 03:30 NZDT');
    assert.equal(toInstant('2030-09-29', '03:00', tz), '2030-09-28T14:00:00.000Z', 'NZDT');
    // The date differs from UTC's: 09:00 on 1 January is still 31 December in UTC.
    assert.equal(toInstant('2031-01-01', '09:00', tz), '2030-12-31T20:00:00.000Z');
    assert.deepEqual(toWallClock('2030-12-31T20:00:00Z', tz), { date: '2031-01-01', time: '09:00' });
  });

  it('round-trips every quarter hour of the days around each change', () => {
    const changes = {
      'Europe/London': ['2030-03-31T01:00:00Z', '2030-10-27T01:00:00Z'],
      'America/New_York': ['2030-03-10T07:00:00Z', '2030-11-03T06:00:00Z'],
      'Pacific/Auckland': ['2030-04-06T14:00:00Z', '2030-09-28T14:00:00Z'],
    };
    for (const [tz, instants] of Object.entries(changes)) {
      const start = (iso) => Date.parse(iso) - 36 * 3600000;
      for (let ms = start(instants[0]), n = 0; n < 2 * 72 * 4; ms += 15 * 60000, n += 1) {
        if (n === 72 * 4) ms = start(instants[1]);
        const iso = new Date(ms).toISOString();
        const wall = toWallClock(iso, tz);
        const back = toInstant(wall.date, wall.time, tz);
        // A repeated hour maps back to its first occurrence: at most an hour earlier.
        const diff = ms - new Date(back).getTime();
        assert.ok(diff === 0 || diff === 3600000, `${tz} ${iso} -> ${wall.date} ${wall.time} -> ${back}`);
        assert.deepEqual(toWallClock(back, tz), wall);
      }
    }
  });

  it('uses the user\'s zone once set, and formats in it', () => {
    assert.equal(zone(), browserZone(), 'the browser\'s zone until the setting is known');
    assert.equal(setZone('America/New_York'), 'America/New_York');
    assert.equal(toInstant('2030-07-04', '09:00'), '2030-07-04T13:00:00.000Z');
    assert.match(formatDateTime('2030-03-04T08:00:00Z'), /03:00/);
    assert.match(formatDateTime('2030-03-04T08:00:00Z', 'Europe/Berlin'), /09:00/);
    assert.equal(setZone('Mars/Olympus'), browserZone(), 'a zone this browser does not know falls back');
    setZone(null);
    assert.equal(isKnownZone('Pacific/Auckland'), true);
    assert.equal(isKnownZone(''), false);
    const zones = zoneSuggestions();
    assert.equal(zones[0], 'UTC');
    assert.ok(zones.includes('America/New_York') && zones.includes('Pacific/Auckland'));
    assert.equal(new Set(zones).size, zones.length, 'no zone twice');
  });

  it('steps over month and year ends', () => {
    assert.equal(nextDay('2030-02-28'), '2030-03-01');
    assert.equal(nextDay('2030-12-31'), '2031-01-01');
  });
});

describe('API errors', () => {
  it('are placed by extensions.field, not by their message', () => {
    assert.equal(formField('input.title'), 'title');
    assert.equal(formField('input.recurrence.rule'), 'recurrence.rule');
    assert.equal(formField('input.reminders[1]'), 'reminders');
    assert.equal(formField('filter.or[1].dueBefore'), 'filter.or.dueBefore');
    assert.equal(formField('name'), 'name');
    assert.equal(formField(null), null);
    const e = new ApiError('input.reminders[1] needs exactly one of minutesBeforeDue and at', 'BAD_USER_INPUT', 'input.reminders[1]');
    assert.equal(e.field, 'reminders');
    assert.equal(pathIndex(e.path), 1);
    assert.equal(pathIndex('input.title'), null);
  });

  it('lose the input path they start with where they are shown at their field', () => {
    assert.equal(withoutPath('input.timezone: unknown time zone "Mars/Olympus"', 'input.timezone'), 'unknown time zone "Mars/Olympus"');
    assert.equal(withoutPath('input.webhookSecret must be 16 to 256 characters long', 'input.webhookSecret'), ' must be 16 to 256 characters long');
    assert.equal(withoutPath('Something else', 'input.title'), null);
    assert.equal(humanMessage('input.title must not be empty'), 'Title must not be empty');
  });

  it('call the fields by the labels people see on the form', () => {
    assert.equal(fieldLabel('input.dueAt'), 'Due date');
    assert.equal(fieldLabel('input.recurrence.rule'), 'Rule');
    assert.equal(fieldLabel('input.reminders[1]'), 'Reminder 2');
    assert.equal(fieldLabel('input.reminders[0].at'), 'Reminder 1: time');
    assert.equal(fieldLabel('input.webhookUrl'), 'Webhook URL');
    assert.equal(fieldLabel('input.somethingNew'), null);
    assert.equal(humanMessage('input.dueAt must be between 1000-01-01T00:00:00Z and 9000-12-31T23:59:59Z, not 9999-01-01T00:00:00Z'),
      'Due date must be between 1000-01-01T00:00:00Z and 9000-12-31T23:59:59Z, not 9999-01-01T00:00:00Z');
    assert.equal(humanMessage('input.recurrence requires input.dueAt: the due date starts the series'),
      'Repeat requires “Due date”: the due date starts the series');
    assert.equal(humanMessage('input.reminders[0]: give exactly one of minutesBeforeDue and at'),
      'Reminder 1: give exactly one of “Minutes before due” and “At a time”');
    assert.equal(humanMessage('give exactly one of minutesBeforeDue and at, not both'),
      'Give exactly one of “Minutes before due” and “At a time”, not both');
    assert.equal(humanMessage('input.title is 501 characters long; the limit is 500'), 'Title is 501 characters long; the limit is 500');
    assert.equal(humanMessage('input.somethingNew is wrong'), 'SomethingNew is wrong', 'unknown: without input.');
    assert.equal(humanMessage('the iPhone app said so'), 'The iPhone app said so', 'a word that only looks like a field');
  });
});

describe('the task list in the address', () => {
  it('is the default state without a query, and leaves defaults out of it', () => {
    assert.equal(hashOf(defaultState()), '#/tasks');
    assert.deepEqual(stateFromHash('#/tasks'), defaultState());
    assert.equal(hasListState('#/tasks'), false);
    assert.equal(hasListState('#/tasks?view=today'), true);
  });

  it('round-trips a view, a search, every filter and several sort keys', () => {
    const state = {
      ...defaultState(), view: 'upcoming', search: 'rent & bills', status: 'all', priorities: ['HIGH', 'URGENT'],
      tags: ['home', 'side project'], tagMode: 'none', dueFrom: '2030-03-01', dueTo: '2030-03-31', overdue: true,
      recurring: 'no', sort: [{ field: 'DUE_AT', direction: 'ASC' }, { field: 'TITLE', direction: 'DESC' }],
    };
    const hash = hashOf(state);
    assert.equal(hash, '#/tasks?view=upcoming&q=rent+%26+bills&status=all&priority=HIGH&priority=URGENT&tag=home'
      + '&tag=side+project&tags=none&from=2030-03-01&to=2030-03-31&overdue=1&recurring=no&sort=DUE_AT.asc&sort=TITLE.desc');
    assert.deepEqual(stateFromHash(hash), state);
    const unsorted = { ...defaultState(), sort: [] };
    assert.deepEqual(stateFromHash(hashOf(unsorted)), unsorted, 'no sort key at all is not the default');
  });

  it('reads what makes no sense as the default', () => {
    const state = stateFromHash('#/tasks?view=someday&status=maybe&priority=HUGE&priority=LOW&from=soon&sort=SIZE.asc'
      + '&sort=TITLE.sideways&sort=TITLE.asc&sort=TITLE.desc&recurring=often');
    assert.deepEqual(state, { ...defaultState(), priorities: ['LOW'], sort: [{ field: 'TITLE', direction: 'ASC' }] });
  });
});

describe('the smart views', () => {
  // Thursday 10 December 2026, 12:00 in Berlin.
  const now = Date.parse('2026-12-10T11:00:00Z');

  it('filter whole days of the user\'s zone', () => {
    assert.deepEqual(viewFilter('today', { tz: 'Europe/Berlin', now }),
      { dueAfter: '2026-12-09T23:00:00.000Z', dueBefore: '2026-12-10T23:00:00.000Z' });
    assert.deepEqual(viewFilter('today', { tz: 'America/New_York', now }),
      { dueAfter: '2026-12-10T05:00:00.000Z', dueBefore: '2026-12-11T05:00:00.000Z' });
    assert.deepEqual(viewFilter('upcoming', { tz: 'Europe/Berlin', now }),
      { dueAfter: '2026-12-09T23:00:00.000Z', dueBefore: '2026-12-16T23:00:00.000Z' }, 'today and the six days after it');
    assert.deepEqual(viewFilter('overdue', { now }), { overdue: true });
    assert.equal(viewFilter('all', { now }), null);
    // The day Berlin changes to summer time has 23 hours; Auckland's 1 January starts in December in UTC.
    assert.deepEqual(viewFilter('today', { tz: 'Europe/Berlin', now: Date.parse('2026-03-29T10:00:00Z') }),
      { dueAfter: '2026-03-28T23:00:00.000Z', dueBefore: '2026-03-29T22:00:00.000Z' });
    assert.deepEqual(viewFilter('today', { tz: 'Pacific/Auckland', now: Date.parse('2026-12-31T12:00:00Z') }),
      { dueAfter: '2026-12-31T11:00:00.000Z', dueBefore: '2027-01-01T11:00:00.000Z' });
  });

  it('hold together with the filters, and Upcoming sorts by due date first', () => {
    const tz = 'Europe/Berlin';
    assert.deepEqual(buildFilter({ ...defaultState(), view: 'overdue' }, { tz, now }), { completed: false, and: [{ overdue: true }] });
    assert.deepEqual(buildFilter({ ...defaultState(), view: 'all', status: 'all' }, { tz, now }), null);
    assert.deepEqual(buildFilter({ ...defaultState(), view: 'today', status: 'all' }, { tz, now }), viewFilter('today', { tz, now }));
    const sort = [{ field: 'PRIORITY', direction: 'DESC' }, { field: 'DUE_AT', direction: 'DESC' }];
    assert.deepEqual(buildSort({ ...defaultState(), view: 'upcoming', sort }),
      [{ field: 'DUE_AT', direction: 'ASC' }, { field: 'PRIORITY', direction: 'DESC' }]);
    assert.deepEqual(buildSort({ ...defaultState(), view: 'today', sort }), sort);
    assert.equal(buildSort({ ...defaultState(), sort: [] }), null);
  });

  it('group Upcoming by the day in the user\'s zone, and move on at its midnight', () => {
    const tasks = [['a', '2026-12-10T22:30:00Z'], ['b', '2026-12-10T23:30:00Z'], ['c', '2026-12-11T20:00:00Z']]
      .map(([id, dueAt]) => ({ id, dueAt }));
    assert.deepEqual(groupByDay(tasks, 'Europe/Berlin').map((g) => [g.date, g.tasks.map((t) => t.id)]),
      [['2026-12-10', ['a']], ['2026-12-11', ['b', 'c']]]);
    assert.deepEqual(groupByDay(tasks, 'UTC').map((g) => [g.date, g.tasks.map((t) => t.id)]),
      [['2026-12-10', ['a', 'b']], ['2026-12-11', ['c']]]);
    assert.equal(untilNextDay('Europe/Berlin', now), 12 * 3600000);
  });
});

describe('OpenID Connect sign-in', () => {
  it('derives the PKCE S256 challenge as RFC 7636 does', async () => {
    // RFC 7636, appendix B.
    assert.equal(await codeChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'),
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
    assert.equal(base64url(new Uint8Array([251, 255, 191])), '-_-_');
    const verifier = randomValue(32);
    assert.match(verifier, /^[A-Za-z0-9_-]{43}$/, 'a verifier is 32 random bytes, 43 characters');
    assert.notEqual(randomValue(32), verifier);
  });

  it('reads the claims of a JWT, base64url and UTF-8 included', () => {
    const payload = Buffer.from(JSON.stringify({ sub: 'zoë', nonce: 'n-1', pad: '??>' })).toString('base64url');
    assert.deepEqual(jwtClaims(`eyJhbGciOiJSUzI1NiJ9.${payload}.sig`), { sub: 'zoë', nonce: 'n-1', pad: '??>' });
    assert.throws(() => jwtClaims('not-a-jwt'));
  });

  it('accepts a discovery document only for the configured issuer, with usable endpoints', () => {
    const settings = { issuer: 'https://idp.example/tenant' };
    const good = {
      issuer: 'https://idp.example/tenant/',
      authorization_endpoint: 'https://idp.example/tenant/authorize',
      token_endpoint: 'https://idp.example/tenant/token',
    };
    assert.deepEqual(checkDiscovery(good, settings), {
      authorization_endpoint: 'https://idp.example/tenant/authorize',
      token_endpoint: 'https://idp.example/tenant/token',
    });
    assert.throws(() => checkDiscovery({ ...good, issuer: 'https://evil.example' }, settings), /names the issuer/);
    assert.throws(() => checkDiscovery({ ...good, issuer: undefined }, settings), /names the issuer/);
    assert.throws(() => checkDiscovery({ ...good, token_endpoint: 'not a url' }, settings), /no valid token_endpoint/);
    assert.throws(() => checkDiscovery({ ...good, authorization_endpoint: undefined }, settings), /no valid authorization_endpoint/);
    assert.throws(() => checkDiscovery({ ...good, token_endpoint: 'http://idp.example/token' }, settings), /not https/);
    assert.throws(() => checkDiscovery(null, settings), /names the issuer/);
    const loopback = { issuer: 'http://127.0.0.1:9000' };
    assert.equal(checkDiscovery({ issuer: 'http://127.0.0.1:9000', authorization_endpoint: 'http://127.0.0.1:9000/auth',
      token_endpoint: 'http://127.0.0.1:9000/token' }, loopback).token_endpoint, 'http://127.0.0.1:9000/token');
  });

  it('tells the provider\'s answer from other addresses', () => {
    assert.equal(isCallback('https://tasks.example/?code=abc&state=xyz&iss=https%3A%2F%2Fidp'), true);
    assert.equal(isCallback('https://tasks.example/?error=access_denied&state=xyz'), true);
    assert.equal(isCallback('https://tasks.example/?code=abc'), false);
    assert.equal(isCallback('https://tasks.example/#/tasks'), false);
  });
});
