// Integrations: connect an outside source (GitHub repositories, npm or PyPI packages), see each
// one's status, last error and runs, start a sync now, change its configuration, disconnect.
import { useEffect, useState, type FormEvent } from 'react';
import { Alert, Badge, Button, Group, Modal, Paper, PasswordInput, Select, Stack, Table, TagsInput, Text, Title } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { notifications } from '@mantine/notifications';
import { useMutation, useQuery, type CombinedError } from 'urql';
import { graphql, type ResultOf } from '../../graphql';
import { Empty, ErrorNotice, Loading, fieldErrors, timeAgo, useIsAdmin } from '../../ui';
import { Snippet } from './ApiKeys';

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
const RunsQuery = graphql(`
  query IntegrationRuns($id: ID!) {
    integration(id: $id) {
      id
      runs(first: 20) {
        nodes { id status full startedAt finishedAt signalsCreated requests error }
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
const Disconnect = graphql(`
  mutation DisconnectIntegration($id: ID!) {
    disconnectIntegration(id: $id) { id status }
  }
`);

type Integration = ResultOf<typeof IntegrationsQuery>['integrations'][number];
type Kind = 'GITHUB' | 'NPM' | 'PYPI';

/** The sources the server can sync today; the API refuses the other kinds it names. */
const KINDS: { value: Kind; label: string; what: string }[] = [
  { value: 'GITHUB', label: 'GitHub', what: 'Stars, forks, issues and pull requests of your repositories (sync and signed webhook).' },
  { value: 'NPM', label: 'npm', what: 'Daily downloads, releases and download spikes of your npm packages.' },
  { value: 'PYPI', label: 'PyPI', what: 'Daily downloads, releases and download spikes of your Python packages.' },
];
const kindLabel = (k: string) => KINDS.find((x) => x.value === k)?.label ?? k.charAt(0) + k.slice(1).toLowerCase();

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

function configList(config: unknown, key: 'repos' | 'packages'): string[] {
  const v = (config as Record<string, unknown> | null)?.[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function describe(i: { kind: string; config: unknown }): string {
  const items = configList(i.config, i.kind === 'GITHUB' ? 'repos' : 'packages');
  return items.join(', ') || 'nothing configured';
}

/** The first message of a field whose path starts with `prefix` (`config.packages.0`, …). */
function fieldError(error: CombinedError | undefined, prefix: string): string | undefined {
  const all = fieldErrors(error);
  const key = Object.keys(all).find((k) => k === prefix || k.startsWith(`${prefix}.`));
  return key ? all[key] : undefined;
}

const busy = (i: Integration) => i.status === 'SYNCING' || i.runs.nodes[0]?.status === 'RUNNING';

export default function Integrations() {
  const isAdmin = useIsAdmin();
  const [{ data, error, fetching }, reexecute] = useQuery({ query: IntegrationsQuery });
  const [connectOpen, connectModal] = useDisclosure();
  const [selected, setSelected] = useState<string | null>(null);
  const [editing, setEditing] = useState<Integration | null>(null);
  const [leaving, setLeaving] = useState<Integration | null>(null);
  const [secret, setSecret] = useState<{ secret: string; url: string | null } | null>(null);
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
      <ErrorNotice error={error ?? synced.error ?? disconnected.error} />
      {secret && (
        <Alert color="green" title="Webhook for this integration" withCloseButton onClose={() => setSecret(null)}>
          <Stack gap="xs">
            {secret.url && <Snippet label="Payload URL (in the repository's webhook settings, content type application/json)" text={secret.url} />}
            <Snippet label="Secret (shown once)" text={secret.secret} />
          </Stack>
        </Alert>
      )}
      {!error && (
        <Paper withBorder p="md">
          {!data ? (
            fetching && <Loading />
          ) : data.integrations.length === 0 ? (
            <Empty title="No sources connected">
              {isAdmin
                ? 'Connect GitHub to turn stars, forks and issues into signals, or npm and PyPI to follow downloads and releases.'
                : 'An admin can connect GitHub, npm or PyPI.'}
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
                        <Button size="compact-xs" variant="default" onClick={() => setSelected(i.id)} aria-label={`Runs of ${kindLabel(i.kind)} ${describe(i)}`}>
                          Runs
                        </Button>
                        {isAdmin && i.status !== 'DISCONNECTED' && (
                          <>
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
      {shownIntegration && (
        <Runs
          id={shownIntegration.id}
          name={`${kindLabel(shownIntegration.kind)} · ${describe(shownIntegration)}`}
          version={[shownIntegration.status, shownIntegration.lastSyncAt, shownIntegration.runs.nodes[0]?.id, shownIntegration.runs.nodes[0]?.status].join('|')}
        />
      )}
      <Modal opened={connectOpen} onClose={connectModal.close} title="Connect a source" size="lg">
        <ConnectForm
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

function Runs({ id, name, version }: { id: string; name: string; version: string }) {
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
              <Table.Th ta="right">Signals</Table.Th>
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
                <Table.Td ta="right">{r.signalsCreated}</Table.Td>
                <Table.Td>
                  <Text size="xs" c={r.error ? 'red.9' : 'dimmed'}>
                    {r.error ?? '—'}
                  </Text>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Paper>
  );
}

function ConnectForm({ onConnected }: { onConnected: (id: string, webhook: { secret: string; url: string | null }) => void }) {
  const [result, connect] = useMutation(Connect);
  const [kind, setKind] = useState<Kind>('GITHUB');
  const [items, setItems] = useState<string[]>([]);
  const [token, setToken] = useState('');
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const config = kind === 'GITHUB' ? { repos: items } : { packages: items };
    const credentials = kind === 'GITHUB' && token ? { token } : null;
    const r = await connect({ input: { kind, config, credentials } });
    if (r.data) onConnected(r.data.connectIntegration.integration.id, { secret: r.data.connectIntegration.webhookSecret, url: r.data.connectIntegration.integration.webhookUrl ?? null });
  };
  const isGithub = kind === 'GITHUB';
  const listError = fieldError(result.error, isGithub ? 'config.repos' : 'config.packages');
  return (
    <form onSubmit={submit} noValidate>
      <Stack>
        {!listError && <ErrorNotice error={result.error} />}
        <Select
          label="Source"
          data={KINDS.map((k) => ({ value: k.value, label: k.label }))}
          value={kind}
          onChange={(v) => {
            if (v) setKind(v as Kind);
            setItems([]);
          }}
          allowDeselect={false}
          description={KINDS.find((k) => k.value === kind)?.what}
        />
        <TagsInput
          label={isGithub ? 'Repositories' : 'Packages'}
          description={isGithub ? 'owner/name; press Enter after each' : 'Package names; press Enter after each'}
          placeholder={isGithub ? 'acme/cli' : kind === 'NPM' ? '@acme/sdk' : 'acme-sdk'}
          value={items}
          onChange={setItems}
          error={listError}
          data-autofocus
        />
        {isGithub && (
          <PasswordInput
            label="Access token"
            description="A fine-grained token with read access to the repositories (optional for public ones; raises the rate limit)"
            value={token}
            onChange={(e) => setToken(e.currentTarget.value)}
            error={fieldError(result.error, 'credentials')}
            autoComplete="off"
          />
        )}
        <Button type="submit" loading={result.fetching}>
          Connect
        </Button>
      </Stack>
    </form>
  );
}

function EditForm({ integration, onDone }: { integration: Integration; onDone: () => void }) {
  const [result, update] = useMutation(Update);
  const isGithub = integration.kind === 'GITHUB';
  const key = isGithub ? 'repos' : 'packages';
  const [items, setItems] = useState<string[]>(configList(integration.config, key));
  const [token, setToken] = useState('');
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const config = { ...(integration.config as Record<string, unknown>), [key]: items };
    const r = await update({ id: integration.id, input: { config, credentials: isGithub && token ? { token } : null } });
    if (!r.error) onDone();
  };
  const listError = fieldError(result.error, `config.${key}`);
  return (
    <form onSubmit={submit} noValidate>
      <Stack>
        {!listError && <ErrorNotice error={result.error} />}
        {integration.lastError && (
          <Alert color="red" title="Stopped">
            {integration.lastError}. A new configuration or token lets it run again.
          </Alert>
        )}
        <TagsInput label={isGithub ? 'Repositories' : 'Packages'} description="Press Enter after each" value={items} onChange={setItems} error={listError} data-autofocus />
        {isGithub && (
          <PasswordInput
            label="New access token"
            description="Leave empty to keep the current one"
            value={token}
            onChange={(e) => setToken(e.currentTarget.value)}
            error={fieldError(result.error, 'credentials')}
            autoComplete="off"
          />
        )}
        <Button type="submit" loading={result.fetching}>
          Save
        </Button>
      </Stack>
    </form>
  );
}
