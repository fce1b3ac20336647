// Outbound webhooks: endpoints (create, test, rotate secret, replay a time range) and each
// endpoint's delivery log with redelivery.
import { useState, type FormEvent } from 'react';
import { Alert, Badge, Button, Code, Group, Modal, MultiSelect, Paper, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { notifications } from '@mantine/notifications';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../../graphql';
import { Empty, ErrorNotice, Loading, fieldErrors, timeAgo, useIsAdmin } from '../../ui';
import { Snippet } from './ApiKeys';

const EndpointsQuery = graphql(`
  query WebhookEndpoints {
    webhookEndpoints { id url description eventTypes enabled status disabledReason failingSince createdAt }
    webhookEventTypes
  }
`);
const DeliveriesQuery = graphql(`
  query WebhookDeliveries($endpointId: ID) {
    webhookDeliveries(endpointId: $endpointId, first: 25) {
      nodes { id eventType status createdAt nextAttemptAt attempts { at statusCode latencyMs error } }
    }
  }
`);
const CreateEndpoint = graphql(`
  mutation CreateWebhookEndpoint($input: CreateWebhookEndpointInput!) {
    createWebhookEndpoint(input: $input) { id secret }
  }
`);
const SendTest = graphql(`
  mutation SendTestWebhook($endpointId: ID!) {
    sendTestWebhook(endpointId: $endpointId) { id status }
  }
`);
const Rotate = graphql(`
  mutation RotateWebhookSecret($id: ID!) {
    rotateWebhookSecret(id: $id) { id secret previousSecretExpiresAt }
  }
`);
const Redeliver = graphql(`
  mutation Redeliver($deliveryId: ID!) {
    redeliverWebhook(deliveryId: $deliveryId) { id status }
  }
`);
const Replay = graphql(`
  mutation Replay($endpointId: ID!, $from: DateTime!, $to: DateTime!) {
    replayWebhooks(endpointId: $endpointId, from: $from, to: $to) { count }
  }
`);

export default function Webhooks() {
  const isAdmin = useIsAdmin();
  const [{ data, error, fetching }, reexecute] = useQuery({ query: EndpointsQuery });
  const [opened, modal] = useDisclosure();
  const [selected, setSelected] = useState<string | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const [test, sendTest] = useMutation(SendTest);
  const [rotated, rotate] = useMutation(Rotate);
  const [replayed, replay] = useMutation(Replay);
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Webhooks</Title>
        {isAdmin && <Button onClick={modal.open}>Add endpoint</Button>}
      </Group>
      <Text size="sm" c="dimmed">
        Events are POSTed with Standard Webhooks signatures (<Code>webhook-id</Code>, <Code>webhook-timestamp</Code>, <Code>webhook-signature</Code>).
      </Text>
      <ErrorNotice error={error ?? test.error ?? rotated.error ?? replayed.error} />
      {secret && (
        <Alert color="green" title="Signing secret" withCloseButton onClose={() => setSecret(null)}>
          <Snippet label="Shown once; store it with your receiver" text={secret} />
        </Alert>
      )}
      <Paper withBorder p="md">
        {!data ? (
          fetching && <Loading />
        ) : data.webhookEndpoints.length === 0 ? (
          <Empty title="No endpoints">{isAdmin ? 'Add an endpoint to receive signals, score and tier changes as they happen.' : 'An admin can add one.'}</Empty>
        ) : (
          <Table aria-label="Webhook endpoints">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Endpoint</Table.Th>
                <Table.Th>Events</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th />
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.webhookEndpoints.map((e) => (
                <Table.Tr key={e.id} bg={selected === e.id ? 'blue.0' : undefined}>
                  <Table.Td>
                    <Text size="sm" fw={600}>
                      {e.url}
                    </Text>
                    {e.description && (
                      <Text size="xs" c="dimmed">
                        {e.description}
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td>
                    <Text size="xs">{e.eventTypes.join(', ') || 'all events'}</Text>
                  </Table.Td>
                  <Table.Td>
                    <Badge color={e.status === 'HEALTHY' ? 'green' : 'orange'} variant="light">
                      {e.status.toLowerCase()}
                    </Badge>
                    {e.disabledReason && (
                      <Text size="xs" c="red">
                        {e.disabledReason}
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td>
                    <Group gap={4} justify="end">
                      <Button size="compact-xs" variant="default" onClick={() => setSelected(e.id)}>
                        Deliveries
                      </Button>
                      {isAdmin && (
                        <>
                          <Button
                            size="compact-xs"
                            variant="default"
                            onClick={async () => {
                              if (!(await sendTest({ endpointId: e.id })).error) notifications.show({ title: 'Test sent', message: 'A test event is on its way.' });
                              setSelected(e.id);
                            }}
                          >
                            Send test
                          </Button>
                          <Button
                            size="compact-xs"
                            variant="default"
                            onClick={async () => {
                              const from = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
                              const r = await replay({ endpointId: e.id, from, to: new Date().toISOString() });
                              if (r.data) notifications.show({ title: 'Replaying', message: `${r.data.replayWebhooks.count} events of the last 24 hours are sent again.` });
                            }}
                          >
                            Replay 24h
                          </Button>
                          <Button
                            size="compact-xs"
                            variant="default"
                            onClick={async () => {
                              if (!confirm('Rotate the signing secret? The old one keeps working for 24 hours.')) return;
                              const r = await rotate({ id: e.id });
                              if (r.data?.rotateWebhookSecret.secret) setSecret(r.data.rotateWebhookSecret.secret);
                            }}
                          >
                            Rotate secret
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
      {selected && <Deliveries endpointId={selected} />}
      <Modal opened={opened} onClose={modal.close} title="Add a webhook endpoint" size="lg">
        <EndpointForm
          eventTypes={data?.webhookEventTypes ?? []}
          onCreated={(s) => {
            setSecret(s);
            modal.close();
            reexecute({ requestPolicy: 'network-only' });
          }}
        />
      </Modal>
    </Stack>
  );
}

function EndpointForm({ eventTypes, onCreated }: { eventTypes: string[]; onCreated: (secret: string | null) => void }) {
  const [result, create] = useMutation(CreateEndpoint);
  const [types, setTypes] = useState<string[]>([]);
  const fields = fieldErrors(result.error);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const r = await create({ input: { url: String(f.get('url') ?? ''), description: String(f.get('description') ?? '') || null, eventTypes: types } });
    if (r.data) onCreated(r.data.createWebhookEndpoint.secret ?? null);
  };
  return (
    <form onSubmit={submit} noValidate>
      <Stack>
        {!Object.keys(fields).length && <ErrorNotice error={result.error} />}
        <TextInput name="url" label="URL" placeholder="https://example.com/hooks/devsignal" required error={fields.url} data-autofocus />
        <TextInput name="description" label="Description" error={fields.description} />
        <MultiSelect label="Events" description="None selected: every event" data={eventTypes} value={types} onChange={setTypes} searchable error={fields.eventTypes} />
        <Button type="submit" loading={result.fetching}>
          Add endpoint
        </Button>
      </Stack>
    </form>
  );
}

function Deliveries({ endpointId }: { endpointId: string }) {
  const [{ data, error, fetching }, reexecute] = useQuery({ query: DeliveriesQuery, variables: { endpointId } });
  const [redelivered, redeliver] = useMutation(Redeliver);
  const isAdmin = useIsAdmin();
  return (
    <Paper withBorder p="md">
      <Group justify="space-between" mb="sm">
        <Title order={3} size="h5">
          Delivery log
        </Title>
        <Button size="compact-xs" variant="subtle" onClick={() => reexecute({ requestPolicy: 'network-only' })}>
          Refresh
        </Button>
      </Group>
      <ErrorNotice error={error ?? redelivered.error} />
      {!data ? (
        fetching && <Loading />
      ) : data.webhookDeliveries.nodes.length === 0 ? (
        <Text size="sm" c="dimmed">
          No deliveries yet. Use “Send test” to try the endpoint.
        </Text>
      ) : (
        <Table aria-label="Deliveries">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Event</Table.Th>
              <Table.Th>Status</Table.Th>
              <Table.Th>Last attempt</Table.Th>
              <Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {data.webhookDeliveries.nodes.map((d) => {
              const last = d.attempts[d.attempts.length - 1];
              return (
                <Table.Tr key={d.id}>
                  <Table.Td>{d.eventType}</Table.Td>
                  <Table.Td>
                    <Badge color={d.status === 'SUCCEEDED' ? 'green' : d.status === 'FAILED' ? 'red' : 'gray'} variant="light">
                      {d.status.toLowerCase()}
                    </Badge>
                  </Table.Td>
                  <Table.Td>
                    {last ? `${last.statusCode ?? last.error ?? 'error'} · ${last.latencyMs} ms · ${timeAgo(last.at)}` : 'not attempted yet'}
                    <Text size="xs" c="dimmed">
                      {d.attempts.length} attempt{d.attempts.length === 1 ? '' : 's'}
                    </Text>
                  </Table.Td>
                  <Table.Td ta="right">
                    {isAdmin && (
                      <Button size="compact-xs" variant="default" onClick={() => void redeliver({ deliveryId: d.id }).then(() => reexecute({ requestPolicy: 'network-only' }))}>
                        Redeliver
                      </Button>
                    )}
                  </Table.Td>
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      )}
    </Paper>
  );
}
