// Contacts: a searchable, paged list, and the merge suggestions (pairs that look like one
// person, with the evidence) that can be merged here.
import { useState } from 'react';
import { Link } from 'react-router-dom';
import { Alert, Anchor, Badge, Button, Card, Group, Paper, ScrollArea, Stack, Table, Tabs, Text, TextInput, Title } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../graphql';
import { Empty, ErrorNotice, Loading, contactName, useCanWrite } from '../ui';
import { Identities } from './Account';

const ContactsQuery = graphql(`
  query ContactsPage($first: Int!, $after: String, $filter: ContactFilter) {
    contacts(first: $first, after: $after, filter: $filter, orderBy: { field: UPDATED_AT, direction: DESC }) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { id firstName lastName email title github twitter linkedIn account { id name } }
    }
  }
`);

const Suggestions = graphql(`
  query MergeSuggestions {
    mergeSuggestions(first: 20) {
      confidence
      previouslyUnmerged
      contacts { id firstName lastName email github account { name } }
      evidence { kind value confidence }
    }
  }
`);

const Merge = graphql(`
  mutation MergeContacts($primaryId: ID!, $duplicateIds: [ID!]!) {
    mergeContacts(primaryId: $primaryId, duplicateIds: $duplicateIds) {
      contact { id }
      merges { id }
    }
  }
`);

const Unmerge = graphql(`
  mutation UndoMerge($mergeId: ID!) {
    unmergeContact(mergeId: $mergeId) { id }
  }
`);

export default function Contacts() {
  return (
    <Stack>
      <Title order={2}>Contacts</Title>
      <Tabs defaultValue="all" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="all">All contacts</Tabs.Tab>
          <Tabs.Tab value="merge">Merge suggestions</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="all" pt="md">
          <ContactList />
        </Tabs.Panel>
        <Tabs.Panel value="merge" pt="md">
          <MergeSuggestions />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

function ContactList() {
  const [search, setSearch] = useState('');
  const [query] = useDebouncedValue(search.trim(), 250);
  const [after, setAfter] = useState<string[]>([]);
  const [{ data, error, fetching }] = useQuery({
    query: ContactsQuery,
    variables: { first: 50, after: after[after.length - 1] ?? null, filter: { query: query || null } },
  });
  return (
    <Paper withBorder p="md">
      <TextInput
        placeholder="Search name or email"
        aria-label="Search contacts"
        mb="sm"
        value={search}
        onChange={(e) => {
          setSearch(e.currentTarget.value);
          setAfter([]);
        }}
      />
      <ErrorNotice error={error} />
      {!data ? (
        fetching && <Loading />
      ) : data.contacts.nodes.length === 0 ? (
        <Empty title={query ? 'No contacts match' : 'No contacts yet'}>
          {query ? 'Try another name or email.' : 'Contacts are created from signals (each person who stars, installs or signs up) or through the API.'}
        </Empty>
      ) : (
        <>
          <ScrollArea>
            <Table miw={640} aria-label="Contacts">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Name</Table.Th>
                  <Table.Th>Account</Table.Th>
                  <Table.Th>Identities</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {data.contacts.nodes.map((c) => (
                  <Table.Tr key={c.id}>
                    <Table.Td>
                      <Anchor component={Link} to={`/contacts/${c.id}`}>
                        {contactName(c)}
                      </Anchor>
                      {c.title && (
                        <Text size="xs" c="dimmed">
                          {c.title}
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td>{c.account ? <Anchor component={Link} to={`/accounts/${c.account.id}`}>{c.account.name}</Anchor> : '—'}</Table.Td>
                    <Table.Td>
                      <Identities c={c} />
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </ScrollArea>
          <Group justify="space-between" mt="sm">
            <Text size="sm" c="dimmed">
              {data.contacts.totalCount} contacts
            </Text>
            <Group>
              <Button variant="default" disabled={after.length === 0} onClick={() => setAfter((a) => a.slice(0, -1))}>
                Previous
              </Button>
              <Button variant="default" disabled={!data.contacts.pageInfo.hasNextPage} onClick={() => setAfter((a) => [...a, data.contacts.pageInfo.endCursor ?? ''])}>
                Next
              </Button>
            </Group>
          </Group>
        </>
      )}
    </Paper>
  );
}

function MergeSuggestions() {
  const [{ data, error, fetching }, reexecute] = useQuery({ query: Suggestions });
  const [merge, run] = useMutation(Merge);
  const [undo, runUndo] = useMutation(Unmerge);
  // The merges just made here, so they can be undone on the spot (the contact page keeps them too).
  const [done, setDone] = useState<{ mergeIds: string[]; primary: { id: string; name: string }; merged: string; undone: boolean } | null>(null);
  const canWrite = useCanWrite();
  if (error) return <ErrorNotice error={error} />;
  if (!data) return fetching ? <Loading /> : null;
  const lastMerge = done && (
    <Alert color={done.undone ? 'gray' : 'green'} title={done.undone ? 'Merge undone' : 'Merged'} role="status">
      <Group justify="space-between">
        <Text size="sm">
          {done.undone ? `${done.merged} is a contact of its own again.` : `${done.merged} merged into ${done.primary.name}.`}{' '}
          <Anchor component={Link} to={`/contacts/${done.primary.id}`}>
            Open {done.primary.name}
          </Anchor>
        </Text>
        {!done.undone && canWrite && (
          <Button
            size="xs"
            variant="default"
            loading={undo.fetching}
            onClick={async () => {
              for (const mergeId of done.mergeIds) {
                const r = await runUndo({ mergeId });
                if (r.error) return;
              }
              setDone({ ...done, undone: true });
              reexecute({ requestPolicy: 'network-only' });
            }}
          >
            Undo merge
          </Button>
        )}
      </Group>
    </Alert>
  );
  if (data.mergeSuggestions.length === 0)
    return (
      <Stack>
        {lastMerge}
        <Empty title="No duplicates found">When two contacts share an email, GitHub login or other identity, they are suggested here.</Empty>
      </Stack>
    );
  return (
    <Stack>
      {lastMerge}
      <ErrorNotice error={merge.error ?? undo.error} />
      {data.mergeSuggestions.map((s) => {
        const [primary, ...rest] = s.contacts;
        return (
          <Card withBorder key={s.contacts.map((c) => c.id).join(':')}>
            <Group justify="space-between" align="start">
              <div>
                <Text fw={600}>
                  {s.contacts.map((c) => `${contactName(c)}${c.account ? ` (${c.account.name})` : ''}`).join(' ↔ ')}
                </Text>
                <Group gap={4} mt={4}>
                  {s.evidence.map((e) => (
                    <Badge key={`${e.kind}:${e.value}`} variant="light" tt="none">
                      {e.kind.toLowerCase()}: {e.value} ({Math.round(e.confidence * 100)}%)
                    </Badge>
                  ))}
                </Group>
                <Text size="xs" c="dimmed" mt={4}>
                  Confidence {Math.round(s.confidence * 100)}%{s.previouslyUnmerged ? ' · merged and undone before' : ''}
                </Text>
              </div>
              {canWrite && primary && (
                <Button
                  size="xs"
                  loading={merge.fetching}
                  onClick={async () => {
                    const r = await run({ primaryId: primary.id, duplicateIds: rest.map((c) => c.id) });
                    if (r.data) {
                      setDone({
                        mergeIds: r.data.mergeContacts.merges.map((m) => m.id),
                        primary: { id: primary.id, name: contactName(primary) },
                        merged: rest.map(contactName).join(', '),
                        undone: false,
                      });
                      reexecute({ requestPolicy: 'network-only' });
                    }
                  }}
                >
                  Merge into {contactName(primary)}
                </Button>
              )}
            </Group>
          </Card>
        );
      })}
    </Stack>
  );
}
