// Recently deleted (#/deleted, linked from the task list): the deleted tasks, most recently
// deleted first, each as it was when deleted, with when that was in words. Restore brings one
// back (`restoreTask`: into the list, with its tags and pending reminders); History shows its
// versions, the deletion on top. Why a restore failed is said at the task, in words. It
// renders from the deleted task store (deleted_store.js), kept live while it shows.

import { h, replace, announce } from './dom.js';
import { formatDateTime } from './time.js';
import { dateTimeWords } from './phrases.js';
import { describe } from './recurrence.js';
import { priority } from './priority.js';
import { restoreFailure } from './history_words.js';
import { openHistory } from './history.js';
import { tagChip } from './tasks.js';

export function mountDeleted(main, ctx) {
  const store = ctx.stores.deleted;
  const list = h('ul', { class: 'task-list deleted-list', id: 'deleted-list', 'aria-labelledby': 'deleted-heading' });
  const count = h('p', { class: 'result-count', id: 'deleted-count', role: 'status' });
  const listError = h('p', { class: 'error', role: 'alert' });
  const more = h('button', { type: 'button', class: 'more', id: 'deleted-more', hidden: true, text: 'Show more',
    onclick: () => store.loadMore() });
  /** Why restoring a task failed, by id, until it leaves the list: redraws keep it. */
  const failures = new Map();

  replace(main, h('section', { class: 'view deleted-view', 'aria-labelledby': 'deleted-heading' },
    h('div', { class: 'view-head' },
      h('h1', { id: 'deleted-heading', text: 'Recently deleted' }),
      h('a', { href: '#/tasks', id: 'back-to-tasks', text: 'Back to tasks' })),
    h('p', { class: 'muted', text: 'Restore brings a task back as it was when deleted, with its tags and pending reminders.' }),
    count, listError, list, more));
  const section = main.querySelector('.deleted-view');

  let shown = null;
  function draw(s) {
    if (s.loading) section.setAttribute('aria-busy', 'true');
    else section.removeAttribute('aria-busy');
    if (s.error) listError.textContent = `The deleted tasks cannot be shown: ${s.error.message}`;
    if (!s.loaded || s.error || s === shown) return;
    listError.textContent = '';
    const ids = new Set(s.items.map((d) => d.task.id));
    for (const id of failures.keys()) if (!ids.has(id)) failures.delete(id);
    count.textContent = s.items.length === 0 ? 'No deleted tasks.'
      : `${s.items.length} deleted ${s.items.length === 1 ? 'task' : 'tasks'}${s.pageInfo.hasNextPage ? ' shown, more below' : ''}`;
    more.hidden = !s.pageInfo.hasNextPage;
    if (!shown || s.items !== shown.items) {
      const focused = document.activeElement?.closest?.('.task')?.dataset.id;
      const role = document.activeElement?.dataset?.role;
      replace(list, s.items.map(row));
      if (focused && role) list.querySelector(`.task[data-id="${CSS.escape(focused)}"] [data-role="${role}"]`)?.focus();
    }
    shown = s;
  }

  function row(deleted) {
    const t = deleted.task;
    const prio = priority(t.priority);
    const error = h('p', { class: 'field-error', role: 'alert', text: failures.get(t.id) || '' });
    const meta = [
      h('span', { class: 'deleted-at' }, 'Deleted ',
        h('time', { dateTime: deleted.deletedAt, title: formatDateTime(deleted.deletedAt),
          text: dateTimeWords(deleted.deletedAt) })),
      t.completed && h('span', { text: 'was done' }),
      prio.rank > 0 && h('span', { class: `prio ${prio.className}`, text: prio.label }),
      t.dueAt && h('span', { class: 'due' }, 'Due ', h('time', { dateTime: t.dueAt, text: formatDateTime(t.dueAt) })),
      t.recurrence && h('span', { class: 'recurs', text: `↻ ${describe(t.recurrence.rule)}` }),
    ].filter(Boolean);
    const restoreButton = h('button', { type: 'button', class: 'small', text: 'Restore', dataset: { role: 'restore' },
      'aria-label': `Restore “${t.title}”`, onclick: () => restore(deleted, restoreButton, error) });
    return h('li', { class: 'task deleted', dataset: { id: t.id } },
      h('div', { class: 'task-main' },
        h('p', { class: 'title', text: t.title }),
        t.description && h('p', { class: 'desc', text: t.description }),
        h('p', { class: 'meta' }, meta),
        t.tags.length > 0 && h('ul', { class: 'tags', 'aria-label': 'Tags' }, t.tags.map((tag) => tagChip(tag))),
        error),
      h('div', { class: 'actions' },
        restoreButton,
        h('button', { type: 'button', class: 'small', text: 'History', dataset: { role: 'history' },
          'aria-label': `History of “${t.title}”`,
          onclick: () => openHistory(t, { deletedAt: deleted.deletedAt }) })));
  }

  async function restore(deleted, button, error) {
    const { id, title } = deleted.task;
    button.disabled = true;
    failures.delete(id);
    error.textContent = '';
    try {
      await ctx.stores.tasks.restore(id);
      store.restored(id);
      announce(`Restored “${title}”: it is back in your tasks.`);
      if (!list.contains(document.activeElement)) {
        (list.querySelector('[data-role="restore"]') || main.querySelector('#back-to-tasks'))?.focus();
      }
    } catch (e) {
      const text = restoreFailure(e);
      failures.set(id, text);
      error.textContent = text;
      announce(`“${title}” was not restored: ${text}`, 'error');
    } finally {
      button.disabled = false;
    }
  }

  const unsubscribe = store.subscribe(draw);
  const unwatch = store.watch();
  store.restart();
  return {
    unmount() {
      unwatch();
      unsubscribe();
    },
  };
}
