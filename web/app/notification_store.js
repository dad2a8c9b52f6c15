// The notifications inbox and the unread count (the badge): newest first, cursor paging, the
// total, marking read. A notification that arrives live (`notificationReceived`) goes on top and
// moves the total and the unread count by one, without a request; one the store holds already
// is not counted twice.

import { gql } from './api.js';
import { NOTIFICATION_LIST, UNREAD_COUNT, UNREAD_NOTIFICATIONS, MARK_NOTIFICATION_READ } from './operations.js';
import { createState, createRequests, later, emptyPage, PAGE, MAX_PAGE, REFETCH_DELAY_MS } from './store.js';

export function createNotificationStore({ request = gql, delay = REFETCH_DELAY_MS } = {}) {
  // `unread`: unread notifications in all; null until counted.
  const state = createState({ ...emptyPage(), unread: null, loading: false });
  const list = createRequests(() => refetch.schedule());
  const unreadRequests = createRequests(() => refreshUnread().catch(() => {}));
  const refetch = later(() => load(), delay);
  /** The ids of the notifications that arrived live. */
  const arrived = new Set();

  /** Loads the inbox again (as many as it holds, at least a page), or the next page. */
  async function load({ append = false } = {}) {
    refetch.cancel();
    const s = state.getState();
    const variables = {
      first: append ? PAGE : Math.max(PAGE, Math.min(MAX_PAGE, s.items.length)),
      after: append ? s.pageInfo.endCursor : null,
    };
    state.set({ loading: true });
    try {
      await list.run(() => request(NOTIFICATION_LIST, variables), (data) => {
        const { nodes, pageInfo, totalCount } = data.notifications;
        const held = state.getState().items;
        const ids = new Set(held.map((n) => n.id));
        const items = append ? held.concat(nodes.filter((n) => !ids.has(n.id))) : nodes;
        state.set({ items, pageInfo, totalCount, loaded: true, loading: false, error: null });
      });
    } catch (error) {
      state.set({ loading: false, error });
    }
  }

  /** Counts the unread notifications; resolves to the count. */
  async function refreshUnread() {
    await unreadRequests.run(() => request(UNREAD_COUNT), (data) => state.set({ unread: data.notifications.totalCount }));
    return state.getState().unread;
  }

  /** A notification that arrived live. */
  function received(notification) {
    const s = state.getState();
    if (arrived.has(notification.id) || s.items.some((n) => n.id === notification.id)) return 'ignored';
    arrived.add(notification.id);
    list.noteEvent();
    unreadRequests.noteEvent();
    const changes = { unread: (s.unread ?? 0) + (notification.readAt ? 0 : 1) };
    if (s.loaded) Object.assign(changes, { items: [notification, ...s.items], totalCount: s.totalCount + 1 });
    state.set(changes);
    return 'applied';
  }

  async function markRead(id) {
    const { markNotificationRead: read } = await request(MARK_NOTIFICATION_READ, { id });
    state.set({ items: state.getState().items.map((n) => (n.id === id ? { ...n, readAt: read.readAt } : n)) });
    await refreshUnread();
  }

  async function markAllRead() {
    for (;;) {
      const data = await request(UNREAD_NOTIFICATIONS);
      if (!data.notifications.nodes.length) break;
      for (const n of data.notifications.nodes) await request(MARK_NOTIFICATION_READ, { id: n.id });
    }
    await refreshUnread();
    await load();
  }

  return {
    ...state.readers,
    /** Starts afresh for a view that shows the inbox: nothing held, then its first page. */
    restart() {
      state.set(emptyPage());
      return load();
    },
    load,
    loadMore: () => load({ append: true }),
    refreshUnread,
    /** After a reconnection: what arrived meanwhile was missed. */
    invalidate() {
      refreshUnread().catch(() => {});
      if (state.watched) load();
    },
    received,
    markRead,
    markAllRead,
  };
}
