// Deals as a board by stage (drag a card to another column, or pick the stage from its menu
// with the keyboard) and as a list.
import { useState, type DragEvent } from 'react';
import { Link } from 'react-router-dom';
import { Anchor, Badge, Card, Group, NativeSelect, Paper, ScrollArea, SegmentedControl, Stack, Table, Text, Title } from '@mantine/core';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../graphql';
import { Empty, ErrorNotice, Loading, useCanWrite } from '../ui';

const DealsQuery = graphql(`
  query DealsPage {
    deals(first: 100, orderBy: { field: UPDATED_AT, direction: DESC }) {
      totalCount
      nodes { id title amount currency stage probability account { id name } owner { name } }
    }
  }
`);

const Move = graphql(`
  mutation MoveDeal($id: ID!, $stage: DealStage!) {
    moveDeal(id: $id, stage: $stage) { id stage }
  }
`);

const STAGES = ['ANONYMOUS_USAGE', 'IDENTIFIED', 'ACTIVATED', 'TEAM_ADOPTION', 'EXPANSION_SIGNAL', 'SALES_QUALIFIED', 'NEGOTIATION', 'CLOSED_WON', 'CLOSED_LOST'] as const;
type Stage = (typeof STAGES)[number];
const label = (s: string) => s.replace(/_/g, ' ').toLowerCase().replace(/^./, (c) => c.toUpperCase());
const money = (amount: number | null | undefined, currency: string) =>
  amount == null ? '' : amount.toLocaleString(undefined, { style: 'currency', currency, maximumFractionDigits: 0 });

export default function Deals() {
  const [{ data, error, fetching }] = useQuery({ query: DealsQuery });
  const [move, runMove] = useMutation(Move);
  const [view, setView] = useState('board');
  const [over, setOver] = useState<string | null>(null);
  const canWrite = useCanWrite();
  if (error) return <ErrorNotice error={error} />;
  if (!data) return fetching ? <Loading /> : null;
  const deals = data.deals.nodes;
  const drop = (stage: Stage) => (e: DragEvent) => {
    e.preventDefault();
    setOver(null);
    const id = e.dataTransfer.getData('text/deal-id');
    if (id) void runMove({ id, stage });
  };
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Deals</Title>
        <SegmentedControl aria-label="View" value={view} onChange={setView} data={[{ value: 'board', label: 'Board' }, { value: 'list', label: 'List' }]} />
      </Group>
      <ErrorNotice error={move.error} />
      {deals.length === 0 ? (
        <Empty title="No deals yet">Open an account and use “New deal” to start tracking one.</Empty>
      ) : view === 'board' ? (
        <ScrollArea>
          <Group align="start" wrap="nowrap" gap="sm" pb="md">
            {STAGES.map((stage) => {
              const here = deals.filter((d) => d.stage === stage);
              return (
                <Paper
                  key={stage}
                  withBorder
                  p="xs"
                  w={230}
                  miw={230}
                  bg={over === stage ? 'blue.0' : 'gray.0'}
                  onDragOver={(e) => {
                    if (!canWrite) return;
                    e.preventDefault();
                    setOver(stage);
                  }}
                  onDragLeave={() => setOver(null)}
                  onDrop={drop(stage)}
                  aria-label={`${label(stage)} column`}
                  data-stage={stage}
                >
                  <Group justify="space-between" mb="xs">
                    <Text size="sm" fw={700}>
                      {label(stage)}
                    </Text>
                    <Badge size="sm" variant="light">
                      {here.length}
                    </Badge>
                  </Group>
                  <Stack gap="xs" mih={60}>
                    {here.map((d) => (
                      <Card
                        key={d.id}
                        withBorder
                        padding="xs"
                        draggable={canWrite}
                        onDragStart={(e) => e.dataTransfer.setData('text/deal-id', d.id)}
                        style={{ cursor: canWrite ? 'grab' : 'default' }}
                        data-deal={d.title}
                      >
                        <Text size="sm" fw={600}>
                          {d.title}
                        </Text>
                        <Text size="xs" c="dimmed">
                          {d.account ? <Anchor component={Link} to={`/accounts/${d.account.id}`} size="xs">{d.account.name}</Anchor> : 'No account'} {money(d.amount, d.currency)}
                        </Text>
                        {canWrite && (
                          <NativeSelect
                            size="xs"
                            mt={4}
                            aria-label={`Stage of ${d.title}`}
                            value={d.stage ?? ''}
                            onChange={(e) => void runMove({ id: d.id, stage: e.currentTarget.value as Stage })}
                            data={STAGES.map((s) => ({ value: s, label: label(s) }))}
                          />
                        )}
                      </Card>
                    ))}
                  </Stack>
                </Paper>
              );
            })}
          </Group>
        </ScrollArea>
      ) : (
        <Table aria-label="Deals">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Deal</Table.Th>
              <Table.Th>Account</Table.Th>
              <Table.Th>Stage</Table.Th>
              <Table.Th ta="right">Amount</Table.Th>
              <Table.Th>Owner</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {deals.map((d) => (
              <Table.Tr key={d.id}>
                <Table.Td>{d.title}</Table.Td>
                <Table.Td>{d.account ? <Anchor component={Link} to={`/accounts/${d.account.id}`}>{d.account.name}</Anchor> : '—'}</Table.Td>
                <Table.Td>{d.stage ? label(d.stage) : '—'}</Table.Td>
                <Table.Td ta="right">{money(d.amount, d.currency)}</Table.Td>
                <Table.Td>{d.owner?.name ?? '—'}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}
