// Browser tests of the habits users bring from Todoist, Microsoft To Do and Vikunja (issue 21,
// part 3), in Debian's Chromium against the real taskstream binary in development mode: quick
// add with its preview, the smart views and the list's state in the address, reminder
// notifications in words, the raw rule only under "Custom", and the form's labels in error
// messages. Undo has its own file (undo.test.mjs). The tests of the `describe` run in order and share one
// server and one user, whose zone is one where it is daytime now (so "today" and "tomorrow"
// cannot change under a test that runs near midnight).

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, waitFor, screenshot, graphql } from './harness.mjs';
import { toInstant, toWallClock, nextDay } from '../app/time.js';
import { parseQuickAdd } from '../app/quick_add.js';

/** A zone where it is between 06:00 and 18:00 now: one of these always is. */
function daytimeZone() {
  const zones = ['Europe/Berlin', 'Asia/Tokyo', 'America/New_York', 'America/Los_Angeles', 'Asia/Kolkata', 'Pacific/Honolulu'];
  return zones.find((tz) => {
    const hour = Number(toWallClock(new Date().toISOString(), tz).time.slice(0, 2));
    return hour >= 6 && hour < 18;
  });
}

const titles = (page) => page.$$eval('#task-list .task .title', (els) => els.map((e) => e.textContent));

async function waitForTitles(page, expected, what) {
  let seen;
  try {
    await waitFor(what, async () => {
      seen = await titles(page);
      return JSON.stringify(seen) === JSON.stringify(expected);
    });
  } catch (e) {
    throw new Error(`${e.message}; the list shows ${JSON.stringify(seen)}, expected ${JSON.stringify(expected)}`);
  }
}

function taskItem(page, title) {
  return page.locator('#task-list .task').filter({ has: page.getByRole('button', { name: `Edit “${title}”`, exact: true }) });
}

describe('the web app with the habits of other task apps', () => {
  const tz = daytimeZone();
  const today = toWallClock(new Date().toISOString(), tz).date;
  const day = (n) => { let d = today; for (let i = 0; i < n; i += 1) d = nextDay(d); return d; };
  const yesterday = toWallClock(new Date(Date.now() - 86400000).toISOString(), tz).date;
  let server;
  let browser;
  let page;
  let token;
  const api = (query, variables) => graphql(server.base, token, query, variables);
  const createTask = (input) => api('mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }', { input })
    .then((data) => data.createTask.id);

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    page = await browser.context.newPage();
    await page.goto(server.base);
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    token = await page.evaluate(() => localStorage.getItem('taskstream.token'));
    await api('mutation($tz: String!) { updateSettings(input: { timezone: $tz }) { id } }', { tz });
    await page.reload();
    await page.locator('#zone-note', { hasText: `times in ${tz}` }).waitFor();
    await waitFor('the live connection is up', () => page.evaluate(() => document.body.dataset.live === 'live'));
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  afterEach(async () => {
    for (const open of await page.locator('dialog[open]').all()) await open.evaluate((d) => d.remove());
  });

  it('previews what a quick add line means and creates the task with its date, repeat, tags and priority', async () => {
    const line = page.getByLabel('Quick add');
    await line.fill('Pay rent every month on the 1st at 9am #home !high');
    const preview = page.locator('#quick-add-preview');
    await preview.locator('[data-kind="repeat"]', { hasText: 'monthly on day 1' }).waitFor();
    const parts = await preview.locator('.understood').allInnerTexts();
    assert.equal(parts[0], 'Title “Pay rent”');
    assert.match(parts[1], /^Due (today|tomorrow|\w{3} \d{1,2} \w{3}( \d{4})?) at 09:00$/);
    assert.deepEqual(parts.slice(2), ['Repeats monthly on day 1', 'Tag #home', 'Priority High']);
    await screenshot(page, 'quick-add', { clip: { x: 0, y: 0, width: 1100, height: 330 } });
    await line.press('Enter');
    const item = taskItem(page, 'Pay rent');
    await item.waitFor();
    assert.equal(await line.inputValue(), '', 'the line is empty for the next task');
    assert.equal(await preview.innerText(), '');
    await item.locator('.recurs', { hasText: 'monthly on day 1' }).waitFor();

    const { tasks } = await api(`{ tasks(search: "rent") { nodes { title priority dueAt tags { name }
      recurrence { rule timezone } } } }`);
    const [task] = tasks.nodes;
    assert.deepEqual({ ...task, dueAt: undefined }, { title: 'Pay rent', priority: 'HIGH', dueAt: undefined,
      tags: [{ name: 'home' }], recurrence: { rule: 'FREQ=MONTHLY;BYMONTHDAY=1', timezone: tz } });
    const due = toWallClock(task.dueAt, tz);
    assert.equal(due.time, '09:00', `09:00 in ${tz}`);
    assert.equal(due.date.slice(8), '01', 'on a 1st');
    assert.ok(Date.parse(task.dueAt) > Date.now() && Date.parse(task.dueAt) < Date.now() + 32 * 86400000, task.dueAt);
  });

  it('shows the API\'s refusal of a quick add line in the form\'s words and keeps the line', async () => {
    const line = page.getByLabel('Quick add');
    await line.fill('tomorrow at 9am #home');
    await line.press('Enter');
    await page.locator('#quick-add-error', { hasText: 'Title must not be empty' }).waitFor();
    assert.equal(await line.getAttribute('aria-invalid'), 'true');
    assert.equal(await line.inputValue(), 'tomorrow at 9am #home');
    await line.fill('');
    await page.locator('#quick-add-error').waitFor({ state: 'hidden' });
  });

  it('makes rules from quick add lines that the API accepts and expands as the preview said', async () => {
    const lines = {
      'a every day at 7pm': (d) => d.time === '19:00',
      'a every weekday at 9:15': (d) => d.time === '09:15' && ![0, 6].includes(new Date(`${d.date}T12:00Z`).getUTCDay()),
      'a every mon, wed and fri': (d) => [1, 3, 5].includes(new Date(`${d.date}T12:00Z`).getUTCDay()),
      'a every 2 weeks on sat': (d) => new Date(`${d.date}T12:00Z`).getUTCDay() === 6,
      'a every month on the 1st at 9am': (d) => d.date.endsWith('-01') && d.time === '09:00',
      'a every month on the last day': (d) => nextDay(d.date).endsWith('-01'),
      'a every other day at 21:00': (d) => d.time === '21:00',
      'a every dec 24': (d) => d.date.endsWith('-12-24'),
      'a every 3 months': () => true,
    };
    for (const [text, holds] of Object.entries(lines)) {
      const parsed = parseQuickAdd(text, { tz });
      const { previewRecurrence: dates } = await api(`query($recurrence: RecurrenceInput!, $dueAt: DateTime!) {
        previewRecurrence(recurrence: $recurrence, dueAt: $dueAt, count: 4) }`,
      { recurrence: { rule: parsed.rule, timezone: tz }, dueAt: parsed.dueAt });
      assert.equal(dates.length, 4, text);
      const walls = [parsed.dueAt, ...dates].map((iso) => toWallClock(iso, tz));
      assert.ok(walls.every(holds), `${text}: ${parsed.rule} from ${parsed.dueAt} gives ${JSON.stringify(walls)}`);
    }
  });

  it('shows Today, Upcoming by day, Overdue and All, in the user\'s zone', async () => {
    const at = (date, time) => toInstant(date, time, tz);
    await createTask({ title: 'Overdue since yesterday', dueAt: at(yesterday, '12:00') });
    // Late tonight: due today, not overdue yet (it is daytime in this zone).
    await createTask({ title: 'Due today', dueAt: at(today, '23:30'), priority: 'HIGH' });
    await createTask({ title: 'Due tomorrow', dueAt: at(day(1), '10:00') });
    await createTask({ title: 'Late in three days', dueAt: at(day(3), '18:00') });
    await createTask({ title: 'Early in three days', dueAt: at(day(3), '08:00') });
    await createTask({ title: 'Due in eight days', dueAt: at(day(8), '09:00') });

    await page.getByRole('link', { name: 'Today', exact: true }).click();
    await waitForTitles(page, ['Due today'], 'Today lists what is due today');
    assert.match(page.url(), /#\/tasks\?view=today$/);

    await page.getByRole('link', { name: 'Upcoming', exact: true }).click();
    await waitForTitles(page, ['Due today', 'Due tomorrow', 'Early in three days', 'Late in three days'],
      'Upcoming lists the next seven days in due order');
    const headings = await page.locator('#task-list .day-heading').allInnerTexts();
    const dayOf = (date) => Number(date.slice(8));
    assert.equal(headings.length, 3, headings.join(' | '));
    assert.match(headings[0], new RegExp(`^Today · \\w{3} ${dayOf(today)} \\w{3}`));
    assert.match(headings[1], new RegExp(`^Tomorrow · \\w{3} ${dayOf(day(1))} \\w{3}`));
    assert.match(headings[2], new RegExp(`^\\w{3} ${dayOf(day(3))} \\w{3}`));
    const third = page.locator('#task-list .day-group').nth(2);
    assert.deepEqual(await third.locator('.task .title').allInnerTexts(), ['Early in three days', 'Late in three days']);
    await screenshot(page, 'upcoming');

    await page.getByRole('link', { name: /^Overdue/ }).click();
    await waitForTitles(page, ['Overdue since yesterday'], 'Overdue lists what is past due');
    await page.locator('#view-overdue .tab-count', { hasText: '1' }).waitFor();

    await page.getByRole('link', { name: 'All', exact: true }).click();
    await waitFor('All lists every open task', async () => (await titles(page)).includes('Due in eight days'));
    assert.match(page.url(), /#\/tasks$/, 'All with the default filters is the plain address');
  });

  it('keeps the view, filters and sort in the address across a reload and back and forward', async () => {
    await page.getByRole('link', { name: 'Upcoming', exact: true }).click();
    await waitFor('Upcoming shows', async () => (await titles(page))[0] === 'Due today');
    await page.locator('#filters > summary').click();
    await page.getByRole('checkbox', { name: 'High', exact: true }).check();
    await waitForTitles(page, ['Due today'], 'the priority filter holds with the view');
    assert.match(page.url(), /view=upcoming&priority=HIGH/);

    await page.reload();
    await waitForTitles(page, ['Due today'], 'a reload keeps the view and the filter');
    assert.equal(await page.locator('#view-upcoming').getAttribute('aria-current'), 'page');
    await page.locator('#filters > summary').click();
    assert.equal(await page.getByRole('checkbox', { name: 'High', exact: true }).isChecked(), true);

    await page.goBack();
    await waitFor('back: the filter is gone', async () => (await titles(page)).length === 4);
    assert.equal(await page.getByRole('checkbox', { name: 'High', exact: true }).isChecked(), false);
    assert.doesNotMatch(page.url(), /priority/);
    await page.goBack();
    await waitFor('back again: All', async () => (await titles(page)).includes('Due in eight days'));
    assert.equal(await page.locator('#view-all').getAttribute('aria-current'), 'page');
    await page.goForward();
    await page.goForward();
    await waitForTitles(page, ['Due today'], 'forward twice: Upcoming with the filter');

    // The tabs keep the filters; the sort is kept too, and the search, without a new history
    // entry for each letter.
    await page.getByRole('link', { name: 'All', exact: true }).click();
    await waitForTitles(page, ['Due today', 'Pay rent'], 'All with the priority filter');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await waitFor('the filter is cleared', () => !/priority/.test(page.url()));
    await page.locator('#sort > summary').click();
    await page.getByLabel('Sort key 1: field').selectOption('TITLE');
    await page.getByLabel('Sort key 1: direction').selectOption('ASC');
    await waitFor('the sort is in the address', () => /sort=TITLE\.asc/.test(page.url()));
    await page.getByLabel('Search', { exact: true }).fill('tomorrow');
    await waitFor('the search is in the address', () => /q=tomorrow/.test(page.url()));
    await page.reload();
    await waitForTitles(page, ['Due tomorrow'], 'a reload keeps the search');
    assert.equal(await page.getByLabel('Search', { exact: true }).inputValue(), 'tomorrow');
    await page.locator('#sort > summary', { hasText: 'Sort: Title ↑' }).waitFor();
    await page.goto(`${server.base}/#/tasks`);
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
  });

  it('says when a reminded task is due in the user\'s zone and words, and what a reminder without a due date is', async () => {
    const soon = () => new Date(Date.now() + 1500).toISOString();
    await createTask({ title: 'Renew the passport', dueAt: toInstant(day(1), '09:00', tz), reminders: [{ at: soon() }] });
    await createTask({ title: 'Call Anna back', reminders: [{ at: soon() }] });
    await page.getByRole('link', { name: /Notifications/ }).click();
    const passport = page.locator('.notification', { hasText: 'Renew the passport' });
    await passport.locator('.desc', { hasText: 'Due tomorrow at 09:00' }).waitFor({ timeout: 60000 });
    assert.doesNotMatch(await passport.innerText(), /\d{4}-\d{2}-\d{2}T/, 'no raw UTC');
    await page.locator('.notification .title', { hasText: 'Reminder: Call Anna back' }).waitFor({ timeout: 60000 });
    await page.getByRole('button', { name: 'Mark all read' }).click();
    await page.locator('#notification-count', { hasText: '0 unread' }).waitFor();
    await page.getByRole('link', { name: 'Tasks' }).click();
  });

  it('offers the raw rule only under "Custom rule"', async () => {
    await page.getByRole('button', { name: 'New task' }).click();
    const dialog = page.getByRole('dialog', { name: 'New task' });
    const rule = dialog.getByLabel('Rule (RRULE)');
    assert.equal(await rule.isVisible(), false);
    await dialog.getByLabel('Due date', { exact: true }).fill(day(2));
    await dialog.getByLabel('Repeats').selectOption('weekdays');
    assert.equal(await rule.isVisible(), false);
    await dialog.getByLabel('Repeats').selectOption('custom');
    await rule.waitFor();
    assert.equal(await rule.inputValue(), 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR', 'starting from the preset\'s rule');
    await rule.fill('FREQ=WEEKLY;INTERVAL=2;BYDAY=MO');
    assert.equal(await dialog.getByLabel('Repeats').inputValue(), 'custom', 'typing keeps Custom');
    await dialog.getByLabel('Repeats').selectOption('daily');
    await rule.waitFor({ state: 'hidden' });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });

    // A saved rule beyond the presets opens under Custom, as it is.
    await page.getByLabel('Quick add').fill('Review the budget every 2 weeks on friday');
    await page.getByLabel('Quick add').press('Enter');
    await page.getByRole('button', { name: 'Edit “Review the budget”' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit task' });
    assert.equal(await edit.getByLabel('Repeats').inputValue(), 'custom');
    assert.equal(await edit.getByLabel('Rule (RRULE)').inputValue(), 'FREQ=WEEKLY;INTERVAL=2;BYDAY=FR');
    await page.keyboard.press('Escape');
    await edit.waitFor({ state: 'detached' });
  });

  it('names fields in error messages by the form\'s labels', async () => {
    await page.getByRole('button', { name: 'New task' }).click();
    const dialog = page.getByRole('dialog', { name: 'New task' });
    await dialog.getByLabel('Title', { exact: true }).fill('Repeats without a date');
    await dialog.getByLabel('Repeats').selectOption('daily');
    await dialog.getByRole('button', { name: 'Create task' }).click();
    const error = dialog.locator('[data-field="recurrence"] > .field-error');
    await error.filter({ hasText: 'Repeat requires “Due date”' }).waitFor();
    assert.doesNotMatch(await error.innerText(), /dueAt|input\./);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });
});
