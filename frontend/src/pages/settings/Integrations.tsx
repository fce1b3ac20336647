// Integrations: connect an outside source (every kind the API says is built, each with its own
// form), see each one's status, last error and runs, start a sync now (kinds that sync), see its
// webhook URL, import people into LinkedIn, change its configuration, disconnect.
import { useEffect, useState, type FormEvent } from 'react';
import { Alert, Badge, Button, Group, Modal, Paper, PasswordInput, Select, Stack, Table, TagsInput, Text, TextInput, Textarea, Title } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { notifications } from '@mantine/notifications';
import { useMutation, useQuery, type CombinedError } from 'urql';
import { graphql, type ResultOf } from '../../graphql';
import { Empty, ErrorNotice, Loading, timeAgo, useIsAdmin } from '../../ui';
import { Snippet } from './ApiKeys';
import { accessToken } from '../../session';

/** CRMs sync both ways: their runs count records pushed and pulled, not signals. */
const CRM_KINDS = ['HUBSPOT', 'SALESFORCE'];

const IntegrationsQuery = graphql(`
  query Integrations {
    integrations {
      id
      kind
      status
      config
      lastSyncAt
      lastSuccessAt
      lastError
      nextSyncAt
      webhookUrl
      runs(first: 1) { nodes { id status } }
    }
  }
`);
const KindsQuery = graphql(`
  query IntegrationKinds {
    integrationKinds { kind label built syncs webhooks }
  }
`);
const RunsQuery = graphql(`
  query IntegrationRuns($id: ID!) {
    integration(id: $id) {
      id
      runs(first: 20) {
        nodes { id status full startedAt finishedAt signalsCreated requests error pushed pulled errors { object id externalId message } }
      }
    }
  }
`);
const Connect = graphql(`
  mutation ConnectIntegration($input: ConnectIntegrationInput!) {
    connectIntegration(input: $input) { webhookSecret integration { id kind webhookUrl } }
  }
`);
const Update = graphql(`
  mutation UpdateIntegration($id: ID!, $input: UpdateIntegrationInput!) {
    updateIntegration(id: $id, input: $input) { id status config lastError }
  }
`);
const Sync = graphql(`
  mutation SyncIntegration($id: ID!, $full: Boolean) {
    syncIntegration(id: $id, full: $full) { id status }
  }
`);
const ImportLinkedIn = graphql(`
  mutation ImportLinkedInContacts($id: ID!, $format: ImportFormat!, $data: String!) {
    importLinkedInContacts(integrationId: $id, format: $format, data: $data) { rows contacts accounts }
  }
`);
const Disconnect = graphql(`
  mutation DisconnectIntegration($id: ID!) {
    disconnectIntegration(id: $id) { id status }
  }
`);

type Integration = ResultOf<typeof IntegrationsQuery>['integrations'][number];
type KindInfo = ResultOf<typeof KindsQuery>['integrationKinds'][number];
type Kind = KindInfo['kind'];

/** One input of a kind's form: where its value goes (`config.<key>` or `credentials.<key>`). */
type Field = {
  key: string;
  in: 'config' | 'credentials';
  label: string;
  /** tags: a TagsInput (Enter after each); lines: a textarea, one per line or comma-separated. */
  type: 'tags' | 'lines' | 'text' | 'secret';
  required?: boolean;
  description?: string;
  placeholder?: string;
};

type Form = {
  what: string;
  fields: Field[];
  /** The main setting, shown in the list ("acme/cli, acme/sdk", "r/rust · rust, tokio", …). */
  summary: (config: Record<string, unknown>) => string;
  /** Where the webhook URL goes at the source, and whether DevSignal's secret signs it. */
  webhook?: { where: string; secret: string | null };
};

const list = (config: Record<string, unknown>, key: string): string[] => {
  const v = config[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
};
const text = (config: Record<string, unknown>, key: string): string => {
  const v = config[key];
  return typeof v === 'string' || typeof v === 'number' ? String(v) : '';
};
const HUB_SIGNATURE = 'DevSignal checks the X-Hub-Signature-256 header (hex HMAC-SHA256 of the body) under this secret.';

/** The form of each kind the server may build; the API says which ones are built. */
const FORMS: Partial<Record<Kind, Form>> = {
  GITHUB: {
    what: 'Stars, forks, issues and pull requests of your repositories (sync and signed webhook).',
    fields: [
      { key: 'repos', in: 'config', label: 'Repositories', type: 'tags', required: true, description: 'owner/name; press Enter after each', placeholder: 'acme/cli' },
      { key: 'token', in: 'credentials', label: 'Access token', type: 'secret', description: 'A fine-grained token with read access to the repositories (optional for public ones; raises the rate limit)' },
      { key: 'apiUrl', in: 'config', label: 'API URL (GitHub Enterprise only)', type: 'text', description: 'Leave empty for github.com', placeholder: 'https://github.example.com/api/v3' },
    ],
    summary: (c) => list(c, 'repos').join(', '),
    webhook: { where: "Payload URL (in the repository's webhook settings, content type application/json)", secret: 'Secret (shown once)' },
  },
  NPM: {
    what: 'Daily downloads, releases and download spikes of your npm packages.',
    fields: [{ key: 'packages', in: 'config', label: 'Packages', type: 'tags', required: true, description: 'Package names; press Enter after each', placeholder: '@acme/sdk' }],
    summary: (c) => list(c, 'packages').join(', '),
  },
  PYPI: {
    what: 'Daily downloads, releases and download spikes of your Python packages.',
    fields: [{ key: 'packages', in: 'config', label: 'Packages', type: 'tags', required: true, description: 'Package names; press Enter after each', placeholder: 'acme-sdk' }],
    summary: (c) => list(c, 'packages').join(', '),
  },
  STACKOVERFLOW: {
    what: 'New questions and answers under your Stack Overflow tags.',
    fields: [
      { key: 'tags', in: 'config', label: 'Tags', type: 'lines', required: true, description: 'One per line or comma-separated', placeholder: 'acme-sdk' },
      { key: 'key', in: 'credentials', label: 'Stack Exchange API key', type: 'secret', description: 'Optional; raises the daily quota from 300 to 10,000 requests' },
    ],
    summary: (c) => list(c, 'tags').map((t) => `[${t}]`).join(' '),
  },
  REDDIT: {
    what: 'Posts and comments that mention your keywords, site-wide and in the subreddits you name.',
    fields: [
      { key: 'keywords', in: 'config', label: 'Keywords', type: 'lines', required: true, description: 'One per line or comma-separated; matched as whole words', placeholder: 'acme' },
      { key: 'subreddits', in: 'config', label: 'Subreddits', type: 'lines', description: 'Optional; one per line, without r/', placeholder: 'rust' },
      { key: 'clientId', in: 'credentials', label: 'Client ID', type: 'secret', required: true, description: 'Of a Reddit “script” or “web” app (reddit.com/prefs/apps)' },
      { key: 'clientSecret', in: 'credentials', label: 'Client secret', type: 'secret', required: true },
    ],
    summary: (c) => [list(c, 'keywords').join(', '), list(c, 'subreddits').map((r) => `r/${r}`).join(' ')].filter(Boolean).join(' · '),
  },
  DISCORD: {
    what: 'Messages and threads of your Discord server, read by your bot.',
    fields: [
      { key: 'guildId', in: 'config', label: 'Server (guild) ID', type: 'text', required: true, description: 'Developer mode → right-click the server → Copy Server ID', placeholder: '1234567890123456789' },
      { key: 'channels', in: 'config', label: 'Channel IDs', type: 'lines', description: 'Optional; one per line. Empty: every text, announcement and forum channel' },
      { key: 'botToken', in: 'credentials', label: 'Bot token', type: 'secret', required: true, description: 'The bot must be in the server with the Read Message History permission and the Message Content intent' },
    ],
    summary: (c) => {
      const channels = list(c, 'channels').length;
      return `guild ${text(c, 'guildId')}${channels ? ` · ${channels} channel${channels === 1 ? '' : 's'}` : ' · every channel'}`;
    },
  },
  TWITTER: {
    what: 'Recent tweets that mention your keywords (retweets left out).',
    fields: [
      { key: 'keywords', in: 'config', label: 'Keywords', type: 'lines', required: true, description: '1 to 25; one per line or comma-separated', placeholder: 'acme' },
      { key: 'bearerToken', in: 'credentials', label: 'Bearer token', type: 'secret', required: true, description: 'Of your X developer app (with access to the recent search)' },
    ],
    summary: (c) => list(c, 'keywords').join(', '),
  },
  POSTHOG: {
    what: 'Product events (page views, sign-ups, feature use) from your PostHog project, by sync and webhook.',
    fields: [
      { key: 'projectId', in: 'config', label: 'Project ID', type: 'text', required: true, description: 'The number in your project’s URL (/project/12345)', placeholder: '12345' },
      { key: 'host', in: 'config', label: 'PostHog URL', type: 'text', description: 'Optional; https://us.posthog.com by default (EU: https://eu.posthog.com, or your own instance)', placeholder: 'https://us.posthog.com' },
      { key: 'events', in: 'config', label: 'Events', type: 'lines', description: 'Optional; one per line. Default: $pageview, signup, feature_used' },
      { key: 'personalApiKey', in: 'credentials', label: 'Personal API key', type: 'secret', required: true, description: 'With read access to the project’s events' },
    ],
    summary: (c) => `project ${text(c, 'projectId')}${list(c, 'events').length ? ` · ${list(c, 'events').join(', ')}` : ''}`,
    webhook: { where: 'Webhook destination URL (PostHog → Data pipelines → Webhook destination, with the X-Hub-Signature-256 header)', secret: `Secret (shown once). ${HUB_SIGNATURE}` },
  },
  LINKEDIN: {
    what: 'Page views, follows and engagement sent by your tools to a signed webhook, and people imported from a CSV. LinkedIn has no API to read, so it is not synced.',
    fields: [
      { key: 'companyPageUrl', in: 'config', label: 'Company page URL', type: 'text', required: true, placeholder: 'https://www.linkedin.com/company/acme' },
    ],
    summary: (c) => text(c, 'companyPageUrl'),
    webhook: { where: 'Webhook URL (for the automation or export tool that sends LinkedIn events)', secret: `Secret (shown once). ${HUB_SIGNATURE}` },
  },
  INTERCOM: {
    what: 'Conversations opened, replied to, closed and rated in Intercom, by sync and webhook.',
    fields: [
      { key: 'accessToken', in: 'credentials', label: 'Access token', type: 'secret', required: true, description: 'Of your Intercom app (Developer Hub → your app → Authentication)' },
      { key: 'clientSecret', in: 'credentials', label: 'Client secret', type: 'secret', required: true, description: 'Of the same app (Basic information); Intercom signs its webhooks with it' },
    ],
    summary: () => 'Intercom workspace',
    webhook: {
      where: 'Webhook URL (Developer Hub → your app → Webhooks)',
      secret: null,
    },
  },
  HUBSPOT: {
    what: 'Both ways: HubSpot companies, contacts and deals come in; DevSignal scores go out to a “DevSignal” property group, every 15 minutes.',
    fields: [
      { key: 'accessToken', in: 'credentials', label: 'Private app access token', type: 'secret', required: true, description: 'Settings → Integrations → Private apps (CRM objects and schemas read/write); or use “Connect with HubSpot” above' },
    ],
    summary: () => 'HubSpot portal',
  },
  SALESFORCE: {
    what: 'Both ways: Salesforce Accounts, Contacts and Opportunities come in; DevSignal scores go out to DevSignal custom fields, every 15 minutes.',
    fields: [
      { key: 'instanceUrl', in: 'credentials', label: 'Instance URL', type: 'text', required: true, description: 'https://yourcompany.my.salesforce.com; or use “Connect with Salesforce” above', placeholder: 'https://acme.my.salesforce.com' },
      { key: 'accessToken', in: 'credentials', label: 'Access token', type: 'secret', required: true, description: 'A session or connected-app token of an integration user' },
    ],
    summary: () => 'Salesforce org',
  },
  ZENDESK: {
    what: 'Tickets created, updated, solved and rated in Zendesk, by sync and webhook.',
    fields: [
      { key: 'subdomain', in: 'config', label: 'Subdomain', type: 'text', required: true, description: 'acme for acme.zendesk.com', placeholder: 'acme' },
      { key: 'email', in: 'credentials', label: 'Agent email', type: 'text', required: true, description: 'The admin or agent the API token belongs to' },
      { key: 'apiToken', in: 'credentials', label: 'API token', type: 'secret', required: true, description: 'Admin Center → Apps and integrations → Zendesk API' },
      { key: 'webhookSecret', in: 'credentials', label: 'Webhook signing secret', type: 'secret', required: true, description: 'Shown by Zendesk for the webhook (Admin Center → Webhooks → your webhook → Signing secret)' },
    ],
    summary: (c) => (text(c, 'subdomain') ? `${text(c, 'subdomain')}.zendesk.com` : ''),
    webhook: {
      where: 'Endpoint URL (Admin Center → Apps and integrations → Webhooks, JSON, POST)',
      secret: null,
    },
  },
  CLEARBIT: {
    what: 'Fills the empty fields of accounts (industry, size, location, logo, tech) and contacts (title, seniority, location) from Clearbit, nightly and on demand. It never overwrites what you entered.',
    fields: [
      { key: 'apiKey', in: 'credentials', label: 'API key', type: 'secret', required: true, description: 'Your Clearbit secret key (sk_…), from the Clearbit dashboard → API' },
    ],
    summary: () => 'Company and person enrichment',
  },
};

/** Why the secret of a desk that signs its own webhooks is not needed there. */
const OWN_SIGNATURE: Partial<Record<Kind, string>> = {
  INTERCOM: 'Intercom signs each delivery with your app’s client secret (the one you entered), so DevSignal’s webhook secret is not needed there.',
  ZENDESK: 'Zendesk signs each delivery with the webhook’s own signing secret (the one you entered), so DevSignal’s webhook secret is not needed there.',
};

const FALLBACK_LABELS: Record<string, string> = { GITHUB: 'GitHub', NPM: 'npm', PYPI: 'PyPI', HUBSPOT: 'HubSpot', SALESFORCE: 'Salesforce' };
const configOf = (i: { config: unknown }) => (i.config && typeof i.config === 'object' ? (i.config as Record<string, unknown>) : {});

const STATUS_STYLE: Record<string, { background: string; color: string }> = {
  CONNECTED: { background: '#d3f9d8', color: '#1e5631' },
  SYNCING: { background: '#d0ebff', color: '#1864ab' },
  BACKOFF: { background: '#fff3bf', color: '#7a4b00' },
  ERROR: { background: '#ffe3e3', color: '#a51d1d' },
  DISCONNECTED: { background: '#e9ecef', color: '#495057' },
  RUNNING: { background: '#d0ebff', color: '#1864ab' },
  SUCCEEDED: { background: '#d3f9d8', color: '#1e5631' },
  PARTIAL: { background: '#fff3bf', color: '#7a4b00' },
  FAILED: { background: '#ffe3e3', color: '#a51d1d' },
};

function StatusBadge({ status }: { status: string }) {
  return (
    <Badge variant="filled" style={STATUS_STYLE[status] ?? STATUS_STYLE.DISCONNECTED}>
      {status.toLowerCase()}
    </Badge>
  );
}

function describe(i: { kind: string; config: unknown }): string {
  const form = FORMS[i.kind as Kind];
  return (form?.summary(configOf(i)) ?? '') || 'nothing configured';
}

/** The API's field errors, `{path: message}` with full paths only (`config.keywords.0`). */
function fieldPaths(error: CombinedError | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of error?.graphQLErrors ?? []) {
    for (const f of (e.extensions as { fields?: { field: string; message: string }[] }).fields ?? []) out[f.field] = f.message;
  }
  return out;
}

/** Splits a textarea's list: one per line or comma-separated. */
const splitList = (v: string) => v.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);

const busy = (i: Integration) => i.status === 'SYNCING' || i.runs.nodes[0]?.status === 'RUNNING';

export default function Integrations() {
  const isAdmin = useIsAdmin();
  const [{ data, error, fetching }, reexecute] = useQuery({ query: IntegrationsQuery });
  const [{ data: kindsData, error: kindsError }] = useQuery({ query: KindsQuery });
  const kinds = kindsData?.integrationKinds ?? [];
  const kindLabel = (k: string) => kinds.find((x) => x.kind === k)?.label ?? FALLBACK_LABELS[k] ?? k.charAt(0) + k.slice(1).toLowerCase();
  // LinkedIn is not read by runs: no "Sync now", no runs table.
  const syncs = (k: string) => kinds.find((x) => x.kind === k)?.syncs ?? true;
  const [connectOpen, connectModal] = useDisclosure();
  const [selected, setSelected] = useState<string | null>(null);
  const [editing, setEditing] = useState<Integration | null>(null);
  const [leaving, setLeaving] = useState<Integration | null>(null);
  const [secret, setSecret] = useState<{ kind: Kind; secret: string; url: string | null } | null>(null);
  const [synced, sync] = useMutation(Sync);
  const [disconnected, disconnect] = useMutation(Disconnect);
  const refresh = () => reexecute({ requestPolicy: 'network-only' });
  const running = data?.integrations.some(busy) ?? false;
  // No event reports a run's progress: while one runs, ask again every two seconds.
  useEffect(() => {
    if (!running) return;
    const t = window.setInterval(() => reexecute({ requestPolicy: 'network-only' }), 2000);
    return () => window.clearInterval(t);
  }, [running, reexecute]);
  // Back from a CRM's consent page: say how it went, show that integration, clean the URL.
  const [oauthResult, setOauthResult] = useState<{ ok: boolean; message: string } | null>(null);
  useEffect(() => {
    const q = new URLSearchParams(window.location.search);
    const connected = q.get('connected');
    const problem = q.get('error');
    if (!connected && !problem) return;
    if (connected) {
      setOauthResult({ ok: true, message: `${FALLBACK_LABELS[connected] ?? connected} is connected. Its first sync starts within a few minutes, or use “Sync now”.` });
      setSelected(q.get('integration'));
    } else if (problem) {
      setOauthResult({ ok: false, message: problem });
    }
    window.history.replaceState(null, '', window.location.pathname);
  }, []);
  const shown = selected ?? data?.integrations.find((i) => i.status !== 'DISCONNECTED')?.id ?? null;
  const shownIntegration = data?.integrations.find((i) => i.id === shown);

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Integrations</Title>
        {isAdmin && <Button onClick={connectModal.open}>Connect a source</Button>}
      </Group>
      <Text size="sm" c="dimmed">
        Connected sources sync on their own schedule; “Sync now” starts a run at once. Credentials are stored sealed and never shown again.
      </Text>
      <ErrorNotice error={error ?? kindsError ?? synced.error ?? disconnected.error} />
      {oauthResult && (
        <Alert color={oauthResult.ok ? 'green' : 'red'} title={oauthResult.ok ? 'Connected' : 'Not connected'} withCloseButton onClose={() => setOauthResult(null)}>
          {oauthResult.message}
        </Alert>
      )}
      {secret && (
        <Alert color="green" title="Webhook for this integration" withCloseButton onClose={() => setSecret(null)}>
          <Stack gap="xs">
            {secret.url && <Snippet label={FORMS[secret.kind]?.webhook?.where ?? 'Webhook URL'} text={secret.url} />}
            {OWN_SIGNATURE[secret.kind] ? (
              <Text size="sm">{OWN_SIGNATURE[secret.kind]}</Text>
            ) : (
              <Snippet label={FORMS[secret.kind]?.webhook?.secret ?? 'Secret (shown once)'} text={secret.secret} />
            )}
          </Stack>
        </Alert>
      )}
      {!error && (
        <Paper withBorder p="md">
          {!data || (!kindsData && !kindsError) ? (
            (fetching || !kindsData) && <Loading />
          ) : data.integrations.length === 0 ? (
            <Empty title="No sources connected">
              {isAdmin
                ? 'Connect GitHub, package registries, communities (Stack Overflow, Reddit, Discord, Twitter/X), PostHog, LinkedIn or your support desk to turn what people do into signals.'
                : 'An admin can connect a source.'}
            </Empty>
          ) : (
            <Table aria-label="Integrations" verticalSpacing="sm">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Source</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Last sync</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {data.integrations.map((i) => (
                  <Table.Tr key={i.id} data-integration={i.id} bg={shown === i.id ? 'blue.0' : undefined}>
                    <Table.Td>
                      <Text size="sm" fw={600}>
                        {kindLabel(i.kind)}
                      </Text>
                      <Text size="xs" c="dimmed">
                        {describe(i)}
                      </Text>
                    </Table.Td>
                    <Table.Td>
                      <StatusBadge status={i.status} />
                      {i.lastError && (
                        <Text size="xs" c="red.9" mt={4} data-testid="integration-error">
                          {i.lastError}
                        </Text>
                      )}
                      {i.status === 'BACKOFF' && i.nextSyncAt && (
                        <Text size="xs" c="dimmed" mt={4}>
                          continues {new Date(i.nextSyncAt).toLocaleString()}
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td>
                      <Text size="sm">{i.lastSyncAt ? timeAgo(i.lastSyncAt) : 'never'}</Text>
                      <Text size="xs" c="dimmed">
                        last success {i.lastSuccessAt ? timeAgo(i.lastSuccessAt) : 'never'}
                      </Text>
                    </Table.Td>
                    <Table.Td>
                      <Group gap={4} justify="end">
                        <Button
                          size="compact-xs"
                          variant="default"
                          onClick={() => setSelected(i.id)}
                          aria-label={`${syncs(i.kind) ? 'Runs' : 'Details'} of ${kindLabel(i.kind)} ${describe(i)}`}
                        >
                          {syncs(i.kind) ? 'Runs' : 'Details'}
                        </Button>
                        {isAdmin && i.status !== 'DISCONNECTED' && (
                          <>
                            {syncs(i.kind) && (
                              <Button
                                size="compact-xs"
                                variant="default"
                                loading={busy(i)}
                                onClick={async () => {
                                  const r = await sync({ id: i.id, full: false });
                                  if (!r.error) {
                                    setSelected(i.id);
                                    refresh();
                                  }
                                }}
                              >
                                Sync now
                              </Button>
                            )}
                            <Button size="compact-xs" variant="default" onClick={() => setEditing(i)}>
                              Edit
                            </Button>
                            <Button size="compact-xs" variant="subtle" color="red" onClick={() => setLeaving(i)}>
                              Disconnect
                            </Button>
                          </>
                        )}
                      </Group>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </Paper>
      )}
      {shownIntegration && (shownIntegration.webhookUrl || shownIntegration.kind === 'LINKEDIN') && (
        <Inbound integration={shownIntegration} name={`${kindLabel(shownIntegration.kind)} · ${describe(shownIntegration)}`} isAdmin={isAdmin} />
      )}
      {shownIntegration && syncs(shownIntegration.kind) && (
        <Runs
          id={shownIntegration.id}
          crm={CRM_KINDS.includes(shownIntegration.kind)}
          name={`${kindLabel(shownIntegration.kind)} · ${describe(shownIntegration)}`}
          version={[shownIntegration.status, shownIntegration.lastSyncAt, shownIntegration.runs.nodes[0]?.id, shownIntegration.runs.nodes[0]?.status].join('|')}
        />
      )}
      <Modal opened={connectOpen} onClose={connectModal.close} title="Connect a source" size="lg">
        <ConnectForm
          kinds={kinds}
          onConnected={(id, s) => {
            connectModal.close();
            if (s.url) setSecret(s);
            setSelected(id);
            refresh();
          }}
        />
      </Modal>
      <Modal opened={!!editing} onClose={() => setEditing(null)} title={editing ? `Edit ${kindLabel(editing.kind)}` : ''} size="lg">
        {editing && (
          <EditForm
            integration={editing}
            onDone={() => {
              setEditing(null);
              refresh();
            }}
          />
        )}
      </Modal>
      <Modal opened={!!leaving} onClose={() => setLeaving(null)} title="Disconnect this source?">
        {leaving && (
          <Stack>
            <Text size="sm">
              {kindLabel(leaving.kind)} ({describe(leaving)}) stops syncing and its credentials are forgotten. Signals, runs and downloads already
              stored stay.
            </Text>
            <Group justify="end">
              <Button variant="default" onClick={() => setLeaving(null)}>
                Cancel
              </Button>
              <Button
                color="red"
                loading={disconnected.fetching}
                onClick={async () => {
                  const r = await disconnect({ id: leaving.id });
                  setLeaving(null);
                  if (!r.error) {
                    notifications.show({ title: 'Disconnected', message: `${kindLabel(leaving.kind)} no longer syncs.` });
                    refresh();
                  }
                }}
              >
                Disconnect
              </Button>
            </Group>
          </Stack>
        )}
      </Modal>
    </Stack>
  );
}

function Runs({ id, name, version, crm }: { id: string; name: string; version: string; crm: boolean }) {
  const [{ data, error, fetching }, reexecute] = useQuery({ query: RunsQuery, variables: { id } });
  // The integration changed (a run started or ended, its status moved): read its runs again.
  const [seen, setSeen] = useState(version);
  useEffect(() => {
    if (version === seen) return;
    setSeen(version);
    reexecute({ requestPolicy: 'network-only' });
  }, [version, seen, reexecute]);
  const runs = data?.integration.runs.nodes ?? [];
  return (
    <Paper withBorder p="md">
      <Title order={3} size="h5" mb="sm">
        Last runs · {name}
      </Title>
      <ErrorNotice error={error} />
      {!data ? (
        fetching && <Loading />
      ) : runs.length === 0 ? (
        <Text size="sm" c="dimmed">
          No runs yet. The first one starts within a minute of connecting, or use “Sync now”.
        </Text>
      ) : (
        <Table aria-label="Runs">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Status</Table.Th>
              <Table.Th>Started</Table.Th>
              <Table.Th>Duration</Table.Th>
              <Table.Th ta="right">Requests</Table.Th>
              {crm ? (
                <>
                  <Table.Th ta="right">Pulled</Table.Th>
                  <Table.Th ta="right">Pushed</Table.Th>
                </>
              ) : (
                <Table.Th ta="right">Signals</Table.Th>
              )}
              <Table.Th>Error</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {runs.map((r) => (
              <Table.Tr key={r.id}>
                <Table.Td>
                  <StatusBadge status={r.status} />
                  {r.full && (
                    <Text span size="xs" c="dimmed" ml={6}>
                      full
                    </Text>
                  )}
                </Table.Td>
                <Table.Td>{new Date(r.startedAt).toLocaleString()}</Table.Td>
                <Table.Td>{r.finishedAt ? `${((new Date(r.finishedAt).getTime() - new Date(r.startedAt).getTime()) / 1000).toFixed(1)} s` : 'running'}</Table.Td>
                <Table.Td ta="right">{r.requests}</Table.Td>
                {crm ? (
                  <>
                    <Table.Td ta="right">{r.pulled}</Table.Td>
                    <Table.Td ta="right">{r.pushed}</Table.Td>
                  </>
                ) : (
                  <Table.Td ta="right">{r.signalsCreated}</Table.Td>
                )}
                <Table.Td>
                  <Text size="xs" c={r.error ? 'red.9' : 'dimmed'}>
                    {r.error ?? '—'}
                  </Text>
                  {r.errors.slice(0, 5).map((e, i) => (
                    <Text key={i} size="xs" c="red.9">
                      {e.object} {e.externalId ?? e.id ?? ''}: {e.message}
                    </Text>
                  ))}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Paper>
  );
}

type Values = Record<string, string | string[]>;
const pathOf = (f: Field) => `${f.in}.${f.key}`;

/** The `config` and `credentials` a form's values make. Editing keeps the stored config's
 * other keys, drops emptied optional ones, and sends no credentials when none were typed. */
function build(fields: Field[], values: Values, stored?: Record<string, unknown>) {
  const config: Record<string, unknown> = { ...(stored ?? {}) };
  const credentials: Record<string, string> = {};
  for (const f of fields) {
    const raw = values[pathOf(f)];
    const value = f.type === 'tags' ? ((raw as string[] | undefined) ?? []) : f.type === 'lines' ? splitList((raw as string | undefined) ?? '') : ((raw as string | undefined) ?? '').trim();
    const empty = Array.isArray(value) ? value.length === 0 : value === '';
    if (f.in === 'credentials') {
      if (!empty) credentials[f.key] = value as string;
    } else if (empty && !f.required) {
      delete config[f.key];
    } else {
      config[f.key] = value;
    }
  }
  return { config, credentials: Object.keys(credentials).length ? credentials : null };
}

/** Each input's error (`config.keywords.1` → "Item 2: …" on Keywords), and the errors no input shows. */
function errorsOf(error: CombinedError | undefined, fields: Field[]) {
  const paths = fieldPaths(error);
  const byField: Record<string, string> = {};
  const unmatched: string[] = [];
  for (const [path, message] of Object.entries(paths)) {
    let field = fields.find((f) => path === pathOf(f) || path.startsWith(`${pathOf(f)}.`));
    // "credentials" as a whole: shown on the first credential input, if any.
    if (!field && path === 'credentials') field = fields.find((f) => f.in === 'credentials');
    if (!field) {
      unmatched.push(`${path}: ${message}`);
      continue;
    }
    const item = path.slice(pathOf(field).length + 1);
    const text = field.type === 'lines' && /^\d+$/.test(item) ? `Item ${Number(item) + 1}: ${message}` : message;
    const key = pathOf(field);
    byField[key] = byField[key] ? `${byField[key]}; ${text}` : text;
  }
  return { byField, unmatched, any: Object.keys(paths).length > 0 };
}

function FormErrors({ error, fields }: { error: CombinedError | undefined; fields: Field[] }) {
  const { unmatched, any } = errorsOf(error, fields);
  if (!error) return null;
  if (!any) return <ErrorNotice error={error} />;
  if (unmatched.length === 0) return null;
  return (
    <Alert color="red" title="Please check the form" role="alert">
      {unmatched.map((u) => (
        <div key={u}>{u}</div>
      ))}
    </Alert>
  );
}

function Inputs({ fields, values, setValue, error, editing }: { fields: Field[]; values: Values; setValue: (path: string, v: string | string[]) => void; error: CombinedError | undefined; editing?: boolean }) {
  const { byField } = errorsOf(error, fields);
  const manyCredentials = fields.filter((f) => f.in === 'credentials').length > 1;
  return (
    <>
      {fields.map((f, n) => {
        const path = pathOf(f);
        const secretEdit = editing && f.in === 'credentials';
        const common = {
          label: secretEdit ? `New ${f.label.charAt(0).toLowerCase()}${f.label.slice(1)}` : f.label,
          description: secretEdit ? (manyCredentials ? 'Leave every credential empty to keep the current ones; to change them, fill in each one' : 'Leave empty to keep the current one') : f.description,
          placeholder: f.placeholder,
          error: byField[path],
          withAsterisk: f.required && !secretEdit,
          'data-autofocus': n === 0 ? true : undefined,
        };
        if (f.type === 'tags') return <TagsInput key={path} {...common} value={(values[path] as string[] | undefined) ?? []} onChange={(v) => setValue(path, v)} />;
        const value = (values[path] as string | undefined) ?? '';
        if (f.type === 'lines') return <Textarea key={path} {...common} autosize minRows={2} maxRows={8} value={value} onChange={(e) => setValue(path, e.currentTarget.value)} />;
        if (f.type === 'secret') return <PasswordInput key={path} {...common} value={value} onChange={(e) => setValue(path, e.currentTarget.value)} autoComplete="off" />;
        return <TextInput key={path} {...common} value={value} onChange={(e) => setValue(path, e.currentTarget.value)} autoComplete="off" />;
      })}
    </>
  );
}

function ConnectForm({ kinds, onConnected }: { kinds: KindInfo[]; onConnected: (id: string, webhook: { kind: Kind; secret: string; url: string | null }) => void }) {
  const [result, connect] = useMutation(Connect);
  const [kind, setKind] = useState<Kind>('GITHUB');
  const [values, setValues] = useState<Values>({});
  const form = FORMS[kind];
  const fields = form?.fields ?? [];
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const { config, credentials } = build(fields, values);
    const r = await connect({ input: { kind, config, credentials } });
    if (r.data) onConnected(r.data.connectIntegration.integration.id, { kind, secret: r.data.connectIntegration.webhookSecret, url: r.data.connectIntegration.integration.webhookUrl ?? null });
  };
  if (kinds.length === 0) return <Loading />;
  // Built kinds first (the API's order), then the ones not available yet, greyed out.
  const options = [
    ...kinds.filter((k) => k.built && FORMS[k.kind]).map((k) => ({ value: k.kind, label: k.label })),
    ...kinds.filter((k) => !k.built).map((k) => ({ value: k.kind, label: `${k.label} (not available yet)`, disabled: true })),
  ];
  return (
    <form onSubmit={submit} noValidate>
      <Stack>
        <FormErrors error={result.error} fields={fields} />
        <Select
          label="Source"
          data={options}
          value={kind}
          onChange={(v) => {
            if (v) setKind(v as Kind);
            setValues({});
          }}
          allowDeselect={false}
          description={form?.what}
        />
        {kind === 'HUBSPOT' && <OAuthConnect kind="hubspot" label="HubSpot" tokenWord="a private app token" />}
        {kind === 'SALESFORCE' && <OAuthConnect kind="salesforce" label="Salesforce" tokenWord="an instance URL and access token" />}
        <Inputs key={kind} fields={fields} values={values} setValue={(path, v) => setValues((old) => ({ ...old, [path]: v }))} error={result.error} />
        {kind === 'LINKEDIN' && (
          <Text size="sm" c="dimmed">
            LinkedIn needs no credentials. After connecting you get a signed webhook URL, and can import people from a CSV.
          </Text>
        )}
        <Button type="submit" loading={result.fetching}>
          Connect
        </Button>
      </Stack>
    </form>
  );
}

/** Connects a CRM through its consent page: the server answers the URL to go to (it needs the
 * in-memory token, so this is a fetch, then a navigation). */
function OAuthConnect({ kind, label, tokenWord }: { kind: string; label: string; tokenWord: string }) {
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const go = async () => {
    setBusy(true);
    setProblem(null);
    try {
      const r = await fetch(`/api/v1/integrations/${kind}/connect`, {
        headers: { accept: 'application/json', authorization: `Bearer ${accessToken() ?? ''}` },
      });
      const body = await r.json();
      if (r.ok && typeof body.url === 'string') {
        window.location.assign(body.url);
        return;
      }
      setProblem(body?.error?.message ?? `The server answered ${r.status}`);
    } catch (e) {
      setProblem(String(e));
    }
    setBusy(false);
  };
  return (
    <Stack gap={4}>
      <Button variant="light" onClick={go} loading={busy}>
        Connect with {label}
      </Button>
      {problem && (
        <Text size="sm" c="red.9">
          {problem}
        </Text>
      )}
      <Text size="xs" c="dimmed">
        Or paste {tokenWord} below.
      </Text>
    </Stack>
  );
}

function EditForm({ integration, onDone }: { integration: Integration; onDone: () => void }) {
  const [result, update] = useMutation(Update);
  const fields = FORMS[integration.kind]?.fields ?? [];
  const stored = configOf(integration);
  const [values, setValues] = useState<Values>(() => {
    const v: Values = {};
    for (const f of fields) {
      if (f.in !== 'config') continue;
      if (f.type === 'tags') v[pathOf(f)] = list(stored, f.key);
      else if (f.type === 'lines') v[pathOf(f)] = list(stored, f.key).join('\n');
      else v[pathOf(f)] = text(stored, f.key);
    }
    return v;
  });
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const { config, credentials } = build(fields, values, stored);
    const r = await update({ id: integration.id, input: { config, credentials } });
    if (!r.error) onDone();
  };
  return (
    <form onSubmit={submit} noValidate>
      <Stack>
        <FormErrors error={result.error} fields={fields} />
        {integration.lastError && (
          <Alert color="red" title="Stopped">
            {integration.lastError}. A new configuration or token lets it run again.
          </Alert>
        )}
        <Inputs
          fields={fields.map((f) => (f.type === 'tags' ? { ...f, description: 'Press Enter after each' } : f))}
          values={values}
          setValue={(path, v) => setValues((old) => ({ ...old, [path]: v }))}
          error={result.error}
          editing
        />
        <Button type="submit" loading={result.fetching}>
          Save
        </Button>
      </Stack>
    </form>
  );
}

/** Where the source sends webhooks, and (LinkedIn) the import of people from a CSV. */
function Inbound({ integration, name, isAdmin }: { integration: Integration; name: string; isAdmin: boolean }) {
  const kind = integration.kind;
  const webhook = FORMS[kind]?.webhook;
  const open = integration.status !== 'DISCONNECTED';
  return (
    <Paper withBorder p="md">
      <Title order={3} size="h5" mb="sm">
        {kind === 'LINKEDIN' ? 'Webhook and import' : 'Webhook'} · {name}
      </Title>
      <Stack gap="sm">
        {kind === 'LINKEDIN' && (
          <Text size="sm" c="dimmed">
            LinkedIn has no API to read, so this integration is not synced: events arrive by its webhook and people by import.
          </Text>
        )}
        {integration.webhookUrl && (
          <>
            <Snippet label={webhook?.where ?? 'Webhook URL'} text={integration.webhookUrl} />
            <Text size="xs" c="dimmed">
              {OWN_SIGNATURE[kind] ?? 'Deliveries are signed with the webhook secret shown once when this source was connected (X-Hub-Signature-256).'}
            </Text>
          </>
        )}
        {kind === 'LINKEDIN' && isAdmin && open && <ImportPeople id={integration.id} />}
      </Stack>
    </Paper>
  );
}

function ImportPeople({ id }: { id: string }) {
  const [result, importPeople] = useMutation(ImportLinkedIn);
  const [csv, setCsv] = useState('');
  const [done, setDone] = useState<{ rows: number; contacts: number; accounts: number } | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setDone(null);
    const r = await importPeople({ id, format: 'CSV', data: csv });
    if (r.data) setDone(r.data.importLinkedInContacts);
  };
  const rowErrors = Object.entries(fieldPaths(result.error)).map(([path, message]) => `${path}: ${message}`);
  const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  return (
    <form onSubmit={submit} noValidate aria-labelledby={`import-${id}`}>
      <Stack gap="xs">
        <Title order={4} size="h6" id={`import-${id}`}>
          Import people (CSV)
        </Title>
        {!rowErrors.length && <ErrorNotice error={result.error} />}
        <div>
          <Text component="label" htmlFor={`import-file-${id}`} size="sm" fw={500} display="block">
            CSV file
          </Text>
          <input
            id={`import-file-${id}`}
            type="file"
            accept=".csv,text/csv"
            onChange={async (e) => {
              const file = e.currentTarget.files?.[0];
              if (file) setCsv(await file.text());
            }}
          />
        </div>
        <Textarea
          label="People (CSV)"
          description="A header row, then one person a row: the LinkedIn profile URL, and optionally email, name (or first and last name), title, company and company domain. Choose a file or paste it here."
          autosize
          minRows={3}
          maxRows={10}
          value={csv}
          onChange={(e) => setCsv(e.currentTarget.value)}
          error={rowErrors.length ? rowErrors.join('; ') : undefined}
          styles={{ input: { fontFamily: 'monospace' } }}
        />
        <Group>
          <Button type="submit" loading={result.fetching} disabled={!csv.trim()}>
            Import people
          </Button>
        </Group>
        {done && (
          <Alert color="green" title="Imported" role="status">
            {plural(done.rows, 'row', 'rows')}: {plural(done.contacts, 'person', 'people')}, {plural(done.accounts, 'company', 'companies')} linked.
          </Alert>
        )}
      </Stack>
    </form>
  );
}
