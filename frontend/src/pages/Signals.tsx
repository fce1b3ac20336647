// Every signal of the organization, newest first, filtered by type and source.
import { useState } from 'react';
import { Link } from 'react-router-dom';
import { Anchor, Button, Code, Group, Paper, ScrollArea, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useQuery } from 'urql';
import { graphql } from '../graphql';
import { Empty, ErrorNotice, Loading, contactName, timeAgo } from '../ui';

const SignalsQuery = graphql(`
  query SignalsPage($first: Int!, $after: String, $filter: SignalFilter) {
    signals(first: $first, after: $after, filter: $filter) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        id
        type
        timestamp
        metadata
        source { id name }
        contact { id firstName lastName email github }
        account { id name }
      }
    }
    signalSources { id name kind }
  }
`);

export default function Signals() {
  const [type, setType] = useState('');
  const [source, setSource] = useState<string | null>(null);
  const [debouncedType] = useDebouncedValue(type.trim(), 300);
  const [after, setAfter] = useState<string[]>([]);
  const filter = {
    type: debouncedType ? debouncedType.split(',').map((t) => t.trim()).filter(Boolean) : null,
    source: source,
  };
  const [{ data, error, fetching }] = useQuery({
    query: SignalsQuery,
    variables: { first: 50, after: after[after.length - 1] ?? null, filter },
  });
  return (
    <Stack>
      <Title order={2}>Signals</Title>
      <Paper withBorder p="md">
        <Group mb="sm">
          <TextInput
            label="Type"
            placeholder="e.g. repo_star, package_install"
            value={type}
            onChange={(e) => {
              setType(e.currentTarget.value);
              setAfter([]);
            }}
          />
          <Select
            label="Source"
            placeholder="Any source"
            clearable
            data={(data?.signalSources ?? []).map((s) => ({ value: s.id, label: `${s.name} (${s.kind})` }))}
            value={source}
            onChange={(v) => {
              setSource(v);
              setAfter([]);
            }}
          />
        </Group>
        <ErrorNotice error={error} />
        {!data ? (
          fetching && <Loading />
        ) : data.signals.nodes.length === 0 ? (
          <Empty title={filter.type || source ? 'No signals match' : 'No signals yet'}>
            {filter.type || source ? (
              'Try another type or source.'
            ) : (
              <>
                Send one with an API key (see <Anchor component={Link} to="/onboarding">Get started</Anchor>) or connect a source.
              </>
            )}
          </Empty>
        ) : (
          <>
            <Text size="sm" c="dimmed" mb="xs">
              {data.signals.totalCount} signals
            </Text>
            <ScrollArea>
              <Table miw={700} aria-label="Signals">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Type</Table.Th>
                    <Table.Th>Who</Table.Th>
                    <Table.Th>Account</Table.Th>
                    <Table.Th>Source</Table.Th>
                    <Table.Th>When</Table.Th>
                    <Table.Th>Metadata</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {data.signals.nodes.map((s) => (
                    <Table.Tr key={s.id}>
                      <Table.Td fw={600}>{s.type}</Table.Td>
                      <Table.Td>{s.contact ? <Anchor component={Link} to={`/contacts/${s.contact.id}`}>{contactName(s.contact)}</Anchor> : 'anonymous'}</Table.Td>
                      <Table.Td>{s.account ? <Anchor component={Link} to={`/accounts/${s.account.id}`}>{s.account.name}</Anchor> : '—'}</Table.Td>
                      <Table.Td>{s.source?.name ?? '—'}</Table.Td>
                      <Table.Td title={s.timestamp}>{timeAgo(s.timestamp)}</Table.Td>
                      <Table.Td>
                        <Code fz="xs">{JSON.stringify(s.metadata).slice(0, 80)}</Code>
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </ScrollArea>
            <Group justify="center" mt="sm">
              <Button variant="default" disabled={after.length === 0} onClick={() => setAfter((a) => a.slice(0, -1))}>
                Newer
              </Button>
              <Button
                variant="default"
                disabled={!data.signals.pageInfo.hasNextPage}
                onClick={() => setAfter((a) => [...a, data.signals.pageInfo.endCursor ?? ''])}
              >
                Older
              </Button>
            </Group>
          </>
        )}
      </Paper>
    </Stack>
  );
}
