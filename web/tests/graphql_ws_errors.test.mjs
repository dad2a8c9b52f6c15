// Errors over the WebSocket with the graphql-ws client (the library the README tells users to
// take), against the real taskstream binary: an operation the server refuses (an unknown
// field, a document limit) reaches the client's `error` callback as the protocol's `error`
// message, an array of errors with the same `extensions.code` as over HTTP, and the socket
// goes on serving other subscriptions.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startServer, graphql, waitFor } from './harness.mjs';

/** The development token the server printed at start-up. */
function devToken(server) {
  const match = /Token for user "developer":\s+(\S+)/.exec(server.output());
  assert.ok(match, `no development token in the output:\n${server.output()}`);
  return match[1];
}

/** Subscribes `query` and resolves with how it ended: `{ errors }`, or `{ complete }`. */
function outcome(client, query) {
  return new Promise((resolve) => {
    const values = [];
    client.subscribe({ query }, {
      next: (value) => values.push(value),
      error: (errors) => resolve({ errors, values }),
      complete: () => resolve({ complete: true, values }),
    });
  });
}

describe('errors over the WebSocket with graphql-ws', () => {
  let server;
  let token;
  let client;

  before(async () => {
    server = await startServer();
    token = devToken(server);
    client = createClient({
      url: `${server.base.replace('http', 'ws')}/graphql/ws`,
      webSocketImpl: WebSocket,
      connectionParams: { Authorization: `Bearer ${token}` },
      lazy: false,
      retryAttempts: 0,
    });
  });

  after(async () => {
    await client?.dispose();
    await server?.stop();
  });

  it('delivers an unknown field as an error message with BAD_USER_INPUT', async () => {
    const { errors, values } = await outcome(client, 'subscription { taskChanged { nope } }');

    assert.ok(Array.isArray(errors), `an array of errors, got ${JSON.stringify(errors)}`);
    assert.match(errors[0].message, /nope/);
    assert.equal(errors[0].extensions.code, 'BAD_USER_INPUT');
    assert.deepEqual(values, [], 'no next message');
  });

  it('delivers a refusal by a document limit as an error message naming the limit', async () => {
    const padded = `subscription { taskChanged { kind } }\n#${'x'.repeat(20 * 1024)}`;

    const { errors } = await outcome(client, padded);

    assert.ok(Array.isArray(errors), JSON.stringify(errors));
    assert.equal(errors[0].extensions.code, 'BAD_USER_INPUT');
    assert.equal(errors[0].extensions.limit, 'MAX_SUBSCRIPTION_BYTES');
  });

  it('keeps serving valid subscriptions on the same socket', async () => {
    const received = [];
    const unsubscribe = client.subscribe(
      { query: 'subscription { taskChanged { kind task { title } } }' },
      { next: (value) => received.push(value), error: (e) => received.push({ error: e }), complete: () => {} },
    );
    // The subscription is registered once a change made now is delivered; retry until then.
    await waitFor('a task created over HTTP arrives on the WebSocket', async () => {
      await graphql(server.base, token, 'mutation { createTask(input: { title: "Over the socket" }) { id } }');
      return received.some((r) => r.data?.taskChanged?.task?.title === 'Over the socket');
    }, 15000, 250);
    unsubscribe();
    assert.ok(received.every((r) => !r.error), JSON.stringify(received));
  });
});
