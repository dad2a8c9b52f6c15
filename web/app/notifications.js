// The notifications inbox: newest first, unread marked, "mark read" one by one or all, paged;
// new notifications arrive live through `notificationReceived`.

import { gql } from './api.js';
import { h, replace, announce } from './dom.js';
import { formatDateTime } from './time.js';

const PAGE = 20;
const QUERY = `query($first: Int, $after: String) {
  notifications(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id kind title body createdAt readAt task { id title } }
  }
}`;

export function mountNotifications(main, ctx) {
  let items = [];
  let pageInfo = { hasNextPage: false, endCursor: null };
  const list = h('ul', { class: 'inbox', id: 'inbox', 'aria-labelledby': 'notifications-heading' });
  const count = h('p', { class: 'counts', id: 'notification-count' });
  const more = h('button', { type: 'button', class: 'more', hidden: true, text: 'Load more', onclick: () => load(true) });
  const markAll = h('button', { type: 'button', id: 'mark-all-read', text: 'Mark all read', onclick: markAllRead });

  replace(main, h('section', { class: 'view', 'aria-labelledby': 'notifications-heading' },
    h('div', { class: 'view-head' }, h('h1', { id: 'notifications-heading', text: 'Notifications' }), count, markAll),
    list, more));

  async function load(append = false) {
    try {
      const data = await gql(QUERY, { first: append ? PAGE : Math.max(PAGE, Math.min(100, items.length)), after: append ? pageInfo.endCursor : null });
      items = append ? items.concat(data.notifications.nodes) : data.notifications.nodes;
      pageInfo = data.notifications.pageInfo;
      draw(data.notifications.totalCount);
    } catch (e) {
      announce(e.message, 'error');
    }
  }

  function draw(total = items.length) {
    const unread = ctx.unread ?? items.filter((n) => !n.readAt).length;
    count.textContent = `${unread} unread · ${total} in all`;
    markAll.hidden = unread === 0;
    more.hidden = !pageInfo.hasNextPage;
    replace(list, items.length ? items.map(row) : h('li', { class: 'muted', text:
      'No notifications yet. Reminders you set on tasks arrive here when they fire.' }));
  }

  function row(n) {
    return h('li', { class: `notification${n.readAt ? '' : ' unread'}`, dataset: { id: n.id } },
      h('div', { class: 'task-main' },
        h('p', { class: 'title' }, !n.readAt && h('span', { class: 'visually-hidden', text: 'Unread: ' }), n.title),
        n.body && h('p', { class: 'desc', text: n.body }),
        h('p', { class: 'meta' },
          h('time', { dateTime: n.createdAt, text: formatDateTime(n.createdAt) }),
          n.kind === 'REMINDER_MISSED' && h('span', { class: 'overdue', text: 'missed' }),
          n.task && h('a', { href: `#/tasks/${encodeURIComponent(n.task.id)}`, text: `Open task: ${n.task.title}` }))),
      !n.readAt && h('button', { type: 'button', class: 'small', text: 'Mark read',
        'aria-label': `Mark “${n.title}” read`, onclick: () => markRead(n) }));
  }

  async function markRead(n) {
    try {
      const { markNotificationRead } = await gql('mutation($id: ID!) { markNotificationRead(id: $id) { id readAt } }', { id: n.id });
      n.readAt = markNotificationRead.readAt;
      await ctx.refreshUnread();
      draw();
      announce(`Marked “${n.title}” read.`);
      (list.querySelector('.unread button') || markAll)?.focus();
    } catch (e) {
      announce(e.message, 'error');
    }
  }

  async function markAllRead() {
    try {
      for (;;) {
        const data = await gql('{ notifications(unreadOnly: true, first: 100) { nodes { id } } }');
        if (!data.notifications.nodes.length) break;
        for (const n of data.notifications.nodes) {
          await gql('mutation($id: ID!) { markNotificationRead(id: $id) { id } }', { id: n.id });
        }
      }
      await ctx.refreshUnread();
      await load();
      announce('All notifications marked read.');
    } catch (e) {
      announce(e.message, 'error');
    }
  }

  const onNotification = (event) => {
    if (!items.some((n) => n.id === event.detail.id)) items.unshift(event.detail);
    draw();
  };
  const onResync = () => load();
  ctx.bus.addEventListener('notification', onNotification);
  ctx.bus.addEventListener('resync', onResync);
  load();
  return {
    unmount() {
      ctx.bus.removeEventListener('notification', onNotification);
      ctx.bus.removeEventListener('resync', onResync);
    },
  };
}
