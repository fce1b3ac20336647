// The audit log (admins): who did what, newest first, paged.
import { useState } from 'react';
import { Button, Code, Group, Paper, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from 'urql';
import { graphql } from '../../graphql';
import { Empty, ErrorNotice, Loading } from '../../ui';

const AuditQuery = graphql(`
  query AuditLog($after: String) {
    auditLog(first: 50, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { id action userId apiKeyId targetType targetId ip createdAt }
    }
    members { user { id name } }
  }
`);

export default function Audit() {
  const [after, setAfter] = useState<string[]>([]);
  const [{ data, error, fetching }] = useQuery({ query: AuditQuery, variables: { after: after[after.length - 1] ?? null } });
  const names = new Map((data?.members ?? []).map((m) => [m.user.id, m.user.name]));
  return (
    <Stack>
      <Title order={2}>Audit log</Title>
      <ErrorNotice error={error} />
      <Paper withBorder p="md">
        {!data?.auditLog ? (
          fetching && <Loading />
        ) : data.auditLog.nodes.length === 0 ? (
          <Empty title="Nothing recorded yet">Sign-ins, key and role changes and other sensitive actions are recorded here.</Empty>
        ) : (
          <>
            <Table aria-label="Audit log">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>When</Table.Th>
                  <Table.Th>Action</Table.Th>
                  <Table.Th>By</Table.Th>
                  <Table.Th>Target</Table.Th>
                  <Table.Th>IP</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {data.auditLog.nodes.map((e) => (
                  <Table.Tr key={e.id}>
                    <Table.Td>{new Date(e.createdAt).toLocaleString()}</Table.Td>
                    <Table.Td>
                      <Code>{e.action}</Code>
                    </Table.Td>
                    <Table.Td>{e.userId ? (names.get(e.userId) ?? 'former member') : e.apiKeyId ? 'API key' : 'system'}</Table.Td>
                    <Table.Td>{e.targetType ? `${e.targetType} ${e.targetId?.slice(0, 8) ?? ''}` : '—'}</Table.Td>
                    <Table.Td>{e.ip ?? '—'}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
            <Group justify="space-between" mt="sm">
              <Text size="sm" c="dimmed">
                {data.auditLog.totalCount} entries
              </Text>
              <Group>
                <Button variant="default" disabled={after.length === 0} onClick={() => setAfter((a) => a.slice(0, -1))}>
                  Newer
                </Button>
                <Button variant="default" disabled={!data.auditLog.pageInfo.hasNextPage} onClick={() => setAfter((a) => [...a, data.auditLog.pageInfo.endCursor ?? ''])}>
                  Older
                </Button>
              </Group>
            </Group>
          </>
        )}
      </Paper>
    </Stack>
  );
}
