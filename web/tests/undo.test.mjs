// Browser tests of Undo in Debian's Chromium against the real taskstream binary in development
// mode: completing offers Undo (reopenTask); deleting hides the task at once and sends
// deleteTask only when the offer ends, or as the page is hidden; Undo before then shows the
// task again. The tests of the `describe` run in order and share one server and one user.

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
  const taskById = (id) => api('query($id: ID!) { task(id: $id) { id title completed } }', { id }).then((d) => d.task);

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

  it('deletes a task at once on screen, with Undo, and sends deleteTask only when the offer ends', async () => {
    const id = await createTask({ title: 'Sort the receipts' });
    const item = taskItem(page, 'Sort the receipts');
    await item.waitFor();
    const recorded = recordOperations(page);
    try {
      await item.getByRole('button', { name: 'Delete “Sort the receipts”' }).click();
      await item.waitFor({ state: 'detached' });
      const toast = page.locator('#undo-toast');
      await toast.filter({ hasText: 'Deleted “Sort the receipts”.' }).waitFor();
      await screenshot(page, 'undo-toast', { undoToast: true });
      assert.deepEqual(dialogs, [], 'no confirm()');
      assert.ok(await taskById(id), 'not deleted while Undo is offered');
      assert.ok(!recorded.names().includes('DeleteTask'));
      // Nobody touches the toast: after its time the deletion is sent.
      await waitFor('deleteTask is sent once the offer ends', () => recorded.names().includes('DeleteTask'), 15000);
      await toast.waitFor({ state: 'hidden' });
      await waitFor('the task is deleted', async () => !(await taskById(id)));
      assert.deepEqual(recorded.operations.filter((o) => o.name === 'DeleteTask').map((o) => o.variables), [{ id }]);
    } finally {
      recorded.stop();
    }
  });

  it('shows a deleted task again on Undo (the button or Ctrl+Z) and never deletes it', async () => {
    const keep = await createTask({ title: 'Keep this one' });
    const other = await createTask({ title: 'Delete this one' });
    const item = taskItem(page, 'Keep this one');
    await item.waitFor();
    const recorded = recordOperations(page);
    try {
      await item.getByRole('button', { name: 'Delete “Keep this one”' }).click();
      await item.waitFor({ state: 'detached' });
      await page.locator('#undo-toast').getByRole('button', { name: 'Undo' }).click();
      await item.waitFor();
      await page.locator('#announcer', { hasText: 'Restored “Keep this one”.' }).waitFor();
      // Again, undone from the keyboard this time (the focus is on "New task").
      await item.getByRole('button', { name: 'Delete “Keep this one”' }).click();
      await item.waitFor({ state: 'detached' });
      await page.keyboard.press('Control+z');
      await item.waitFor();
      // Another deletion, dismissed: once it is sent, the offers before it have long ended.
      await taskItem(page, 'Delete this one').getByRole('button', { name: 'Delete “Delete this one”' }).click();
      await page.locator('#undo-toast').getByRole('button', { name: 'Dismiss' }).click();
      await waitFor('the dismissed deletion is sent', () => recorded.names().includes('DeleteTask'));
      assert.deepEqual(recorded.operations.filter((o) => o.name === 'DeleteTask').map((o) => o.variables), [{ id: other }]);
      assert.ok(await taskById(keep), 'the undone task still exists');
      await waitFor('the dismissed task is deleted', async () => !(await taskById(other)));
    } finally {
      recorded.stop();
    }
  });

  it('sends a deletion still waiting for its Undo when the page is hidden', async () => {
    const hidden = await createTask({ title: 'Gone when the tab hides' });
    const left = await createTask({ title: 'Gone when the page is left' });
    await taskItem(page, 'Gone when the page is left').waitFor();
    await taskItem(page, 'Gone when the tab hides').getByRole('button', { name: 'Delete “Gone when the tab hides”' }).click();
    // The tab goes to the background (another tab, a minimised window).
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
      delete document.visibilityState;
    });
    await waitFor('the deletion was sent as the tab hid', async () => !(await taskById(hidden)));
    await page.locator('#undo-toast').waitFor({ state: 'hidden' });
    // The page is left for another one, seconds before the offer would end.
    await taskItem(page, 'Gone when the page is left').getByRole('button', { name: 'Delete “Gone when the page is left”' }).click();
    await page.locator('#undo-toast', { hasText: 'Gone when the page is left' }).waitFor();
    await page.goto('about:blank');
    await waitFor('the deletion was sent as the page went away', async () => !(await taskById(left)));
    await page.goto(server.base);
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
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
