// Browser tests of a task's history and the deleted tasks in Debian's Chromium against the real
// taskstream binary in development mode: the history panel (versions newest first, in words and
// in the user's zone, paged with "Show older", the occurrence a recurrence rule started from),
// and Recently deleted (live, restore back into the list, a refused restore said in words). The
// tests of the `describe` run in order and share one server and one user, whose zone is New York.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, waitFor, screenshot, graphql } from './harness.mjs';

function taskItem(page, title) {
  return page.locator('#task-list .task').filter({ has: page.getByRole('button', { name: `Edit “${title}”`, exact: true }) });
}

function deletedItem(page, title) {
  return page.locator('#deleted-list .task').filter({ has: page.locator('.title', { hasText: title }) });
}

/** The history panel's versions as they read: [{kind, time, cause, changes}]. */
function versions(page) {
  return page.locator('#history-list > .version').evaluateAll((items) => items.map((item) => ({
    kind: item.querySelector('.kind').textContent,
    time: item.querySelector('time').textContent,
    cause: item.querySelector('.cause')?.firstChild.textContent ?? null,
    changes: [...item.querySelectorAll('.changes > li')].map((li) => li.textContent),
  })));
}

describe('Task history and deleted tasks in the web app', () => {
  let server;
  let browser;
  let page;
  let token;
  const api = (query, variables) => graphql(server.base, token, query, variables);
  const createTask = (input) => api('mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }', { input })
    .then((data) => data.createTask.id);
  const updateTask = (id, input) => api('mutation($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { id } }',
    { id, input });
  const deleteTask = (id) => api('mutation($id: ID!) { deleteTask(id: $id) }', { id });
  const history = () => page.getByRole('dialog', { name: /^History of/ });

  /** Opens task `id` in the editor through its link, then its history. */
  async function openHistoryOf(id, title) {
    await page.evaluate((hash) => { location.hash = hash; }, `#/tasks/${id}`);
    const editor = page.getByRole('dialog', { name: 'Edit task' });
    await editor.getByRole('button', { name: 'History' }).click();
    await history().getByRole('heading', { name: `History of “${title}”` }).waitFor();
    await page.locator('#history-status', { hasText: 'Newest first' }).waitFor();
    return editor;
  }

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    page = await browser.context.newPage();
    await page.goto(server.base);
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    token = await page.evaluate(() => localStorage.getItem('taskstream.token'));
    // Not the browser's zone (Berlin): times are said in the user's.
    await api('mutation { updateSettings(input: { timezone: "America/New_York" }) { timezone } }');
    await page.reload();
    await page.locator('#zone-link', { hasText: 'America/New_York' }).waitFor();
    await waitFor('the live connection is up', () => page.evaluate(() => document.body.dataset.live === 'live'));
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  afterEach(async () => {
    // The history panel stacks on the editor: both go.
    await page.evaluate(() => document.querySelectorAll('dialog[open]').forEach((d) => d.remove()));
  });

  it('shows every version of a task newest first, in words: edits, a tags change and a completion', async () => {
    const id = await createTask({ title: 'Pay rent', tags: ['home'], dueAt: '2030-03-01T14:00:00Z' });
    await page.getByRole('button', { name: 'Edit “Pay rent”' }).click();
    const editor = page.getByRole('dialog', { name: 'Edit task' });
    await editor.getByLabel('Title').fill('Pay the rent');
    await editor.getByLabel('Add a tag').fill('money');
    await editor.getByLabel('Add a tag').press('Enter');
    await editor.getByLabel('Repeats').selectOption('monthly-day');
    await editor.getByRole('button', { name: 'Add reminder' }).click();
    await editor.getByRole('button', { name: 'Save' }).click();
    await editor.waitFor({ state: 'detached' });
    await taskItem(page, 'Pay the rent').getByRole('checkbox', { name: 'Complete “Pay the rent”' }).click();
    await page.locator('#undo-toast', { hasText: 'Completed “Pay the rent”.' }).waitFor();

    const reopened = await openHistoryOf(id, 'Pay the rent');
    const shown = await versions(page);
    assert.deepEqual(shown.map((v) => v.kind), ['Completed', 'Edited', 'Created']);
    for (const v of shown) assert.match(v.time, /^today at \d\d:\d\d$/);
    assert.deepEqual(shown[0].changes, [], 'the kind says it');
    assert.deepEqual(shown[1].changes, [
      'Title: Pay rent → Pay the rent',
      'Tags: home → home, money',
      'Repeat: none → monthly on day 1',
      'Reminders: none → 30 minutes before due',
    ]);
    // 14:00 UTC is 09:00 in New York.
    assert.deepEqual(shown[2].changes, ['Title: Pay rent', 'Due date: Fri 1 Mar 2030 at 09:00', 'Tags: home']);
    assert.equal(await page.locator('#history-older').isHidden(), true, 'one page holds them all');
    await screenshot(page, 'history');
    // Escape closes the panel, back to the editor it was opened from.
    await page.keyboard.press('Escape');
    await history().waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'task-history');
    await reopened.getByRole('button', { name: 'Cancel' }).click();
  });

  it('pages the history with “Show older” when a task has more versions than a page', async () => {
    const id = await createTask({ title: 'Count the sheep' });
    for (let n = 1; n <= 24; n += 1) await updateTask(id, { description: `Counted ${n}` });
    await openHistoryOf(id, 'Count the sheep');
    const list = page.locator('#history-list > .version');
    assert.equal(await list.count(), 20);
    await page.locator('#history-status', { hasText: 'Newest first: 20 versions, older ones under “Show older”.' }).waitFor();
    assert.deepEqual((await versions(page))[0].changes, ['Description: Counted 23 → Counted 24']);
    await page.getByRole('button', { name: 'Show older' }).click();
    await page.locator('#history-status', { hasText: 'Newest first: 25 versions.' }).waitFor();
    const shown = await versions(page);
    assert.deepEqual(shown.map((v) => v.kind), [...Array(24).fill('Edited'), 'Created']);
    assert.deepEqual(shown[20].changes, ['Description: Counted 3 → Counted 4']);
    assert.deepEqual(shown[24].changes, ['Title: Count the sheep']);
    await page.locator('#history-older').waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement.dataset.version), '5', 'the first older version has the focus');
  });

  it('names the occurrence a recurrence rule created a task from, and shows its history', async () => {
    const first = await createTask({ title: 'Water the plants', dueAt: '2030-03-04T14:00:00Z',
      recurrence: { rule: 'FREQ=WEEKLY' } });
    await api('mutation($id: ID!) { completeTask(id: $id) { id } }', { id: first });
    const next = await waitFor('the recurrence subscriber creates the next occurrence', async () =>
      (await api('query($id: ID!) { task(id: $id) { nextOccurrence { id } } }', { id: first })).task.nextOccurrence?.id, 60000);
    await openHistoryOf(next, 'Water the plants');
    const [created] = await versions(page);
    assert.equal(created.kind, 'Created');
    assert.equal(created.cause, 'Created by the recurrence rule from “Water the plants”, due Mon 4 Mar 2030 at 09:00.');
    await history().getByRole('button', { name: 'Show the history of “Water the plants”' }).click();
    await page.locator('#history-status', { hasText: 'Newest first: 2 versions.' }).waitFor();
    assert.deepEqual((await versions(page)).map((v) => v.kind), ['Completed', 'Created']);
    await history().getByRole('button', { name: 'Back to “Water the plants”' }).click();
    await page.locator('#history-status', { hasText: 'Newest first: 1 version.' }).waitFor();
    assert.equal((await versions(page))[0].cause, created.cause);
  });

  it('lists deleted tasks live and restores one, back in the list with its tags', async () => {
    const passport = await createTask({ title: 'Renew the passport', tags: ['papers'], dueAt: '2030-05-01T14:00:00Z' });
    const gym = await createTask({ title: 'Cancel the gym' });
    await deleteTask(passport);
    await deleteTask(gym);
    await page.evaluate(() => { location.hash = '#/tasks'; });
    await page.getByRole('link', { name: 'Recently deleted' }).click();
    await page.getByRole('heading', { name: 'Recently deleted', level: 1 }).waitFor();
    assert.equal(await page.title(), 'Recently deleted · Taskstream');
    const titles = () => page.locator('#deleted-list .task .title').allTextContents();
    await waitFor('the deleted tasks are listed, most recently deleted first', async () =>
      (await titles()).join() === 'Cancel the gym,Renew the passport');
    const row = deletedItem(page, 'Renew the passport');
    await row.locator('.deleted-at', { hasText: /^Deleted today at \d\d:\d\d$/ }).waitFor();
    await row.locator('.tag', { hasText: 'papers' }).waitFor();
    await screenshot(page, 'deleted');

    // Its history ends with the deletion.
    await row.getByRole('button', { name: 'History of “Renew the passport”' }).click();
    await page.locator('#history-status', { hasText: 'Newest first: 2 versions.' }).waitFor();
    assert.deepEqual((await versions(page)).map((v) => v.kind), ['Deleted', 'Created']);
    await history().getByRole('button', { name: 'Close' }).click();

    // Live: a task deleted elsewhere comes on top.
    const elsewhere = await createTask({ title: 'Deleted in another tab' });
    await deleteTask(elsewhere);
    await waitFor('the deletion made elsewhere is listed on top', async () => (await titles())[0] === 'Deleted in another tab');

    await row.getByRole('button', { name: 'Restore “Renew the passport”' }).click();
    await row.waitFor({ state: 'detached' });
    await page.locator('#announcer', { hasText: 'Restored “Renew the passport”: it is back in your tasks.' }).waitFor();
    await page.getByRole('link', { name: 'Back to tasks' }).click();
    await taskItem(page, 'Renew the passport').locator('.tag', { hasText: 'papers' }).waitFor();
  });

  it('says in words why a restore failed when the task was restored elsewhere meanwhile', async () => {
    // This page's live updates are held back, so it cannot know of the restore made elsewhere.
    const stale = await browser.context.newPage();
    let holdLive = false;
    await stale.routeWebSocket(/\/graphql\/ws$/, (ws) => {
      const upstream = ws.connectToServer();
      ws.onMessage((message) => upstream.send(message));
      upstream.onMessage((message) => {
        if (!(holdLive && String(message).includes('taskChanged'))) ws.send(message);
      });
    });
    try {
      const id = await createTask({ title: 'Restored in two places' });
      await deleteTask(id);
      await stale.goto(`${server.base}/#/deleted`);
      const row = deletedItem(stale, 'Restored in two places');
      await row.waitFor();
      holdLive = true;
      await api('mutation($id: ID!) { restoreTask(id: $id) { id } }', { id });
      await row.getByRole('button', { name: 'Restore “Restored in two places”' }).click();
      await row.locator('.field-error', { hasText: 'This task is not deleted any more.' }).waitFor();
      await stale.locator('#announcer[data-kind="error"]',
        { hasText: '“Restored in two places” was not restored: This task is not deleted any more.' }).waitFor();
    } finally {
      await stale.close();
    }
  });
});
