// Automatic persisted queries with Apollo Client (the client users hold the gateway to):
// `createPersistedQueryLink` with `useGETForHashedQueries` over `HttpLink`, against the real
// taskstream binary. The first request sends only the hash (GET) and misses, the link sends
// the query with its hash (POST), which registers it, and from then on a hash alone (GET)
// is enough.

import { createHash } from 'node:crypto';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { startServer } from './harness.mjs';

/** The development token the server printed at start-up. */
function devToken(server) {
  const match = /Token for user "developer":\s+(\S+)/.exec(server.output());
  assert.ok(match, `no development token in the output:\n${server.output()}`);
  return match[1];
}

const ME = gql`query Me { me { id timezone } }`;

describe('automatic persisted queries with Apollo Client', () => {
  let server;
  let token;
  /** Every request the clients sent: method, whether it carried the query text, status. */
  const sent = [];

  /** A fresh Apollo Client whose requests are recorded in `sent`. */
  function client() {
    const recording = async (input, init = {}) => {
      const response = await fetch(input, init);
      const url = new URL(typeof input === 'string' ? input : input.url);
      const withQuery = init.method === 'POST'
        ? 'query' in JSON.parse(init.body)
        : url.searchParams.has('query');
      sent.push({ method: init.method ?? 'GET', withQuery, status: response.status });
      return response;
    };
    const link = createPersistedQueryLink({
      sha256: (text) => createHash('sha256').update(text).digest('hex'),
      useGETForHashedQueries: true,
    }).concat(new HttpLink({
      uri: `${server.base}/graphql`,
      fetch: recording,
      headers: { authorization: `Bearer ${token}` },
    }));
    return new ApolloClient({ link, cache: new InMemoryCache() });
  }

  before(async () => {
    server = await startServer();
    token = devToken(server);
  });

  after(async () => {
    await server?.stop();
  });

  it('misses once, registers the query, then answers the hash alone over GET', async () => {
    const apollo = client();

    const first = await apollo.query({ query: ME, fetchPolicy: 'network-only' });
    const second = await apollo.query({ query: ME, fetchPolicy: 'network-only' });

    assert.equal(first.data.me.id, 'developer');
    assert.equal(second.data.me.id, 'developer');
    assert.deepEqual(sent, [
      { method: 'GET', withQuery: false, status: 200 }, // PersistedQueryNotFound
      { method: 'POST', withQuery: true, status: 200 }, // the query with its hash: registered
      { method: 'GET', withQuery: false, status: 200 }, // the hash alone: found
    ]);
  });

  it('answers another client of the same user from the hash alone', async () => {
    sent.length = 0;

    const { data } = await client().query({ query: ME, fetchPolicy: 'network-only' });

    assert.equal(data.me.timezone, 'UTC');
    assert.deepEqual(sent, [{ method: 'GET', withQuery: false, status: 200 }]);
  });
});
