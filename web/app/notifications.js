// The notifications inbox: newest first, unread marked, "mark read" one by one or all, paged.
// A reminder says when its task is due in the user's zone and in words (phrases.js).
// It renders from the notification store (notification_store.js), where new notifications
// arrive live through `notificationReceived`.

import { h, replace, announce } from './dom.js';
import { formatDateTime } from './time.js';
import { notificationText } from './phrases.js';

export function mountNotifications(main, ctx) {
  const store = ctx.stores.notifications;
  const list = h('ul', { class: 'inbox', id: 'inbox', 'aria-labelledby': 'notifications-heading' });
  const count = h('p', { class: 'counts', id: 'notification-count' });
  const more = h('button', { type: 'button', class: 'more', hidden: true, text: 'Load more', onclick: () => store.loadMore() });
  const markAll = h('button', { type: 'button', id: 'mark-all-read', text: 'Mark all read', onclick: markAllRead });

  replace(main, h('section', { class: 'view', 'aria-labelledby': 'notifications-heading' },
    h('div', { class: 'view-head' }, h('h1', { id: 'notifications-heading', text: 'Notifications' }), count, markAll),
    list, more));

  let shownError = null;
  function draw(s) {
    if (s.error && s.error !== shownError) announce(s.error.message, 'error');
    shownError = s.error;
    if (!s.loaded) return;
    const unread = s.unread ?? s.items.filter((n) => !n.readAt).length;
    count.textContent = `${unread} unread · ${s.totalCount} in all`;
    markAll.hidden = unread === 0;
    more.hidden = !s.pageInfo.hasNextPage;
    replace(list, s.items.length ? s.items.map(row) : h('li', { class: 'muted', text:
      'No notifications yet. Reminders you set on tasks arrive here when they fire.' }));
  }

  function row(n) {
    const text = notificationText(n);
    return h('li', { class: `notification${n.readAt ? '' : ' unread'}`, dataset: { id: n.id } },
      h('div', { class: 'task-main' },
        h('p', { class: 'title' }, !n.readAt && h('span', { class: 'visually-hidden', text: 'Unread: ' }), text.title),
        text.body && h('p', { class: 'desc', text: text.body }),
        h('p', { class: 'meta' },
          h('time', { dateTime: n.createdAt, text: formatDateTime(n.createdAt) }),
          n.kind === 'REMINDER_MISSED' && h('span', { class: 'overdue', text: 'missed' }),
          n.task && h('a', { href: `#/tasks/${encodeURIComponent(n.task.id)}`, text: `Open task: ${n.task.title}` }))),
      !n.readAt && h('button', { type: 'button', class: 'small', text: 'Mark read',
        'aria-label': `Mark “${n.title}” read`, onclick: () => markRead(n) }));
  }

  async function markRead(n) {
    try {
      await store.markRead(n.id);
      announce(`Marked “${n.title}” read.`);
      (list.querySelector('.unread button') || markAll)?.focus();
    } catch (e) {
      announce(e.message, 'error');
    }
  }

  async function markAllRead() {
    try {
      await store.markAllRead();
      announce('All notifications marked read.');
    } catch (e) {
      announce(e.message, 'error');
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
