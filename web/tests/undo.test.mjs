// Browser tests of Undo in Debian's Chromium against the real taskstream binary in development
// mode: completing offers Undo (reopenTask); deleting is sent at once and offers Undo, which
// restores the task (restoreTask) with its tags; an offer that ends leaves it deleted; a
// restore the server refuses is said in words. The tests of the `describe` run in order and
// share one server and one user.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, waitFor, screenshot, graphql } from './harness.mjs';

function taskItem(page, title) {
  return page.locator('#task-list .task').filter({ has: page.getByRole('button', { name: `Edit “${title}”`, exact: true }) });
}

/** Records the GraphQL operations `page` sends: [{name, variables}], until stop(). */
function recordOperations(page) {
  const operations = [];
  const onRequest = (request) => {
    if (request.method() !== 'POST' || new URL(request.url()).pathname !== '/graphql') return;
    const body = request.postDataJSON() || {};
    operations.push({ name: /^\s*(?:query|mutation)\s+(\w+)/.exec(body.query || '')?.[1], variables: body.variables });
  };
  page.on('request', onRequest);
  return { operations, names: () => operations.map((o) => o.name), stop: () => page.off('request', onRequest) };
}

describe('Undo in the web app', () => {
  let server;
  let browser;
  let page;
  let token;
  /** Every confirm() or alert() the page opened: there must be none. */
  const dialogs = [];
  const api = (query, variables) => graphql(server.base, token, query, variables);
  const createTask = (input) => api('mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }', { input })
    .then((data) => data.createTask.id);
  const taskById = (id) => api('query($id: ID!) { task(id: $id) { id title completed tags { name } } }', { id })
    .then((d) => d.task);
  const undoButton = () => page.locator('#undo-toast').getByRole('button', { name: 'Undo' });

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
    await page.goto(server.base);
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    token = await page.evaluate(() => localStorage.getItem('taskstream.token'));
    await waitFor('the live connection is up', () => page.evaluate(() => document.body.dataset.live === 'live'));
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  afterEach(async () => {
    for (const open of await page.locator('dialog[open]').all()) await open.evaluate((d) => d.remove());
  });

  it('offers Undo after completing a task, and Undo reopens it', async () => {
    const id = await createTask({ title: 'Water the ferns' });
    const item = taskItem(page, 'Water the ferns');
    await item.getByRole('checkbox', { name: 'Complete “Water the ferns”' }).click();
    const toast = page.locator('#undo-toast');
    await toast.filter({ hasText: 'Completed “Water the ferns”.' }).waitFor();
    await item.waitFor({ state: 'detached' });
    assert.equal((await taskById(id)).completed, true, 'completing is sent at once');
    await toast.getByRole('button', { name: 'Undo' }).click();
    await toast.waitFor({ state: 'hidden' });
    await item.waitFor();
    await page.locator('#announcer', { hasText: 'Reopened “Water the ferns”.' }).waitFor();
    await waitFor('the task is open again', async () => !(await taskById(id)).completed);
  });

  it('deletes a task at once, with Undo, and Undo restores it with its tags', async () => {
    const id = await createTask({ title: 'Sort the receipts', tags: ['home', 'money'] });
    const item = taskItem(page, 'Sort the receipts');
    await item.locator('.tag', { hasText: 'money' }).waitFor();
    const recorded = recordOperations(page);
    try {
      await item.getByRole('button', { name: 'Delete “Sort the receipts”' }).click();
      await item.waitFor({ state: 'detached' });
      const toast = page.locator('#undo-toast');
      await toast.filter({ hasText: 'Deleted “Sort the receipts”.' }).waitFor();
      await screenshot(page, 'undo-toast', { undoToast: true });
      assert.deepEqual(dialogs, [], 'no confirm()');
      assert.equal(await taskById(id), null, 'deleted at once, while Undo is offered');
      await undoButton().click();
      await toast.waitFor({ state: 'hidden' });
      await item.locator('.tag', { hasText: 'money' }).waitFor();
      await page.locator('#announcer', { hasText: 'Restored “Sort the receipts”.' }).waitFor();
      const restored = await taskById(id);
      assert.deepEqual(restored.tags.map((t) => t.name), ['home', 'money']);
      assert.deepEqual(recorded.operations.filter((o) => ['DeleteTask', 'RestoreTask'].includes(o.name)),
        [{ name: 'DeleteTask', variables: { id } }, { name: 'RestoreTask', variables: { id } }]);
      assert.equal(await item.count(), 1, 'listed once, though the live event of the restore came too');
    } finally {
      recorded.stop();
    }
  });

  it('undoes a deletion from the keyboard, and leaves a task deleted once its offer ends', async () => {
    const keep = await createTask({ title: 'Keep this one' });
    const other = await createTask({ title: 'Delete this one' });
    const item = taskItem(page, 'Keep this one');
    await item.waitFor();
    const recorded = recordOperations(page);
    try {
      // Undone from the keyboard (the focus is on "New task").
      await item.getByRole('button', { name: 'Delete “Keep this one”' }).click();
      await item.waitFor({ state: 'detached' });
      await page.keyboard.press('Control+z');
      await item.waitFor();
      await waitFor('the task exists again', async () => Boolean(await taskById(keep)));
      // Another deletion, dismissed: nothing more is sent, and it stays deleted.
      await taskItem(page, 'Delete this one').getByRole('button', { name: 'Delete “Delete this one”' }).click();
      await page.locator('#undo-toast', { hasText: 'Deleted “Delete this one”.' }).waitFor();
      await page.locator('#undo-toast').getByRole('button', { name: 'Dismiss' }).click();
      await page.locator('#undo-toast').waitFor({ state: 'hidden' });
      assert.equal(await taskById(other), null);
      assert.deepEqual(recorded.names().filter((n) => n === 'DeleteTask' || n === 'RestoreTask'),
        ['DeleteTask', 'RestoreTask', 'DeleteTask']);
      await taskItem(page, 'Delete this one').waitFor({ state: 'detached' });
    } finally {
      recorded.stop();
    }
  });

  it('says in words why Undo could not restore a task restored elsewhere meanwhile', async () => {
    const id = await createTask({ title: 'Restored twice' });
    const item = taskItem(page, 'Restored twice');
    await item.getByRole('button', { name: 'Delete “Restored twice”' }).click();
    const toast = page.locator('#undo-toast', { hasText: 'Deleted “Restored twice”.' });
    await toast.waitFor();
    // The pointer on the toast holds the offer while another client restores the task.
    await toast.hover();
    await api('mutation($id: ID!) { restoreTask(id: $id) { id } }', { id });
    await item.waitFor();
    await undoButton().click();
    await page.locator('#announcer[data-kind="error"]',
      { hasText: '“Restored twice” was not restored: This task is not deleted any more.' }).waitFor();
    assert.equal(await item.count(), 1);
    assert.ok(await taskById(id));
  });

  it('offers Undo instead of confirm() when deleting in the editor', async () => {
    const id = await createTask({ title: 'Edit then delete' });
    await page.getByRole('button', { name: 'Edit “Edit then delete”' }).click();
    const dialog = page.getByRole('dialog', { name: 'Edit task' });
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('#undo-toast', { hasText: 'Deleted “Edit then delete”.' }).waitFor();
    await taskItem(page, 'Edit then delete').waitFor({ state: 'detached' });
    assert.deepEqual(dialogs, []);
    await page.locator('#undo-toast').getByRole('button', { name: 'Undo' }).click();
    await taskItem(page, 'Edit then delete').waitFor();
    assert.ok(await taskById(id));
  });
});
