// The app shell: sign-in, the live connection, the unread badge, the user's time zone and hash
// routing between the views (#/tasks, #/deleted, #/tags, #/notifications, #/settings; the task
// list keeps its smart view, filters and sort in a query after #/tasks and follows it itself).
// Views get a shared context: the live client, the stores (tasks, deleted tasks, tags,
// notifications: each owns its data, paging and live updates), an event bus for task changes
// and the zone, and the signed-in user (`me`). In development mode a refused token is renewed
// from /dev/token (api.js, recoverLive).

import { gql, storedToken, storeToken, setUnauthenticatedHandler, setTokenRenewer, renewToken, isDevelopmentToken }
  from './api.js';
import { LiveClient } from './live.js';
import { announce, replace, h } from './dom.js';
import { zone, setZone } from './time.js';
import { renderSignIn, fetchDevToken, mountSettings } from './signin.js';
import { oidcSettings, isCallback, completeSignIn } from './oidc.js';
import { mountTasks } from './tasks.js';
import { mountDeleted } from './deleted.js';
import { mountTags } from './tags.js';
import { mountNotifications } from './notifications.js';
import { createTaskStore } from './task_store.js';
import { createDeletedStore } from './deleted_store.js';
import { createTagStore } from './tag_store.js';
import { createNotificationStore } from './notification_store.js';
import { ME, VIEWER, TASK_CHANGED, NOTIFICATION_RECEIVED } from './operations.js';
import { endUndo } from './undo.js';
import { notificationText } from './phrases.js';

/** How often the unread count is polled when the server has no notification subscription. */
const UNREAD_POLL_MS = 30000;

const views = { tasks: mountTasks, deleted: mountDeleted, tags: mountTags, notifications: mountNotifications,
  settings: mountSettings };
/** Each view's name in the page title. */
const TITLES = { tasks: 'Tasks', deleted: 'Recently deleted', tags: 'Tags', notifications: 'Notifications',
  settings: 'Settings' };
/** The main menu's entry a view belongs to: the deleted tasks are under Tasks. */
const SECTIONS = { deleted: 'tasks' };

const ctx = {
  bus: new EventTarget(),
  live: null,
  me: null,
  /** {tasks, deleted, tags, notifications}, fresh for each sign-in. */
  stores: null,
  emit(name, detail) {
    ctx.bus.dispatchEvent(new CustomEvent(name, { detail }));
  },
  /** Applies the user's settings (`me`): times everywhere follow their zone from now on. */
  setTimezone(user) {
    Object.assign(ctx.me, user);
    setZone(ctx.me.timezone);
    showZone();
    ctx.emit('zone', zone());
  },
};

/** The footer: who is signed in and which zone times are in (a link to change it). */
function showZone() {
  const note = document.getElementById('zone-note');
  if (!ctx.me) {
    replace(note);
    return;
  }
  const shown = zone();
  replace(note, `Signed in as ${ctx.me.id} · times in `,
    h('a', { href: '#/settings', id: 'zone-link', text: shown,
      title: shown === ctx.me.timezone ? 'Change the time zone' : `This browser does not know ${ctx.me.timezone}` }),
    ' · ');
}

let current = null;
let currentView = null;
let pollTimer = null;

function showUnread({ unread }) {
  if (unread === null) return;
  const badge = document.getElementById('unread-badge');
  badge.hidden = unread === 0;
  badge.textContent = String(unread);
  badge.setAttribute('aria-label', `${unread} unread`);
}

function showLiveState(state) {
  if (state === 'live') liveRenewals = 0;
  const el = document.getElementById('live-status');
  const text = {
    connecting: 'Connecting for live updates…',
    offline: 'Live updates paused: reconnecting…',
    forbidden: 'Live updates refused: sign in again.',
  }[state];
  el.hidden = !text;
  el.textContent = text || '';
  document.body.dataset.live = state;
}

function route(event) {
  const name = (location.hash.replace(/^#\/?/, '') || 'tasks').split(/[/?]/)[0];
  const view = views[name] ? name : 'tasks';
  // Within one screen (the task list's view, filters, sort), the screen follows the address itself.
  if (event && view === currentView && current?.navigate?.()) return;
  current?.unmount?.();
  currentView = view;
  const main = document.getElementById('main');
  replace(main);
  const section = SECTIONS[view] || view;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.view === section) link.setAttribute('aria-current', section === view ? 'page' : 'true');
    else link.removeAttribute('aria-current');
  }
  current = views[view](main, ctx);
  document.title = `${TITLES[view]} · Taskstream`;
  if (event) {
    // After navigating, the new view's heading has the focus (and is read out).
    const heading = main.querySelector('h1');
    heading?.setAttribute('tabindex', '-1');
    heading?.focus();
  }
}

async function start() {
  ctx.me = (await gql(ME)).me;
  setZone(ctx.me.timezone);
  document.getElementById('nav').hidden = false;
  showZone();
  const stores = { tasks: createTaskStore(), deleted: createDeletedStore(), tags: createTagStore(),
    notifications: createNotificationStore() };
  ctx.stores = stores;
  stores.notifications.subscribe(showUnread);
  ctx.live = new LiveClient(storedToken, {
    onState: showLiveState,
    onReconnect: () => {
      // Changes made while the socket was down were missed.
      stores.tasks.invalidate();
      stores.deleted.invalidate();
      stores.notifications.invalidate();
    },
    onForbidden: (refused) => recoverLive(refused),
  });
  ctx.live.subscribe(TASK_CHANGED, {}, (data) => {
    stores.tasks.applyChange(data.taskChanged);
    stores.deleted.applyChange(data.taskChanged);
    stores.tags.applyTaskChange(data.taskChanged);
    ctx.emit('task-changed', data.taskChanged);
  });
  ctx.live.subscribe(NOTIFICATION_RECEIVED, {}, (data) => {
    const n = data.notificationReceived;
    stores.notifications.received(n);
    const text = notificationText(n);
    announce(`New notification: ${text.title}${text.body ? `. ${text.body}` : ''}`);
  }, () => {
    // A server without the notification subscription: poll the count instead.
    clearInterval(pollTimer);
    pollTimer = setInterval(() => stores.notifications.refreshUnread().catch(() => {}), UNREAD_POLL_MS);
  });
  ctx.live.start();
  await Promise.all([stores.tags.refresh(), stores.notifications.refreshUnread()]);
  window.addEventListener('hashchange', route);
  route();
}

/** Renewals of a refused live connection's token since it was last acknowledged. */
let liveRenewals = 0;

/**
 * The live connection was refused (close code 4403) with the token `refused`. A development
 * server that restarted has a new signing key: with a development token, get a new one (or the
 * one a request renewed meanwhile) and connect again, once; otherwise the session is over.
 */
async function recoverLive(refused) {
  const live = ctx.live;
  const renewed = liveRenewals === 0 ? await renewToken(refused) : null;
  if (ctx.live !== live || !ctx.me) return;
  if (renewed && renewed !== refused) {
    liveRenewals += 1;
    live.start();
    return;
  }
  signOut('Your session ended; sign in again.');
}

function signOut(message, problem) {
  ctx.me = null;
  setZone(null);
  ctx.live?.stop();
  clearInterval(pollTimer);
  window.removeEventListener('hashchange', route);
  // An Undo offered to this user goes with their session.
  endUndo();
  current?.unmount?.();
  current = null;
  currentView = null;
  storeToken(null);
  document.getElementById('nav').hidden = true;
  showLiveState('signed-out');
  replace(document.getElementById('zone-note'));
  const main = document.getElementById('main');
  renderSignIn(main, { message, problem, onSignedIn: () => start().catch(fail) });
}

function fail(error) {
  const main = document.getElementById('main');
  replace(main, h('p', { class: 'error', role: 'alert', text: `Taskstream could not start: ${error.message}` }));
}

/**
 * The provider sent the user back with a code (or an error): exchange it for a token and check
 * that the API accepts it. 'signed-in' when it did. When it failed, a user who was signed in
 * before stays signed in ('kept': a forged or stale link must not sign anyone out) and hears
 * what failed; anyone else gets the sign-in page saying what failed, with no token kept.
 */
async function finishProviderSignIn() {
  const previous = storedToken();
  const previousDevelopment = isDevelopmentToken();
  try {
    storeToken(await completeSignIn());
    await gql(VIEWER);
    return 'signed-in';
  } catch (e) {
    const problem = e.code === 'UNAUTHENTICATED'
      ? `The server refused the token from the sign-in provider: ${e.message}`
      : e.message;
    if (previous) {
      storeToken(previous, { development: previousDevelopment });
      announce(`Signing in again did not work: ${problem}`);
      return 'kept';
    }
    await oidcSettings();
    signOut(undefined, problem);
    return 'failed';
  }
}

async function boot() {
  setTokenRenewer(fetchDevToken);
  setUnauthenticatedHandler(() => {
    if (ctx.me) {
      ctx.me = null;
      signOut('The server no longer accepts your token; sign in again.');
    }
  });
  document.getElementById('sign-out').addEventListener('click', () => signOut('Signed out.'));
  // Before any stored or development token: the way back from the provider, whose one-time
  // code must leave the address bar whatever happens.
  if (isCallback(location.href)) {
    const outcome = await finishProviderSignIn();
    if (outcome === 'signed-in') return start();
    if (outcome === 'failed') return undefined;
    // 'kept': the earlier token is checked below like any stored one.
  }
  // A stored token may be from a previous development server (its key died with it): check
  // it (a development token is renewed by gql itself), and in development mode fetch a fresh
  // one.
  if (storedToken()) {
    try {
      await gql(VIEWER);
      return start();
    } catch (e) {
      if (e.code !== 'UNAUTHENTICATED') throw e;
      storeToken(null);
    }
  }
  const dev = await fetchDevToken();
  if (dev) {
    storeToken(dev, { development: true });
    return start();
  }
  // Known before the page shows, so the provider's button is there from the start.
  await oidcSettings();
  signOut();
}

boot().catch(fail);
