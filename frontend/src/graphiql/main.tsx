// GraphiQL served from the binary: no CDN. Opens with an example query, explains how to send a
// token or an API key, and uses the dashboard's session (the refresh cookie) when there is one.
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/style.css';

const EXAMPLE = `# DevSignal GraphQL API
#
# Authenticate with a header (Headers tab below):
#   {"Authorization": "Bearer <access token from /api/v1/auth/login>"}
# or an API key:
#   {"Authorization": "Bearer dsk_..."}   or   {"X-API-Key": "dsk_..."}
# Signed in to the dashboard in this browser? Your session is used already.

query HotAccounts {
  topAccounts(first: 10) {
    name
    domain
    score { score tier trend signalCount lastSignalAt }
  }
}
`;

async function sessionToken(): Promise<string | null> {
  // The readable hint cookie says whether the dashboard has a session to share.
  if (!document.cookie.split(';').some((c) => c.trim() === 'devsignal_session=1')) return null;
  try {
    const res = await fetch('/api/v1/auth/refresh', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-cookie': '1' },
      credentials: 'same-origin',
      body: '{}',
    });
    if (!res.ok) return null;
    const body = await res.json();
    return typeof body.accessToken === 'string' ? body.accessToken : null;
  } catch {
    return null;
  }
}

async function start() {
  const root = document.getElementById('graphiql');
  const endpoint = root?.dataset.endpoint ?? '/api/v1/graphql';
  const subscriptions = root?.dataset.subscriptionEndpoint ?? '/api/v1/graphql/ws';
  const token = await sessionToken();
  const wsProto = location.protocol === 'https:' ? 'wss' : 'ws';
  const auth = token ? { Authorization: `Bearer ${token}` } : undefined;
  const fetcher = createGraphiQLFetcher({
    url: endpoint,
    subscriptionUrl: `${wsProto}://${location.host}${subscriptions}`,
    headers: auth,
    wsConnectionParams: auth,
  });
  if (root) {
    createRoot(root).render(
      <GraphiQL
        fetcher={fetcher}
        defaultQuery={EXAMPLE}
        defaultHeaders={token ? '' : '{\n  "Authorization": "Bearer dsk_..."\n}'}
        isHeadersEditorEnabled
        shouldPersistHeaders={false}
      />,
    );
  }
}

void start();
