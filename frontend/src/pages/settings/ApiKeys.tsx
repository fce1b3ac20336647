// API keys: create one with scopes (shown once, with a copyable curl and Segment snippet),
// list them with their last use, revoke.
import { useState, type FormEvent } from 'react';
import { Alert, Badge, Button, Checkbox, Code, CopyButton, Group, Modal, Paper, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../../graphql';
import { Empty, ErrorNotice, Loading, fieldErrors, timeAgo, useIsAdmin } from '../../ui';

const KeysQuery = graphql(`
  query ApiKeys {
    apiKeys { id name prefix scopes createdAt expiresAt revokedAt lastUsedAt }
  }
`);
const Create = graphql(`
  mutation CreateApiKey($input: CreateApiKeyInput!) {
    createApiKey(input: $input) { key apiKey { id name } }
  }
`);
const Revoke = graphql(`
  mutation RevokeApiKey($id: ID!) {
    revokeApiKey(id: $id) { id revokedAt }
  }
`);

export const SCOPES: [string, string][] = [
  ['signals:write', 'Send signals (ingest API, Segment)'],
  ['signals:read', 'Read signals and signal sources'],
  ['accounts:read', 'Read accounts and their scores'],
  ['accounts:write', 'Change accounts'],
  ['contacts:read', 'Read contacts and merge suggestions'],
  ['contacts:write', 'Change and merge contacts'],
  ['deals:read', 'Read deals'],
  ['deals:write', 'Change deals'],
  ['activities:read', 'Read activities'],
  ['activities:write', 'Change activities'],
  ['organization:read', 'Read the organization, its members (names, emails) and usage'],
  ['webhooks:manage', 'Manage webhook endpoints (for events the key may read)'],
  ['integrations:manage', 'Manage integrations'],
  ['admin', 'Everything an admin can do, while the key\'s creator is an admin'],
];

export function snippets(key: string) {
  const origin = location.origin;
  return {
    curl: `curl -X POST ${origin}/api/v1/signals \\
  -H "Authorization: Bearer ${key}" \\
  -H "Content-Type: application/json" \\
  -d '{"type": "repo_star", "actor": {"email": "jane@acme.io", "github": "janedev"}, "metadata": {"repo": "cli"}}'`,
    segment: `// npm install @segment/analytics-node
import { Analytics } from '@segment/analytics-node';

const analytics = new Analytics({ writeKey: '${key}', host: '${origin}' });
analytics.track({ userId: 'user-42', event: 'cli_installed', properties: { version: '1.2.0' } });`,
  };
}

export function Snippet({ label, text }: { label: string; text: string }) {
  return (
    <div>
      <Group justify="space-between" mb={4}>
        <Text size="sm" fw={600}>
          {label}
        </Text>
        <CopyButton value={text}>
          {({ copied, copy }) => (
            <Button size="compact-xs" variant="light" onClick={copy}>
              {copied ? 'Copied' : 'Copy'}
            </Button>
          )}
        </CopyButton>
      </Group>
      <Code block fz="xs">
        {text}
      </Code>
    </div>
  );
}

export function CreateKeyForm({ onCreated }: { onCreated?: (key: string) => void }) {
  const [result, create] = useMutation(Create);
  const [scopes, setScopes] = useState<string[]>(['signals:write']);
  const [created, setCreated] = useState<string | null>(null);
  const fields = fieldErrors(result.error);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const name = String(new FormData(e.currentTarget).get('name') ?? '');
    const r = await create({ input: { name, scopes } });
    if (r.data) {
      setCreated(r.data.createApiKey.key);
      onCreated?.(r.data.createApiKey.key);
    }
  };
  if (created) {
    const s = snippets(created);
    return (
      <Stack>
        <Alert color="green" title="Key created">
          Copy it now: it is shown only once.
        </Alert>
        <Snippet label="API key" text={created} />
        <Snippet label="Send a signal with curl" text={s.curl} />
        <Snippet label="Or with Segment's Node library" text={s.segment} />
      </Stack>
    );
  }
  return (
    <form onSubmit={submit} noValidate>
      <Stack>
        <ErrorNotice error={result.error} />
        <TextInput name="name" label="Name" placeholder="e.g. Production backend" required error={fields.name} data-autofocus />
        <Checkbox.Group label="Scopes" value={scopes} onChange={setScopes} error={fields.scopes}>
          <Stack gap={6} mt={6}>
            {SCOPES.map(([scope, what]) => (
              <Checkbox key={scope} value={scope} label={<><Code>{scope}</Code> {what}</>} />
            ))}
          </Stack>
        </Checkbox.Group>
        <Button type="submit" loading={result.fetching}>
          Create key
        </Button>
      </Stack>
    </form>
  );
}

export default function ApiKeys() {
  const [{ data, error, fetching }, reexecute] = useQuery({ query: KeysQuery });
  const [revoked, revoke] = useMutation(Revoke);
  const [opened, modal] = useDisclosure();
  const isAdmin = useIsAdmin();
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>API keys</Title>
        {isAdmin && <Button onClick={modal.open}>Create API key</Button>}
      </Group>
      <Text size="sm" c="dimmed">
        Keys authenticate servers and scripts: <Code>Authorization: Bearer dsk_…</Code> or <Code>X-API-Key</Code>, and as a Segment write key.
      </Text>
      <ErrorNotice error={error ?? revoked.error} />
      <Paper withBorder p="md">
        {!data ? (
          fetching && <Loading />
        ) : data.apiKeys.length === 0 ? (
          <Empty title="No API keys">{isAdmin ? 'Create one to send signals from your product or backend.' : 'An admin can create one.'}</Empty>
        ) : (
          <Table aria-label="API keys">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Name</Table.Th>
                <Table.Th>Key</Table.Th>
                <Table.Th>Scopes</Table.Th>
                <Table.Th>Last used</Table.Th>
                <Table.Th />
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.apiKeys.map((k) => (
                <Table.Tr key={k.id}>
                  <Table.Td>{k.name}</Table.Td>
                  <Table.Td>
                    <Code>{k.prefix}…</Code>
                  </Table.Td>
                  <Table.Td>
                    <Group gap={4}>
                      {k.scopes.map((s) => (
                        <Badge key={s} size="xs" variant="light" tt="none">
                          {s}
                        </Badge>
                      ))}
                    </Group>
                  </Table.Td>
                  <Table.Td>{k.revokedAt ? <Badge color="gray">revoked</Badge> : timeAgo(k.lastUsedAt)}</Table.Td>
                  <Table.Td ta="right">
                    {isAdmin && !k.revokedAt && (
                      <Button
                        size="xs"
                        color="red"
                        variant="subtle"
                        onClick={() => {
                          if (confirm(`Revoke “${k.name}”? Requests with it fail at once.`)) void revoke({ id: k.id });
                        }}
                      >
                        Revoke
                      </Button>
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Paper>
      <Modal
        opened={opened}
        onClose={() => {
          modal.close();
          reexecute({ requestPolicy: 'network-only' });
        }}
        title="Create an API key"
        size="lg"
      >
        <CreateKeyForm />
      </Modal>
    </Stack>
  );
}
