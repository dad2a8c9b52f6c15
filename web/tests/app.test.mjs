// End-to-end tests of the web app in Debian's Chromium against the real taskstream binary in
// development mode (embedded: the recurrence subscriber and the reminder scheduler run in the
// same process). The tests of a `describe` run in order and share one server and one user.

import { createHmac } from 'node:crypto';
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, waitFor, screenshot, graphql } from './harness.mjs';

function titles(page) {
  return page.$$eval('#task-list .task .title', (els) => els.map((e) => e.textContent));
}

/** Waits until the list shows exactly `expected` titles in this order. */
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

/**
 * Records the GraphQL requests `page` sends (POST /graphql) by operation name, until stop():
 * live updates arrive over the WebSocket, which this does not see.
 */
function recordRequests(page) {
  const names = [];
  const onRequest = (request) => {
    if (request.method() !== 'POST' || new URL(request.url()).pathname !== '/graphql') return;
    names.push(/^\s*(?:query|mutation)\s+(\w+)/.exec(request.postDataJSON()?.query || '')?.[1] || 'anonymous');
  };
  page.on('request', onRequest);
  return { names, stop: () => page.off('request', onRequest) };
}

async function openFilters(page) {
  if (!(await page.locator('#filters').evaluate((d) => d.open))) await page.locator('#filters > summary').click();
}

describe('the web app in development mode', () => {
  let server;
  let browser;
  let page;
  let token;
  const consoleErrors = [];

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('dialog', (d) => d.accept());
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  // A failed test must not leave a modal open over the next one.
  afterEach(async () => {
    for (const open of await page.locator('dialog[open]').all()) await open.evaluate((d) => d.remove());
  });

  it('signs in as the development user with the token from /dev/token', async () => {
    await page.goto(server.base);
    await page.locator('#zone-note', { hasText: 'Signed in as developer' }).waitFor();
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    token = await page.evaluate(() => localStorage.getItem('taskstream.token'));
    const { me } = await graphql(server.base, token, '{ me { id } }');
    assert.equal(me.id, 'developer');
    await waitFor('the live connection is up', () => page.evaluate(() => document.body.dataset.live === 'live'));
    await page.locator('#result-count', { hasText: 'No tasks yet' }).waitFor();
  });

  it('shows times in the user\'s zone and sets it in Settings', async () => {
    // A new user's zone is UTC, whatever zone the browser is in (Europe/Berlin here).
    await page.locator('#zone-note', { hasText: 'times in UTC' }).waitFor();
    await page.getByRole('link', { name: 'Settings' }).first().click();
    await page.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
    const zoneInput = page.getByLabel('Time zone', { exact: true });
    assert.equal(await zoneInput.inputValue(), 'UTC');
    assert.ok(await page.locator('#settings-timezone-options option[value="Pacific/Auckland"]').count(), 'zones are suggested');
    // An unknown name: the API's error is shown at the field.
    await zoneInput.fill('Mars/Olympus');
    await page.getByRole('button', { name: 'Save time zone' }).click();
    await page.locator('#settings-timezone-error', { hasText: 'Mars/Olympus' }).waitFor();
    assert.equal(await zoneInput.getAttribute('aria-invalid'), 'true');
    assert.doesNotMatch(await page.locator('#settings-timezone-error').innerText(), /input\./);
    await page.getByRole('button', { name: 'Use this browser’s zone (Europe/Berlin)' }).click();
    assert.equal(await zoneInput.inputValue(), 'Europe/Berlin');
    await page.getByRole('button', { name: 'Save time zone' }).click();
    await page.locator('#zone-note', { hasText: 'times in Europe/Berlin' }).waitFor();
    await page.locator('#settings-timezone-error').waitFor({ state: 'hidden' });
    assert.equal(await zoneInput.getAttribute('aria-invalid'), null);
    const { me } = await graphql(server.base, token, '{ me { timezone } }');
    assert.equal(me.timezone, 'Europe/Berlin');
    await page.getByRole('link', { name: 'Tasks' }).click();
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
  });

  it('creates a task with tags, a priority, a due date, a weekly recurrence and a reminder', async () => {
    await page.getByRole('button', { name: 'New task' }).click();
    const dialog = page.getByRole('dialog', { name: 'New task' });
    await dialog.waitFor();
    await dialog.getByLabel('Title', { exact: true }).fill('Water the plants');
    await dialog.getByLabel('Description').fill('Balcony first, then the kitchen');
    await dialog.getByRole('radio', { name: 'High' }).check();
    await dialog.getByLabel('Due date', { exact: true }).fill('2030-03-04');
    await dialog.getByLabel('Due time (Europe/Berlin)').fill('09:00');
    const tagInput = dialog.getByLabel('Add a tag');
    await tagInput.fill('home');
    await tagInput.press('Enter');
    await tagInput.fill('garden');
    await tagInput.press('Enter');
    await dialog.locator('#task-tags', { hasText: 'garden' }).waitFor();
    await dialog.getByLabel('Repeats').selectOption('weekly');
    // 4 March 2030 is a Monday: the weekly preset starts from the due date's weekday.
    assert.equal(await dialog.getByRole('checkbox', { name: 'Mon' }).isChecked(), true);
    await dialog.getByRole('checkbox', { name: 'Thu' }).check();
    assert.equal(await dialog.getByLabel('Rule (RRULE)').inputValue(), 'FREQ=WEEKLY;BYDAY=MO,TH');
    await dialog.getByRole('button', { name: 'Add reminder' }).click();
    await page.setViewportSize({ width: 1100, height: 1450 });
    await dialog.evaluate((d) => { d.scrollTop = 0; });
    await screenshot(page, 'edit-form');
    await page.setViewportSize({ width: 1100, height: 900 });
    await dialog.getByRole('button', { name: 'Create task' }).click();
    await dialog.waitFor({ state: 'detached' });

    const item = taskItem(page, 'Water the plants');
    await item.waitFor();
    const text = await item.innerText();
    for (const part of ['High', 'Mon, 4 Mar 2030', '09:00', 'weekly on Mon, Thu', 'home', 'garden']) {
      assert.ok(text.includes(part), `the list item shows ${part}: ${text}`);
    }
    const { tasks } = await graphql(server.base, token,
      '{ tasks { nodes { title priority dueAt tags { name } recurrence { rule timezone } reminders { minutesBeforeDue } } } }');
    assert.equal(new Date(tasks.nodes[0].dueAt).toISOString(), '2030-03-04T08:00:00.000Z', '09:00 in Berlin');
    assert.deepEqual(tasks.nodes, [{
      title: 'Water the plants',
      priority: 'HIGH',
      dueAt: tasks.nodes[0].dueAt,
      tags: [{ name: 'garden' }, { name: 'home' }],
      recurrence: { rule: 'FREQ=WEEKLY;BYDAY=MO,TH', timezone: 'Europe/Berlin' },
      reminders: [{ minutesBeforeDue: 30 }],
    }]);
  });

  it('previews the next dates of a saved rule from Recurrence.upcoming', async () => {
    await page.getByRole('button', { name: 'Edit “Water the plants”' }).click();
    const dialog = page.getByRole('dialog', { name: 'Edit task' });
    const preview = dialog.locator('#task-recurrence-preview');
    await preview.locator('li').first().waitFor();
    const dates = await preview.locator('li').allInnerTexts();
    assert.equal(dates.length, 5);
    assert.ok(dates[0].includes('Thu, 7 Mar 2030') && dates[0].includes('09:00'), dates[0]);
    assert.ok(dates[1].includes('Mon, 11 Mar 2030'), dates[1]);
    await preview.scrollIntoViewIfNeeded();
    await screenshot(page, 'edit-form-recurrence');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
  });

  it('shows an API validation error next to the field it names', async () => {
    await page.getByRole('button', { name: 'New task' }).click();
    const dialog = page.getByRole('dialog', { name: 'New task' });
    await dialog.getByRole('button', { name: 'Create task' }).click();
    const titleError = dialog.locator('#task-title-error');
    await titleError.filter({ hasText: 'Title must not be empty' }).waitFor();
    assert.equal(await dialog.getByLabel('Title', { exact: true }).getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'task-title', 'focus moves to the field');

    await dialog.getByLabel('Title', { exact: true }).fill('x'.repeat(501));
    await dialog.getByRole('button', { name: 'Create task' }).click();
    await titleError.filter({ hasText: 'title is 501 characters long; the limit is 500' }).waitFor();

    await dialog.getByLabel('Title', { exact: true }).fill('A rule without a due date');
    // The raw rule is offered only under "Custom rule".
    assert.equal(await dialog.getByLabel('Rule (RRULE)').isVisible(), false);
    await dialog.getByLabel('Repeats').selectOption('custom');
    await dialog.getByLabel('Rule (RRULE)').fill('FREQ=SOMETIMES');
    await dialog.getByRole('button', { name: 'Create task' }).click();
    // The rule is checked first; the message, shown at the rule field, loses its field prefix.
    await dialog.locator('#task-recurrence-rule-error').filter({ hasText: /^Rule is not a valid RFC 5545 RRULE/ }).waitFor();
    assert.equal(await dialog.getByLabel('Rule (RRULE)').getAttribute('aria-invalid'), 'true');
    assert.equal(await dialog.locator('#task-title-error').innerText(), '', 'the old error is cleared');
    await screenshot(page, 'validation-error');

    await dialog.getByLabel('Rule (RRULE)').fill('');
    await dialog.getByRole('button', { name: 'Add reminder' }).click();
    await dialog.getByLabel('Reminder 1: kind').selectOption('at');
    await dialog.getByRole('button', { name: 'Create task' }).click();
    // The API's field names read as the form's labels.
    await dialog.locator('[data-field="reminders"] > .field-error')
      .filter({ hasText: 'Reminder 1: give exactly one of “Minutes before due” and “At a time”' }).waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    const { tasks } = await graphql(server.base, token, '{ tasks { totalCount } }');
    assert.equal(tasks.totalCount, 1, 'nothing was written');
  });

  it('previews the next dates of a rule live, before it is saved, and shows an invalid rule at its field', async () => {
    const before = (await graphql(server.base, token, '{ tasks { totalCount } }')).tasks.totalCount;
    await page.getByRole('button', { name: 'New task' }).click();
    const dialog = page.getByRole('dialog', { name: 'New task' });
    await dialog.getByLabel('Title', { exact: true }).fill('Stretch');
    const preview = dialog.locator('#task-recurrence-preview');
    const dates = () => preview.locator('li').allInnerTexts();
    const rule = dialog.getByLabel('Rule (RRULE)');
    const ruleError = dialog.locator('#task-recurrence-rule-error');

    // A preset and a due date: the dates appear while the form is still open.
    await dialog.getByLabel('Due date', { exact: true }).fill('2030-03-04');
    await dialog.getByLabel('Due time (Europe/Berlin)').fill('09:00');
    await dialog.getByLabel('Repeats').selectOption('weekly');
    await dialog.getByRole('checkbox', { name: 'Thu' }).check();
    await waitFor('the weekly preview shows five dates', async () => {
      const shown = await dates();
      return shown.length === 5 && shown[0].includes('Thu, 7 Mar 2030') && shown[1].includes('Mon, 11 Mar 2030');
    });
    assert.ok((await dates()).every((d) => d.includes('09:00')), 'at the due time');

    // A moved due date moves the preview; across the DST change 09:00 stays 09:00 in Berlin.
    await dialog.getByLabel('Repeats').selectOption('custom');
    assert.equal(await rule.inputValue(), 'FREQ=WEEKLY;BYDAY=MO,TH', 'Custom starts from the preset\'s rule');
    await rule.fill('FREQ=DAILY');
    await dialog.getByLabel('Due date', { exact: true }).fill('2030-03-29');
    await waitFor('the daily preview follows the new due date', async () => {
      const shown = await dates();
      return shown.length === 5 && shown[0].includes('Sat, 30 Mar 2030') && shown[2].includes('Mon, 1 Apr 2030');
    });
    assert.ok((await dates()).every((d) => d.includes('09:00')), `wall-clock time kept: ${await dates()}`);
    assert.equal(await ruleError.innerText(), '');

    // An invalid raw rule: the API's message at the rule field, without its prefix, and no dates.
    await rule.fill('FREQ=SOMETIMES');
    await ruleError.filter({ hasText: /^Rule is not a valid RFC 5545 RRULE/ }).waitFor();
    assert.equal(await rule.getAttribute('aria-invalid'), 'true');
    assert.equal(await preview.locator('li').count(), 0);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'task-recurrence-rule', 'focus stays in the rule');

    // Fixing the rule clears the error and brings the dates back.
    await rule.fill('FREQ=WEEKLY;BYDAY=FR');
    await waitFor('the fixed rule is previewed', async () => (await dates())[0]?.includes('Fri, 5 Apr 2030'));
    assert.equal(await ruleError.innerText(), '');
    assert.equal(await rule.getAttribute('aria-invalid'), null);

    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    const { tasks } = await graphql(server.base, token, '{ tasks { totalCount } }');
    assert.equal(tasks.totalCount, before, 'previewing wrote nothing');
  });

  it('updates the list live when another page creates tasks', async () => {
    const other = await browser.context.newPage();
    await other.goto(server.base);
    await other.getByRole('button', { name: 'New task' }).click();
    const dialog = other.getByRole('dialog', { name: 'New task' });
    await dialog.getByLabel('Title', { exact: true }).fill('Pay the electricity bill');
    await dialog.getByRole('radio', { name: 'Urgent' }).check();
    await dialog.getByLabel('Due date', { exact: true }).fill('2030-03-01');
    await dialog.getByLabel('Due time (Europe/Berlin)').fill('12:00');
    await dialog.getByLabel('Add a tag').fill('money');
    await dialog.getByLabel('Add a tag').press('Enter');
    await dialog.getByRole('button', { name: 'Create task' }).click();
    await dialog.waitFor({ state: 'detached' });
    // The first page did nothing: the change arrives over taskChanged.
    await taskItem(page, 'Pay the electricity bill').waitFor();
    await other.close();

    // Changes made through the API (say, in GraphiQL with the printed token) arrive too.
    await graphql(server.base, token, `mutation { a: createTask(input: { title: "Call the plumber about the leak",
      priority: LOW, tags: ["home"] }) { id } b: createTask(input: { title: "Read a book" }) { id } }`);
    await taskItem(page, 'Read a book').waitFor();
    await page.locator('#task-counts', { hasText: '4 open' }).waitFor();
    await page.locator('#result-count', { hasText: 'Showing 4 of 4 tasks' }).waitFor();
  });

  it('applies another session\'s changes to the list and its counts without refetching them', async () => {
    const shown = ['Read a book', 'Call the plumber about the leak', 'Pay the electricity bill', 'Water the plants'];
    await waitForTitles(page, shown, 'the list is newest first');
    const requests = recordRequests(page);
    try {
      // Created elsewhere, due in the past: on top (newest first), open and overdue.
      const { createTask: { id } } = await graphql(server.base, token, `mutation {
        createTask(input: { title: "Sort the mail", dueAt: "2020-01-06T09:00:00Z" }) { id } }`);
      await waitForTitles(page, ['Sort the mail', ...shown], 'the new task is inserted in its place');
      await page.locator('#task-counts', { hasText: '5 open · 1 overdue' }).waitFor();
      await page.locator('#result-count', { hasText: 'Showing 5 of 5 tasks' }).waitFor();
      const change = (mutation) => graphql(server.base, token, `mutation($id: ID!) { ${mutation} }`, { id });

      await change('updateTask(id: $id, input: { title: "Sort the post", priority: HIGH }) { id }');
      await taskItem(page, 'Sort the post').locator('.prio-high').waitFor();
      await waitForTitles(page, ['Sort the post', ...shown], 'the task is patched in place');

      await change('completeTask(id: $id) { id }');
      await waitForTitles(page, shown, 'completed, it leaves the open tasks');
      await page.locator('#task-counts', { hasText: '4 open · 0 overdue' }).waitFor();
      await page.locator('#result-count', { hasText: 'Showing 4 of 4 tasks' }).waitFor();

      await change('reopenTask(id: $id) { id }');
      await waitForTitles(page, ['Sort the post', ...shown], 'reopened, it is back in its place');
      await page.locator('#task-counts', { hasText: '5 open · 1 overdue' }).waitFor();

      await change('deleteTask(id: $id)');
      await waitForTitles(page, shown, 'deleted, it is gone');
      await page.locator('#task-counts', { hasText: '4 open · 0 overdue' }).waitFor();
      await page.locator('#result-count', { hasText: 'Showing 4 of 4 tasks' }).waitFor();
      assert.deepEqual(requests.names, [], 'every change came with its event: nothing was refetched');
    } finally {
      requests.stop();
    }
  });

  it('searches title and description by word stem', async () => {
    await page.getByLabel('Search', { exact: true }).fill('watering');
    await waitForTitles(page, ['Water the plants'], 'the search finds the stemmed word');
    await page.getByLabel('Search', { exact: true }).fill('kitchen');
    await waitForTitles(page, ['Water the plants'], 'the search covers the description');
    await page.getByLabel('Search', { exact: true }).fill('');
    await waitFor('the list is whole again', async () => (await titles(page)).length === 4);
  });

  it('filters by tag and by priority', async () => {
    await openFilters(page);
    await page.locator('#filter-tags').getByRole('checkbox', { name: 'home' }).check();
    await waitForTitles(page, ['Call the plumber about the leak', 'Water the plants'], 'the home tag filter applies');
    await page.getByRole('checkbox', { name: 'High', exact: true }).check();
    await waitForTitles(page, ['Water the plants'], 'tag and priority filters combine');
    await page.locator('#filters > summary', { hasText: 'Filters (2 active)' }).waitFor();
    await page.getByLabel('Tasks with').selectOption('none');
    await waitForTitles(page, [], 'no high-priority task lacks the home tag');
    await screenshot(page, 'filters');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await waitFor('the list is whole again', async () => (await titles(page)).length === 4);
  });

  it('sorts by several keys', async () => {
    await page.locator('#sort > summary').click();
    await page.getByLabel('Sort key 1: field').selectOption('PRIORITY');
    await waitForTitles(page, ['Pay the electricity bill', 'Water the plants', 'Call the plumber about the leak', 'Read a book'],
      'priority descending (the direction the default sort had)');
    await page.getByLabel('Sort key 1: direction').selectOption('ASC');
    await waitForTitles(page, ['Read a book', 'Call the plumber about the leak', 'Water the plants', 'Pay the electricity bill'],
      'priority ascending');
    await page.getByLabel('Sort key 1: field').selectOption('DUE_AT');
    await waitFor('due date ascending puts the dated tasks first', async () =>
      JSON.stringify((await titles(page)).slice(0, 2)) === JSON.stringify(['Pay the electricity bill', 'Water the plants']));
    await page.getByRole('button', { name: 'Add sort key' }).click();
    await page.getByLabel('Sort key 2: field').selectOption('TITLE');
    await waitForTitles(page, ['Pay the electricity bill', 'Water the plants', 'Call the plumber about the leak', 'Read a book'],
      'undated tasks last, by title as the second key');
    await page.locator('#sort > summary', { hasText: 'Sort: Due date ↑, Title ↑' }).waitFor();
    await page.locator('#sort > summary').click();
    if (await page.locator('#filters').evaluate((d) => d.open)) await page.locator('#filters > summary').click();
    await screenshot(page, 'list');
  });

  it('completes a recurring task and shows its next occurrence', async () => {
    // click(), not check(): the list re-renders on the change, and check() would retry on the
    // new checkbox and complete the next occurrence too.
    await taskItem(page, 'Water the plants').getByRole('checkbox', { name: 'Complete “Water the plants”' }).click();
    await page.locator('#announcer', { hasText: 'Next occurrence of “Water the plants”: due Thu, 7 Mar 2030' }).waitFor({ timeout: 60000 });
    const next = taskItem(page, 'Water the plants');
    await next.locator('.due', { hasText: 'Thu, 7 Mar 2030' }).waitFor();
    await openFilters(page);
    await page.getByLabel('Status', { exact: true }).selectOption('all');
    await page.locator('#task-list .task.done', { hasText: 'Next occurrence: Thu, 7 Mar 2030' }).waitFor();
    await page.getByLabel('Status', { exact: true }).selectOption('completed');
    await waitForTitles(page, ['Water the plants'], 'only the completed occurrence');
    await page.getByRole('checkbox', { name: 'Reopen “Water the plants”' }).click();
    await waitForTitles(page, [], 'reopened, it leaves the completed list');
    await page.getByRole('button', { name: 'Clear filters' }).click();
  });

  it('deletes a task with feedback', async () => {
    await taskItem(page, 'Read a book').getByRole('button', { name: 'Delete “Read a book”' }).click();
    await page.locator('#announcer', { hasText: 'Deleted “Read a book”.' }).waitFor();
    await taskItem(page, 'Read a book').waitFor({ state: 'detached' });
  });

  it('manages tags: counts, rename, recolour and delete', async () => {
    await page.getByRole('link', { name: 'Tags' }).click();
    await page.getByRole('heading', { name: 'Tags', level: 1 }).waitFor();
    const home = page.locator('.tag-row[data-name="home"]');
    await home.locator('.count', { hasText: '3 tasks' }).waitFor();
    const money = page.locator('.tag-row[data-name="money"]');
    await money.getByLabel('Name').fill('finance');
    await money.getByLabel('Colour', { exact: true }).fill('#1e90ff');
    await money.getByRole('button', { name: 'Save tag money' }).click();
    await page.locator('#announcer', { hasText: 'Tag finance: renamed and recoloured.' }).waitFor();
    await page.locator('.tag-row[data-name="finance"]').waitFor();
    await page.getByLabel('Name', { exact: true }).first().fill('errands');
    await page.getByRole('button', { name: 'Create tag' }).click();
    await page.locator('.tag-row[data-name="errands"] .count', { hasText: '0 tasks' }).waitFor();
    await page.getByRole('button', { name: 'Delete tag garden' }).click();
    await page.locator('.tag-row[data-name="garden"]').waitFor({ state: 'detached' });
    await screenshot(page, 'tags');
    await page.getByRole('button', { name: 'Create tag' }).click();
    await page.locator('#new-tag-error', { hasText: 'Name must not be empty' }).waitFor();
    const { tags } = await graphql(server.base, token, '{ tags { name color taskCount } }');
    assert.deepEqual(tags, [
      { name: 'errands', color: '#2f5bd3', taskCount: 0 },
      { name: 'finance', color: '#1e90ff', taskCount: 1 },
      { name: 'home', color: null, taskCount: 3 },
    ]);
  });

  it('receives a reminder notification and marks it read', async () => {
    const { __schema } = await graphql(server.base, token, '{ __schema { subscriptionType { fields { name } } } }');
    const live = __schema.subscriptionType.fields.some((f) => f.name === 'notificationReceived');
    await page.getByRole('link', { name: /Notifications/ }).click();
    await page.locator('#inbox', { hasText: 'No notifications yet' }).waitFor();
    const at = new Date(Date.now() + 2000).toISOString();
    const due = new Date(Date.now() + 3600_000).toISOString();
    await graphql(server.base, token, `mutation($at: DateTime!, $due: DateTime!) {
      createTask(input: { title: "Take out the bins", dueAt: $due, reminders: [{ at: $at }] }) { id } }`, { at, due });
    if (!live) {
      // Without the subscription the inbox only shows it after a reload.
      await waitFor('the reminder notification exists', async () =>
        (await graphql(server.base, token, '{ notifications { totalCount } }')).notifications.totalCount > 0, 60000, 250);
      await page.reload();
    }
    await page.locator('.notification.unread', { hasText: 'Take out the bins' }).waitFor({ timeout: 60000 });
    await page.locator('#unread-badge', { hasText: '1' }).waitFor();
    await screenshot(page, 'notifications');
    await page.getByRole('button', { name: /^Mark “.*Take out the bins.*” read$/ }).click();
    await page.locator('.notification:not(.unread)', { hasText: 'Take out the bins' }).waitFor();
    await page.locator('#unread-badge').waitFor({ state: 'hidden' });
    await page.getByRole('link', { name: 'Open task: Take out the bins' }).click();
    const dialog = page.getByRole('dialog', { name: 'Edit task' });
    assert.equal(await dialog.getByLabel('Title', { exact: true }).inputValue(), 'Take out the bins');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    console.log(`# notificationReceived ${live ? 'is live' : 'is not in the schema: checked after a reload'}`);
  });

  it('drops an answer to the notifications screen that a newer one overtook', async () => {
    await page.getByRole('link', { name: 'Tasks' }).click();
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    const at = new Date(Date.now() + 1000).toISOString();
    const due = new Date(Date.now() + 3600_000).toISOString();
    await graphql(server.base, token, `mutation($at: DateTime!, $due: DateTime!) {
      createTask(input: { title: "Water the cactus", dueAt: $due, reminders: [{ at: $at }] }) { id } }`, { at, due });
    await waitFor('the reminder fired', async () => (await graphql(server.base, token,
      '{ notifications(unreadOnly: true) { totalCount } }')).notifications.totalCount === 1, 60000, 250);
    // The screen's first answer (the new notification unread) is held back until a newer one,
    // after "Mark all read", has been shown.
    let held = null;
    let release;
    const released = new Promise((resolve) => { release = resolve; });
    await page.route('**/graphql', async (route) => {
      if (held || !/^\s*query NotificationList\b/.test(route.request().postDataJSON()?.query || '')) {
        return route.continue();
      }
      held = route.request();
      const response = await route.fetch();
      await released;
      return route.fulfill({ response });
    });
    try {
      await page.getByRole('link', { name: /Notifications/ }).click();
      await waitFor('the screen asked for its first page', () => held);
      await page.getByRole('button', { name: 'Mark all read' }).click();
      await page.locator('#notification-count', { hasText: '0 unread · 2 in all' }).waitFor();
      await page.locator('.notification', { hasText: 'Water the cactus' }).waitFor();
      const finished = page.waitForEvent('requestfinished', (request) => request === held);
      release();
      await finished;
      // A round trip later the page has handled the held answer.
      await page.evaluate(() => fetch('/healthz').then((response) => response.text()));
      assert.equal(await page.locator('.notification.unread').count(), 0, 'the older answer did not bring back the unread one');
      assert.equal(await page.locator('#notification-count').innerText(), '0 unread · 2 in all');
      await page.locator('#unread-badge').waitFor({ state: 'hidden' });
    } finally {
      release();
      await page.unroute('**/graphql');
    }
  });

  it('shows due times in the zone chosen in Settings, and saves a webhook', async () => {
    await page.getByRole('link', { name: 'Tasks' }).click();
    const bill = taskItem(page, 'Pay the electricity bill');
    // Created as 12:00 in Europe/Berlin: 11:00 UTC.
    await bill.locator('.due', { hasText: 'Fri, 1 Mar 2030' }).filter({ hasText: '12:00' }).waitFor();
    await page.getByRole('link', { name: 'Settings' }).first().click();
    const zoneInput = page.getByLabel('Time zone', { exact: true });
    await zoneInput.fill('America/New_York');
    await page.locator('#settings-timezone-now', { hasText: 'The time there now' }).waitFor();
    await page.getByRole('button', { name: 'Save time zone' }).click();
    await page.locator('#zone-note', { hasText: 'times in America/New_York' }).waitFor();
    // The settings page itself re-renders its times in the new zone.
    await page.locator('#settings-timezone-current', { hasText: 'America/New_York' }).waitFor();

    // A loopback webhook URL is refused by the server; its error is shown at the URL field.
    const url = page.getByLabel('Webhook URL');
    const secret = page.getByLabel('Webhook secret');
    assert.equal(await secret.getAttribute('type'), 'password');
    await url.fill('http://127.0.0.1:9/x');
    await page.getByRole('button', { name: 'Save webhook' }).click();
    await page.locator('#settings-webhook-url-error', { hasText: 'loopback' }).waitFor();
    assert.equal(await url.getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'settings-webhook-url');
    assert.equal((await graphql(server.base, token, '{ me { webhookUrl } }')).me.webhookUrl, null, 'nothing was saved');
    await screenshot(page, 'settings', { fullPage: true });

    // A secret that is too short: its error is at the secret field.
    await url.fill('https://hooks.example.com/taskstream');
    await secret.fill('short');
    await page.getByRole('button', { name: 'Save webhook' }).click();
    await page.locator('#settings-webhook-secret-error', { hasText: '16 to 256' }).waitFor();
    await page.locator('#settings-webhook-url-error').waitFor({ state: 'hidden' });
    await secret.fill('a-webhook-secret-of-some-length');
    await page.getByRole('button', { name: 'Save webhook' }).click();
    await page.locator('#settings-webhook-current', { hasText: 'https://hooks.example.com/taskstream' }).waitFor();
    assert.equal(await secret.inputValue(), '', 'the secret is write-only: never shown');
    assert.equal(await page.locator('#settings-webhook-secret-error').innerText(), '');
    assert.equal((await graphql(server.base, token, '{ me { webhookUrl } }')).me.webhookUrl,
      'https://hooks.example.com/taskstream');
    assert.ok(!(await page.content()).includes('a-webhook-secret-of-some-length'), 'the secret is nowhere on the page');

    // The settings fit a phone-width screen.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling in the settings (overflow ${overflow}px)`);
    await page.setViewportSize({ width: 1100, height: 900 });

    // The task list and the editor show and take times in New York's zone (06:00 EST).
    await page.getByRole('link', { name: 'Tasks' }).click();
    await bill.locator('.due', { hasText: 'Fri, 1 Mar 2030' }).filter({ hasText: '06:00' }).waitFor();
    await page.getByRole('button', { name: 'Edit “Pay the electricity bill”' }).click();
    const dialog = page.getByRole('dialog', { name: 'Edit task' });
    assert.equal(await dialog.getByLabel('Due date', { exact: true }).inputValue(), '2030-03-01');
    assert.equal(await dialog.getByLabel('Due time (America/New_York)').inputValue(), '06:00');
    // Summer time in New York: 09:00 EDT on 4 July is 13:00 UTC.
    await dialog.getByLabel('Due date', { exact: true }).fill('2030-07-04');
    await dialog.getByLabel('Due time (America/New_York)').fill('09:00');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    await bill.locator('.due', { hasText: 'Thu, 4 Jul 2030' }).filter({ hasText: '09:00' }).waitFor();
    const { tasks } = await graphql(server.base, token,
      '{ tasks(search: "electricity") { nodes { dueAt } } }');
    assert.equal(new Date(tasks.nodes[0].dueAt).toISOString(), '2030-07-04T13:00:00.000Z');

    // An empty URL turns webhooks off (null); the zone goes back to Berlin for the next tests.
    await page.getByRole('link', { name: 'Settings' }).first().click();
    await url.fill('');
    await page.getByLabel('Remove the stored secret').check();
    assert.equal(await secret.isDisabled(), true);
    await page.getByRole('button', { name: 'Save webhook' }).click();
    await page.locator('#settings-webhook-current', { hasText: 'Webhooks are off.' }).waitFor();
    await page.locator('#announcer', { hasText: 'Webhooks turned off. The secret is removed.' }).waitFor();
    assert.equal((await graphql(server.base, token, '{ me { webhookUrl } }')).me.webhookUrl, null);
    await zoneInput.fill('Europe/Berlin');
    await page.getByRole('button', { name: 'Save time zone' }).click();
    await page.locator('#zone-note', { hasText: 'times in Europe/Berlin' }).waitFor();
    await page.getByRole('link', { name: 'Tasks' }).click();
    await bill.locator('.due', { hasText: 'Thu, 4 Jul 2030' }).filter({ hasText: '15:00' }).waitFor();
  });

  it('fits a phone-width screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('link', { name: 'Tasks' }).click();
    await taskItem(page, 'Water the plants').first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling (overflow ${overflow}px)`);
    await screenshot(page, 'phone-list', { fullPage: true });
    await page.getByRole('button', { name: 'Edit “Water the plants”' }).first().click();
    const dialog = page.getByRole('dialog', { name: 'Edit task' });
    await dialog.locator('#task-recurrence-preview li').first().waitFor();
    const dialogOverflow = await dialog.evaluate((d) => d.scrollWidth - d.clientWidth);
    assert.ok(dialogOverflow <= 0, `the editor fits (overflow ${dialogOverflow}px)`);
    await screenshot(page, 'phone-edit');
    await page.keyboard.press('Escape');
    await page.setViewportSize({ width: 1100, height: 900 });
  });

  it('is usable with the keyboard alone', async () => {
    await page.goto(server.base);
    await taskItem(page, 'Water the plants').first().waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
    await page.getByRole('button', { name: 'New task' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'New task' });
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'task-title', 'the form opens on its title');
    await page.keyboard.type('Typed with the keyboard');
    await page.keyboard.press('Enter');
    await dialog.waitFor({ state: 'detached' });
    await taskItem(page, 'Typed with the keyboard').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'new-task', 'focus returns to the opener');
    assert.deepEqual(consoleErrors.filter((e) => !e.includes('status of 4')), [], 'no script errors');
  });

  it('pages through a long list with a cursor', async () => {
    const before = (await graphql(server.base, token, '{ tasks(filter: { completed: false }) { totalCount } }')).tasks.totalCount;
    const create = (i) => `t${i}: createTask(input: { title: "Bulk task ${String(i).padStart(2, '0')}" }) { id }`;
    // Two requests: one operation may hold at most 20 root fields (MAX_ROOT_FIELDS).
    for (const [from, to] of [[0, 13], [13, 25]]) {
      const creates = Array.from({ length: to - from }, (_, i) => create(from + i)).join('\n');
      await graphql(server.base, token, `mutation { ${creates} }`);
    }
    const total = before + 25;
    await page.locator('#result-count', { hasText: `Showing 20 of ${total} tasks` }).waitFor();
    await page.getByRole('button', { name: 'Load more' }).click();
    await page.locator('#result-count', { hasText: `Showing ${total} of ${total} tasks` }).waitFor();
    await page.getByRole('button', { name: 'Load more' }).waitFor({ state: 'hidden' });
    const shown = await titles(page);
    assert.equal(new Set(shown).size + 1, shown.length, 'no task twice (only the two open occurrences share a title)');
  });
});

describe('the web app with a configured signing key', () => {
  const SECRET = 'a-browser-test-secret-that-is-long-enough';
  let server;
  let browser;

  before(async () => {
    server = await startServer({ JWT_SECRET: SECRET });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('has no development token and signs in with a pasted token', async () => {
    const devToken = await fetch(`${server.base}/dev/token`);
    assert.equal(devToken.status, 404);
    const page = await browser.context.newPage();
    await page.goto(server.base);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Token', { exact: true }).fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#token-error').filter({ hasText: /\S/ }).waitFor();
    assert.equal(await page.getByLabel('Token', { exact: true }).getAttribute('aria-invalid'), 'true');
    await screenshot(page, 'sign-in');
    await page.getByLabel('Token', { exact: true }).fill(`Bearer ${hs256Token(SECRET, 'alice')}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#zone-note', { hasText: 'Signed in as alice' }).waitFor();
    await page.reload();
    await page.locator('#zone-note', { hasText: 'Signed in as alice' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  });
});


function hs256Token(secret, sub) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, iat: now, exp: now + 600 })}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}
