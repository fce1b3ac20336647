// One urql client per signed-in session: HTTP for queries and mutations, graphql-ws for
// subscriptions, the in-memory access token on both.
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from 'urql';
import { createClient as createWsClient } from 'graphql-ws';
import { accessToken, refresh } from './session';

export function makeClient(): { client: Client; dispose: () => void } {
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/graphql/ws`;
  const ws = createWsClient({
    url: wsUrl,
    lazy: true,
    retryAttempts: Infinity,
    connectionParams: () => ({ Authorization: `Bearer ${accessToken() ?? ''}` }),
  });
  const authedFetch: typeof fetch = async (input, init) => {
    const withToken = (token: string | null): RequestInit => ({
      ...init,
      headers: { ...(init?.headers as Record<string, string>), authorization: token ? `Bearer ${token}` : '' },
    });
    const res = await fetch(input, withToken(accessToken()));
    if (res.status !== 401) return res;
    const renewed = await refresh();
    return renewed ? fetch(input, withToken(renewed.accessToken)) : res;
  };
  const client = new Client({
    url: '/api/v1/graphql',
    fetch: authedFetch,
    requestPolicy: 'cache-and-network',
    // POST for everything: the API runs queries by GET too, but one method keeps the dashboard's
    // requests (and their logs) alike.
    preferGetMethod: false,
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || '' };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return { client, dispose: () => void ws.dispose() };
}
