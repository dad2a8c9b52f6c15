// Starts GraphiQL on the page served at /graphiql (graphql/src/graphiql.rs). This file is
// Taskstream's own, not vendored: the page's content security policy runs only same-origin
// scripts, so the start-up code lives here rather than inline. React, ReactDOM and GraphiQL
// are the globals the vendored UMD bundles define (loaded before this file, in order).
//
// The settings come from the page's JSON block (data, never executed): the endpoints and, in
// development mode, the token printed at start-up. With a token, GraphiQL opens with it in
// the Headers tab (so it is visible, editable and sent with every request) and the
// subscription client sends it in the WebSocket's connection_init payload; headers are never
// written to localStorage.
(function start() {
  'use strict';
  const root = document.getElementById('graphiql');
  try {
    const settings = JSON.parse(document.getElementById('graphiql-settings').textContent);
    // GraphiQL's dialogs lock scrolling with a <style> element (Radix UI's react-remove-scroll),
    // which carries the nonce found here; the page's policy allows this response's nonce.
    window.__webpack_nonce__ = settings.styleNonce;
    const endpoint = new URL(settings.endpoint, window.location.href);
    // The subscription endpoint on this origin, over wss: when the page came over https:.
    const subscriptions = new URL(settings.subscriptionEndpoint, window.location.href);
    subscriptions.protocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const authorization = settings.token ? { Authorization: `Bearer ${settings.token}` } : null;
    const fetcher = window.GraphiQL.createFetcher({
      url: endpoint.href,
      subscriptionUrl: subscriptions.href,
      // The Headers tab's contents are added to these for each subscription, so an edited
      // token wins over this one.
      wsConnectionParams: authorization ?? undefined,
    });
    const props = { fetcher, shouldPersistHeaders: false };
    if (authorization) {
      props.headers = JSON.stringify(authorization, null, 2);
      props.defaultEditorToolsVisibility = 'headers';
    }
    window.ReactDOM.createRoot(root).render(window.React.createElement(window.GraphiQL, props));
  } catch (error) {
    root.textContent = `GraphiQL could not start: ${error}`;
    throw error;
  }
})();
