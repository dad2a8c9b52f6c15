// Unit tests of the app's data layer (no browser, no server): the GraphQL documents against
// schema.graphql, the priority table, and the task, deleted task, tag and notification stores
// with a fake API whose answers each test gives, in the order it chooses.

import { describe, it, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buildSchema, parse, validate } from 'graphql';
import { REPO } from './harness.mjs';
import * as operations from '../app/operations.js';
import { PRIORITIES, priority } from '../app/priority.js';
import { createTaskStore, matchesFilter, compareTasks } from '../app/task_store.js';
import { createDeletedStore } from '../app/deleted_store.js';
import { PAGE } from '../app/store.js';
import { createTagStore } from '../app/tag_store.js';
import { createNotificationStore } from '../app/notification_store.js';

const schema = buildSchema(fs.readFileSync(path.join(REPO, 'schema.graphql'), 'utf8'));
const OPEN = { filter: { completed: false }, search: null, sort: null };

/** A request function that records each call; the test answers it (resolve/reject) when it likes. */
function fakeApi() {
  const calls = [];
  const request = (document, variables = {}) => new Promise((resolve, reject) => {
    const name = /^\s*(?:query|mutation)\s+(\w+)/.exec(document)[1];
    calls.push({ name, variables, resolve, reject });
  });
  return { calls, request, names: () => calls.map((c) => c.name) };
}

/** Lets the answers given so far reach the stores. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Task `n`: the higher `n`, the newer (created `n` microseconds after the others' minute). */
function task(n, fields = {}) {
  const at = `2026-01-01T00:00:00.${String(n).padStart(6, '0')}+00:00`;
  return {
    id: `00000000-0000-7000-8000-${String(n).padStart(12, '0')}`, title: `Task ${n}`, description: '',
    priority: 'NONE', completed: false, completedAt: null, dueAt: null, createdAt: at, updatedAt: at, version: 1,
    tags: [], recurrence: null, reminders: [], seriesId: null, previousOccurrence: null, nextOccurrence: null,
    ...fields,
  };
}

/** A TaskList answer listing `tasks`. */
function taskPage(tasks, { hasNextPage = false, totalCount = tasks.length, open = totalCount, overdue = 0 } = {}) {
  return {
    tasks: {
      totalCount,
      pageInfo: { hasNextPage, endCursor: tasks.length ? `cursor-${tasks.at(-1).id}` : null },
      edges: tasks.map((t) => ({ cursor: `cursor-${t.id}`, node: t })),
    },
    open: { totalCount: open },
    overdue: { totalCount: overdue },
  };
}

/** A watched task store that has loaded `tasks` for `query`. */
async function loadedTasks(tasks, counts = {}, query = OPEN) {
  const api = fakeApi();
  const store = createTaskStore({ request: api.request });
  store.watch();
  const done = store.setQuery(query);
  api.calls[0].resolve(taskPage(tasks, counts));
  await done;
  return { api, store };
}

const titles = (store) => store.getState().items.map((t) => t.title);
const counts = (store) => {
  const { totalCount, open, overdue } = store.getState();
  return { totalCount, open, overdue };
};

describe('the GraphQL documents', () => {
  it('are named operations that the schema validates, with exactly the fragments they use', () => {
    const names = new Set();
    for (const [constant, text] of Object.entries(operations)) {
      const document = parse(text);
      const [operation, ...fragments] = document.definitions;
      assert.equal(operation.kind, 'OperationDefinition', constant);
      assert.ok(operation.name, `${constant} is named`);
      assert.ok(!names.has(operation.name.value), `${operation.name.value} is one operation`);
      names.add(operation.name.value);
      assert.ok(fragments.every((f) => f.kind === 'FragmentDefinition'), `${constant}: one operation`);
      assert.deepEqual(validate(schema, document).map(String), [], constant);
    }
  });

  it('are nowhere else in the app', () => {
    const app = path.join(REPO, 'web', 'app');
    // A string that starts like a document: `query…`, 'mutation(…', '{ me { …'.
    const graphql = /[`'"](?:(?:query|mutation|subscription)\b|\s*\{\s*\w+\s*[({])/;
    for (const file of fs.readdirSync(app).filter((f) => f.endsWith('.js') && f !== 'operations.js')) {
      const lines = fs.readFileSync(path.join(app, file), 'utf8').split('\n');
      assert.deepEqual(lines.filter((line) => graphql.test(line)), [], file);
    }
  });
});

describe('the priority table', () => {
  it('follows the schema\'s Priority enum, lowest rank first', () => {
    assert.deepEqual(PRIORITIES.map((p) => p.name), schema.getType('Priority').getValues().map((v) => v.name));
    assert.deepEqual(PRIORITIES.map((p) => p.rank), [0, 1, 2, 3, 4]);
    assert.deepEqual(priority('HIGH'), { name: 'HIGH', key: 'high', label: 'High', rank: 3, className: 'prio-high' });
    assert.equal(priority('SOMETHING').name, 'NONE');
  });
});

describe('task filters and order, as the server decides them', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');

  it('match every set field, tag names case-insensitively, due bounds never an undated task', () => {
    const t = task(1, { priority: 'HIGH', dueAt: '2029-12-31T23:00:00.000001+00:00', tags: [{ id: 'a', name: 'Home' }] });
    assert.ok(matchesFilter(null, t, now));
    assert.ok(matchesFilter({ completed: false, priority: ['HIGH', 'LOW'], minPriority: 'MEDIUM' }, t, now));
    assert.ok(matchesFilter({ tags: { any: [' home', 'work'], all: ['HOME'], none: ['work'] } }, t, now));
    assert.ok(!matchesFilter({ tags: { none: ['home'] } }, t, now));
    assert.ok(matchesFilter({ overdue: true, hasDueDate: true, recurring: false }, t, now));
    assert.ok(matchesFilter({ dueAfter: '2029-12-31T23:00:00.000001Z' }, t, now), 'inclusive, to the microsecond');
    assert.ok(!matchesFilter({ dueAfter: '2029-12-31T23:00:00.000002Z' }, t, now));
    assert.ok(!matchesFilter({ dueBefore: '2029-12-31T23:00:00.000001Z' }, t, now), 'exclusive');
    assert.ok(!matchesFilter({ dueBefore: '2040-01-01T00:00:00Z' }, task(2), now), 'undated');
    assert.ok(matchesFilter({ not: { dueBefore: '2040-01-01T00:00:00Z' } }, task(2), now));
    assert.ok(matchesFilter({ or: [{ completed: true }, { priority: ['HIGH'] }], and: [{ overdue: true }] }, t, now));
    assert.ok(!matchesFilter({ overdue: true }, { ...t, completed: true }, now));
  });

  it('order by the keys, undated last in both directions, ties by id in the last key\'s direction', () => {
    const due = (n, dueAt) => task(n, { dueAt });
    const tasks = [due(1, null), due(2, '2030-01-02T00:00:00Z'), due(3, '2030-01-01T00:00:00Z'), due(4, '2030-01-01T00:00:00Z')];
    const order = (sort) => tasks.slice().sort((a, b) => compareTasks(a, b, sort)).map((t) => t.title);
    assert.deepEqual(order([{ field: 'DUE_AT', direction: 'ASC' }]), ['Task 3', 'Task 4', 'Task 2', 'Task 1']);
    assert.deepEqual(order([{ field: 'DUE_AT', direction: 'DESC' }]), ['Task 2', 'Task 4', 'Task 3', 'Task 1']);
    assert.deepEqual(order([{ field: 'CREATED_AT', direction: 'DESC' }]), ['Task 4', 'Task 3', 'Task 2', 'Task 1'],
      'microseconds apart');
    assert.deepEqual(order([{ field: 'PRIORITY', direction: 'ASC' }]), ['Task 1', 'Task 2', 'Task 3', 'Task 4']);
  });
});

describe('the task store', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('drops an older answer that arrives after a newer one', async () => {
    const api = fakeApi();
    const store = createTaskStore({ request: api.request });
    const first = store.setQuery(OPEN);
    const second = store.setQuery({ ...OPEN, search: 'newer' });
    api.calls[1].resolve(taskPage([task(2, { title: 'Newer' })]));
    await second;
    api.calls[0].resolve(taskPage([task(1, { title: 'Older' })]));
    await first;
    assert.deepEqual(titles(store), ['Newer']);
    assert.equal(store.getState().loading, false);
  });

  it('patches an updated task in place, without a request, once', async () => {
    const { api, store } = await loadedTasks([task(3), task(2), task(1)]);
    const renamed = task(2, { title: 'Renamed', priority: 'URGENT', version: 2 });
    assert.equal(store.applyChange({ kind: 'UPDATED', taskId: renamed.id, task: renamed }), 'applied');
    assert.deepEqual(titles(store), ['Task 3', 'Renamed', 'Task 1']);
    assert.deepEqual(counts(store), { totalCount: 3, open: 3, overdue: 0 });
    assert.equal(store.applyChange({ kind: 'UPDATED', taskId: renamed.id, task: renamed }), 'ignored', 'seen');
    assert.equal(store.applyChange({ kind: 'UPDATED', taskId: renamed.id, task: task(2, { title: 'Old' }) }), 'ignored',
      'older');
    mock.timers.tick(1000);
    assert.deepEqual(api.names(), ['TaskList']);
  });

  it('removes a completed or deleted task and moves the counts by the difference', async () => {
    const late = task(2, { dueAt: '2020-01-01T00:00:00+00:00' });
    const { api, store } = await loadedTasks([task(3), late, task(1)], { overdue: 1 });
    const done = { ...late, completed: true, version: 2 };
    assert.equal(store.applyChange({ kind: 'COMPLETED', taskId: late.id, task: done }), 'applied');
    assert.deepEqual(titles(store), ['Task 3', 'Task 1']);
    assert.deepEqual(counts(store), { totalCount: 2, open: 2, overdue: 0 });
    assert.equal(store.applyChange({ kind: 'DELETED', taskId: task(1).id, task: null }), 'applied');
    assert.deepEqual(titles(store), ['Task 3']);
    assert.deepEqual(counts(store), { totalCount: 1, open: 1, overdue: 0 });
    assert.equal(store.applyChange({ kind: 'UPDATED', taskId: task(1).id, task: task(1, { version: 9 }) }), 'ignored',
      'deleted');
    // Reopened: back in its place, though the store no longer held it.
    assert.equal(store.applyChange({ kind: 'REOPENED', taskId: late.id, task: { ...late, version: 3 } }), 'applied');
    assert.deepEqual(titles(store), ['Task 3', 'Task 2']);
    assert.deepEqual(counts(store), { totalCount: 2, open: 2, overdue: 1 });
    mock.timers.tick(1000);
    assert.deepEqual(api.names(), ['TaskList']);
  });

  it('inserts a created task in its place when it matches the filter, and counts it either way', async () => {
    const query = { filter: { completed: false, tags: { any: ['home'] } }, search: null, sort: [{ field: 'DUE_AT', direction: 'ASC' }] };
    const home = [{ id: 'h', name: 'Home', color: null }];
    const { api, store } = await loadedTasks([
      task(1, { dueAt: '2040-01-01T00:00:00+00:00', tags: home }),
      task(2, { dueAt: '2040-03-01T00:00:00+00:00', tags: home }),
      task(3, { tags: home }),
    ], { open: 5 }, query);
    const between = task(4, { dueAt: '2040-02-01T00:00:00+00:00', tags: home });
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: between.id, task: between }), 'applied');
    assert.deepEqual(titles(store), ['Task 1', 'Task 4', 'Task 2', 'Task 3']);
    assert.deepEqual(counts(store), { totalCount: 4, open: 6, overdue: 0 });
    const elsewhere = task(5, { dueAt: '2040-02-01T00:00:00+00:00' });
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: elsewhere.id, task: elsewhere }), 'applied');
    assert.deepEqual(titles(store), ['Task 1', 'Task 4', 'Task 2', 'Task 3'], 'no home tag: not listed');
    assert.deepEqual(counts(store), { totalCount: 4, open: 7, overdue: 0 });
    mock.timers.tick(1000);
    assert.deepEqual(api.names(), ['TaskList']);
  });

  it('leaves a task that sorts after the last listed one to the pages not loaded yet', async () => {
    const oldestFirst = { ...OPEN, sort: [{ field: 'CREATED_AT', direction: 'ASC' }] };
    const { store } = await loadedTasks([task(1), task(2)], { hasNextPage: true, totalCount: 5 }, oldestFirst);
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: task(9).id, task: task(9) }), 'applied');
    assert.deepEqual(titles(store), ['Task 1', 'Task 2']);
    assert.equal(store.getState().totalCount, 6);
  });

  it('pages: "Load more" appends the tasks after the end cursor', async () => {
    const first = Array.from({ length: PAGE }, (_, i) => task(100 - i));
    const { api, store } = await loadedTasks(first, { hasNextPage: true, totalCount: 24 });
    const more = store.loadMore();
    assert.deepEqual(api.calls[1].variables, { ...OPEN, first: PAGE, after: `cursor-${task(81).id}` });
    // One of them is listed already (it moved): it is not shown twice.
    api.calls[1].resolve(taskPage([task(81), task(80), task(79), task(78), task(77)], { totalCount: 24 }));
    await more;
    assert.equal(store.getState().items.length, 24);
    assert.deepEqual(titles(store).slice(-4), ['Task 80', 'Task 79', 'Task 78', 'Task 77']);
    assert.equal(store.getState().pageInfo.hasNextPage, false);
  });

  it('gives the last task of a full page to the next page when a new one comes on top', async () => {
    const first = Array.from({ length: PAGE }, (_, i) => task(100 - i));
    const { api, store } = await loadedTasks(first, { hasNextPage: true, totalCount: 30 });
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: task(200).id, task: task(200) }), 'applied');
    assert.equal(store.getState().items.length, PAGE);
    assert.deepEqual(titles(store).slice(0, 2), ['Task 200', 'Task 100']);
    assert.equal(store.getState().totalCount, 31);
    store.loadMore();
    assert.equal(api.calls[1].variables.after, `cursor-${task(82).id}`, 'the next page starts after the new last one');
  });

  it('brings up the next task when one leaves a full page', async () => {
    const first = Array.from({ length: PAGE }, (_, i) => task(100 - i));
    const { api, store } = await loadedTasks(first, { hasNextPage: true, totalCount: 30 });
    const done = task(90, { completed: true, version: 2 });
    assert.equal(store.applyChange({ kind: 'COMPLETED', taskId: done.id, task: done }), 'applied');
    assert.equal(store.getState().items.length, PAGE - 1);
    mock.timers.tick(150);
    assert.deepEqual(api.calls[1].variables, { ...OPEN, first: 1, after: `cursor-${task(81).id}` });
  });

  it('refetches once, debounced, what it cannot decide', async () => {
    const { api, store } = await loadedTasks([task(2), task(1)], {}, { ...OPEN, search: 'water' });
    // Whether a new task matches the search words only the server knows.
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: task(3).id, task: task(3) }), 'refetch');
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: task(4).id, task: task(4) }), 'refetch');
    mock.timers.tick(149);
    assert.deepEqual(api.names(), ['TaskList']);
    mock.timers.tick(1);
    assert.deepEqual(api.names(), ['TaskList', 'TaskList']);
    assert.deepEqual(api.calls[1].variables, { ...OPEN, search: 'water', first: PAGE, after: null });
  });

  it('applies nothing before it has loaded, and refetches nothing while no view shows the list', async () => {
    const api = fakeApi();
    const store = createTaskStore({ request: api.request });
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: task(3).id, task: task(3) }), 'ignored');
    const loading = store.setQuery({ ...OPEN, search: 'water' });
    api.calls[0].resolve(taskPage([task(1)]));
    await loading;
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: task(4).id, task: task(4) }), 'refetch');
    mock.timers.tick(1000);
    assert.deepEqual(api.names(), ['TaskList']);
  });

  it('loads again when a change arrives while its answer is on the way', async () => {
    const { api, store } = await loadedTasks([task(2), task(1)]);
    const reload = store.load();
    const renamed = task(1, { title: 'Renamed', version: 2 });
    store.applyChange({ kind: 'UPDATED', taskId: renamed.id, task: renamed });
    // The answer was computed before the change.
    api.calls[1].resolve(taskPage([task(2), task(1)]));
    await reload;
    mock.timers.tick(150);
    assert.deepEqual(api.names(), ['TaskList', 'TaskList', 'TaskList']);
  });

  it('links a new occurrence to the one it follows', async () => {
    const rule = { rule: 'FREQ=DAILY', timezone: 'UTC', anchor: 'SCHEDULE' };
    const { store } = await loadedTasks([task(1, { completed: true, recurrence: rule })], {},
      { filter: null, search: null, sort: null });
    const next = task(2, { recurrence: rule, dueAt: '2030-01-02T00:00:00+00:00', previousOccurrence: { id: task(1).id } });
    store.applyChange({ kind: 'CREATED', taskId: next.id, task: next });
    assert.deepEqual(titles(store), ['Task 2', 'Task 1']);
    assert.deepEqual(store.getState().items[1].nextOccurrence, { id: next.id, dueAt: next.dueAt, completed: false });
  });

  it('applies the answers of its own mutations, and their events once', async () => {
    const { api, store } = await loadedTasks([task(2), task(1)]);
    const completing = store.complete(task(1).id);
    const done = task(1, { completed: true, version: 2 });
    api.calls[1].resolve({ completeTask: done });
    await completing;
    assert.deepEqual(titles(store), ['Task 2']);
    assert.equal(store.applyChange({ kind: 'COMPLETED', taskId: done.id, task: done }), 'ignored');
    const removing = store.remove(task(2).id);
    api.calls[2].resolve({ deleteTask: task(2).id });
    await removing;
    assert.deepEqual(counts(store), { totalCount: 0, open: 0, overdue: 0 });
    assert.deepEqual(api.names(), ['TaskList', 'CompleteTask', 'DeleteTask']);
  });
});

describe('the task store around a restore', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('takes a restored task back in its place and in the counts, without a request', async () => {
    const late = task(2, { dueAt: '2020-01-01T00:00:00+00:00' });
    const { api, store } = await loadedTasks([task(3), late, task(1)], { overdue: 1 });
    const removing = store.remove(late.id);
    api.calls[1].resolve({ deleteTask: late.id });
    await removing;
    assert.deepEqual(titles(store), ['Task 3', 'Task 1']);
    assert.deepEqual(counts(store), { totalCount: 2, open: 2, overdue: 0 });
    const restoring = store.restore(late.id);
    assert.deepEqual(api.calls[2].variables, { id: late.id });
    // The deletion was version 2: the restore is version 3.
    api.calls[2].resolve({ restoreTask: { ...late, version: 3 } });
    await restoring;
    assert.deepEqual(titles(store), ['Task 3', 'Task 2', 'Task 1']);
    assert.deepEqual(counts(store), { totalCount: 3, open: 3, overdue: 1 });
    mock.timers.tick(1000);
    assert.deepEqual(api.names(), ['TaskList', 'DeleteTask', 'RestoreTask']);
  });

  it('applies the live events of a deletion and a restore once, in whichever order they meet its own answers', async () => {
    const { store } = await loadedTasks([task(2), task(1)]);
    assert.equal(store.applyChange({ kind: 'DELETED', taskId: task(1).id, task: null }), 'applied');
    assert.equal(store.applyChange({ kind: 'DELETED', taskId: task(1).id, task: null }), 'ignored', 'seen');
    assert.equal(store.applyChange({ kind: 'UPDATED', taskId: task(1).id, task: task(1, { version: 2 }) }), 'ignored',
      'a late edit does not bring a deleted task back');
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: task(1).id, task: task(1) }), 'ignored',
      'its first version is not a restore');
    const restored = task(1, { version: 3 });
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: restored.id, task: restored }), 'applied');
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: restored.id, task: restored }), 'ignored', 'seen');
    assert.deepEqual(titles(store), ['Task 2', 'Task 1']);
    assert.deepEqual(counts(store), { totalCount: 2, open: 2, overdue: 0 });
    // Deleted again, and restored again.
    assert.equal(store.applyChange({ kind: 'DELETED', taskId: restored.id, task: null }), 'applied');
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: restored.id, task: task(1, { version: 5 }) }), 'applied');
    assert.deepEqual(titles(store), ['Task 2', 'Task 1']);
  });
});

describe('the deleted task store', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  const deleted = (n, deletedAt = `2026-01-02T00:00:0${n}+00:00`) => ({ deletedAt, task: task(n) });
  const page = (items, { hasNextPage = false } = {}) => ({
    deletedTasks: { pageInfo: { hasNextPage, endCursor: items.length ? `cursor-${items.at(-1).task.id}` : null }, nodes: items },
  });
  const listed = (store) => store.getState().items.map((d) => d.task.title);

  async function loadedDeleted(items, options) {
    const api = fakeApi();
    const store = createDeletedStore({ request: api.request });
    store.watch();
    const loading = store.restart();
    api.calls[0].resolve(page(items, options));
    await loading;
    return { api, store };
  }

  it('pages: "Show more" appends the deleted tasks after the end cursor', async () => {
    const { api, store } = await loadedDeleted([deleted(3), deleted(2)], { hasNextPage: true });
    assert.deepEqual(api.calls[0].variables, { first: PAGE, after: null });
    const more = store.loadMore();
    assert.deepEqual(api.calls[1].variables, { first: PAGE, after: `cursor-${task(2).id}` });
    api.calls[1].resolve(page([deleted(1)]));
    await more;
    assert.deepEqual(listed(store), ['Task 3', 'Task 2', 'Task 1']);
    assert.equal(store.getState().pageInfo.hasNextPage, false);
  });

  it('drops a task restored here or elsewhere without a request, and loads again for a deletion', async () => {
    const { api, store } = await loadedDeleted([deleted(3), deleted(2), deleted(1)]);
    store.restored(task(3).id);
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: task(2).id, task: task(2, { version: 3 }) }), 'applied');
    assert.equal(store.applyChange({ kind: 'CREATED', taskId: task(9).id, task: task(9) }), 'ignored');
    assert.equal(store.applyChange({ kind: 'UPDATED', taskId: task(9).id, task: task(9, { version: 2 }) }), 'ignored');
    assert.deepEqual(listed(store), ['Task 1']);
    assert.equal(store.applyChange({ kind: 'DELETED', taskId: task(8).id, task: null }), 'refetch');
    assert.equal(store.applyChange({ kind: 'DELETED', taskId: task(7).id, task: null }), 'refetch');
    mock.timers.tick(150);
    assert.deepEqual(api.names(), ['DeletedTasks', 'DeletedTasks'], 'one load for both deletions');
    api.calls[1].resolve(page([deleted(7), deleted(8), deleted(1)]));
    await settle();
    assert.deepEqual(listed(store), ['Task 7', 'Task 8', 'Task 1']);
  });
});

describe('the notification store', () => {
  const notification = (n, fields = {}) => ({ id: `n${n}`, kind: 'REMINDER_DUE', title: `Reminder ${n}`, body: '',
    createdAt: `2026-01-01T00:00:0${n}+00:00`, readAt: null, task: null, ...fields });
  const inbox = (items, totalCount = items.length) => ({
    notifications: { totalCount, pageInfo: { hasNextPage: false, endCursor: null }, nodes: items },
  });

  it('drops an older answer that arrives after a newer one', async () => {
    const api = fakeApi();
    const store = createNotificationStore({ request: api.request });
    const first = store.restart();
    const second = store.load();
    api.calls[1].resolve(inbox([notification(1, { readAt: '2026-01-01T00:01:00+00:00' })]));
    await second;
    api.calls[0].resolve(inbox([notification(1)]));
    await first;
    assert.equal(store.getState().items[0].readAt, '2026-01-01T00:01:00+00:00');
  });

  it('puts a new notification on top and counts it once, without a request', async () => {
    const api = fakeApi();
    const store = createNotificationStore({ request: api.request });
    const counting = store.refreshUnread();
    api.calls[0].resolve({ notifications: { totalCount: 1 } });
    await counting;
    const loading = store.restart();
    api.calls[1].resolve(inbox([notification(1)]));
    await loading;
    assert.equal(store.received(notification(2)), 'applied');
    assert.equal(store.received(notification(2)), 'ignored');
    assert.equal(store.received(notification(1)), 'ignored', 'listed already');
    const s = store.getState();
    assert.deepEqual(s.items.map((n) => n.id), ['n2', 'n1']);
    assert.deepEqual([s.totalCount, s.unread], [2, 2]);
    assert.deepEqual(api.names(), ['UnreadCount', 'NotificationList']);
  });

  it('counts again when a notification arrives while the count is on its way', async () => {
    const api = fakeApi();
    const store = createNotificationStore({ request: api.request });
    const counting = store.refreshUnread();
    store.received(notification(3));
    api.calls[0].resolve({ notifications: { totalCount: 0 } });
    await counting;
    assert.deepEqual(api.names(), ['UnreadCount', 'UnreadCount']);
    api.calls[1].resolve({ notifications: { totalCount: 1 } });
    await settle();
    assert.equal(store.getState().unread, 1);
  });
});

describe('the tag store', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  const tags = [{ id: 'a', name: 'home', color: null, taskCount: 2 }, { id: 'b', name: 'work', color: null, taskCount: 0 }];

  async function loadedTags() {
    const api = fakeApi();
    const store = createTagStore({ request: api.request });
    const loading = store.refresh();
    api.calls[0].resolve({ tags });
    await loading;
    return { api, store };
  }

  it('keeps the counts live while watched: a new task counts for its tags', async () => {
    const { api, store } = await loadedTags();
    const created = task(1, { tags: [{ id: 'a', name: 'home', color: null }] });
    assert.equal(store.applyTaskChange({ kind: 'CREATED', task: created }), 'ignored', 'not shown');
    const unwatch = store.watch();
    assert.equal(store.applyTaskChange({ kind: 'CREATED', task: created }), 'applied');
    assert.deepEqual(store.getState().tags.map((t) => t.taskCount), [3, 0]);
    assert.equal(store.applyTaskChange({ kind: 'COMPLETED', task: created }), 'ignored');
    mock.timers.tick(1000);
    assert.deepEqual(api.names(), ['TagList']);
    unwatch();
  });

  it('refetches once, debounced, for an edit, a deletion or a tag it does not know', async () => {
    const { api, store } = await loadedTags();
    store.watch();
    assert.equal(store.applyTaskChange({ kind: 'UPDATED', task: task(1) }), 'refetch');
    assert.equal(store.applyTaskChange({ kind: 'DELETED', task: null }), 'refetch');
    assert.equal(store.applyTaskChange({ kind: 'CREATED', task: task(2, { tags: [{ id: 'c', name: 'new', color: null }] }) }),
      'refetch');
    mock.timers.tick(150);
    assert.deepEqual(api.names(), ['TagList', 'TagList']);
  });
});
