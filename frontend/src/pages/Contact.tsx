// One contact: identities, account, recent signals, deals, and the merges that involved it
// (each can be undone); for admins, the person's data rights: everything held about them as a
// JSON file (GDPR art. 15) and erasure (art. 17).
import { useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { Anchor, Badge, Button, Card, Grid, Group, List, Stack, Text, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useClient, useMutation, useQuery, type CombinedError } from 'urql';
import { graphql } from '../graphql';
import { ConfirmDialog, Empty, ErrorNotice, Loading, contactName, timeAgo, useCanWrite, useIsAdmin } from '../ui';
import { Identities } from './Account';

const ContactQuery = graphql(`
  query ContactPage($id: ID!) {
    contact(id: $id) {
      id
      firstName
      lastName
      email
      title
      github
      twitter
      linkedIn
      city
      country
      tags
      account { id name }
      deals(first: 20) { id title stage }
      signals(first: 20) { totalCount nodes { id type timestamp source { name } } }
    }
    contactMerges(contactId: $id, first: 20) {
      id
      primaryId
      mergedContactId
      reason
      confidence
      createdAt
      undoneAt
      evidence { kind value }
      mergedBy { name }
    }
  }
`);

const Unmerge = graphql(`
  mutation Unmerge($mergeId: ID!) {
    unmergeContact(mergeId: $mergeId) { id }
  }
`);

const ExportPersonalData = graphql(`
  query ExportPersonalData($id: ID!) {
    exportContactData(id: $id)
  }
`);

const Erase = graphql(`
  mutation EraseContact($id: ID!) {
    eraseContact(id: $id) { contactId identities signalsAnonymised activitiesDeleted tombstones }
  }
`);

/** Saves `data` as a file the browser downloads. */
function downloadJson(data: unknown, fileName: string) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** ADMIN: export what is held about the person, or erase them (behind a confirmation). */
function PersonalData({ id, name }: { id: string; name: string }) {
  const client = useClient();
  const navigate = useNavigate();
  const [exporting, setExporting] = useState(false);
  const [exportError, setExportError] = useState<CombinedError | undefined>();
  const [confirming, setConfirming] = useState(false);
  const [erased, erase] = useMutation(Erase);
  return (
    <Card withBorder>
      <Title order={3} size="h5" mb="sm">
        Personal data
      </Title>
      <ErrorNotice error={exportError ?? erased.error} />
      <Group>
        <Button
          variant="default"
          loading={exporting}
          onClick={async () => {
            setExporting(true);
            setExportError(undefined);
            const r = await client.query(ExportPersonalData, { id }, { requestPolicy: 'network-only' }).toPromise();
            setExporting(false);
            if (r.error || !r.data) setExportError(r.error);
            else downloadJson(r.data.exportContactData, `contact-${id}.json`);
          }}
        >
          Export personal data
        </Button>
        <Button color="red.9" variant="outline" onClick={() => setConfirming(true)}>
          Erase contact
        </Button>
      </Group>
      <Text size="xs" c="dimmed" mt="xs">
        The export is everything held about this person, as JSON (a data access request). Erasure answers a request to be forgotten.
      </Text>
      <ConfirmDialog
        opened={confirming}
        title="Erase this contact?"
        action="Erase contact"
        busy={erased.fetching}
        onCancel={() => setConfirming(false)}
        onConfirm={async () => {
          const r = await erase({ id });
          setConfirming(false);
          if (!r.error) {
            notifications.show({ title: 'Contact erased', message: `${name} was erased; ${r.data?.eraseContact.tombstones ?? 0} hashed identifiers keep them from coming back.` });
            navigate('/contacts');
          }
        }}
      >
        <Text size="sm">{name} is erased for good. This cannot be undone:</Text>
        <List size="sm" spacing={4}>
          <List.Item>the contact, their identities (email, GitHub, …) and the activities about them are deleted;</List.Item>
          <List.Item>their signals stay for the account's score, without anything that names them;</List.Item>
          <List.Item>deals keep going without them as contact, and their personal data is removed from notes, events and notifications;</List.Item>
          <List.Item>
            a tombstone of hashed identifiers is kept so that no signal, import or connector creates them again; the audit log records the
            erasure without their data.
          </List.Item>
        </List>
      </ConfirmDialog>
    </Card>
  );
}

export default function ContactPage() {
  const { id = '' } = useParams();
  const [{ data, error, fetching }, reexecute] = useQuery({ query: ContactQuery, variables: { id } });
  const [undo, runUndo] = useMutation(Unmerge);
  const canWrite = useCanWrite();
  const admin = useIsAdmin();
  if (error) return <ErrorNotice error={error} />;
  if (!data) return fetching ? <Loading /> : null;
  const c = data.contact;
  return (
    <Stack>
      <div>
        <Anchor component={Link} to="/contacts" size="sm">
          ← Contacts
        </Anchor>
        <Title order={2}>{contactName(c)}</Title>
        <Text c="dimmed" size="sm">
          {[c.title, c.account?.name, [c.city, c.country].filter(Boolean).join(', ')].filter(Boolean).join(' · ')}
        </Text>
        <Group mt={6} gap={4}>
          <Identities c={c} />
          {c.tags.map((t) => (
            <Badge key={t} variant="light">
              {t}
            </Badge>
          ))}
        </Group>
      </div>
      <Grid>
        <Grid.Col span={{ base: 12, md: 6 }}>
          <Card withBorder>
            <Title order={3} size="h5" mb="sm">
              Recent signals ({c.signals.totalCount})
            </Title>
            {c.signals.nodes.length === 0 ? (
              <Text size="sm" c="dimmed">
                No signals from this person yet.
              </Text>
            ) : (
              <Stack gap={4}>
                {c.signals.nodes.map((s) => (
                  <Group key={s.id} justify="space-between">
                    <Text size="sm">
                      <b>{s.type}</b> <Text span c="dimmed" size="xs">{s.source?.name}</Text>
                    </Text>
                    <Text size="xs" c="dimmed">
                      {timeAgo(s.timestamp)}
                    </Text>
                  </Group>
                ))}
              </Stack>
            )}
          </Card>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 6 }}>
          <Stack>
            <Card withBorder>
              <Title order={3} size="h5" mb="sm">
                Account
              </Title>
              {c.account ? <Anchor component={Link} to={`/accounts/${c.account.id}`}>{c.account.name}</Anchor> : <Text size="sm" c="dimmed">Not linked to an account.</Text>}
              <Title order={3} size="h5" mt="md" mb="sm">
                Deals
              </Title>
              {c.deals.length === 0 ? (
                <Text size="sm" c="dimmed">
                  None.
                </Text>
              ) : (
                c.deals.map((d) => (
                  <Text key={d.id} size="sm">
                    {d.title} <Badge size="xs">{d.stage?.toLowerCase().replace(/_/g, ' ')}</Badge>
                  </Text>
                ))
              )}
            </Card>
            <Card withBorder>
              <Title order={3} size="h5" mb="sm">
                Merges
              </Title>
              <ErrorNotice error={undo.error} />
              {data.contactMerges.length === 0 ? (
                <Empty title="No merges">Duplicates merged into or out of this contact are listed here and can be undone.</Empty>
              ) : (
                <Stack gap="xs">
                  {data.contactMerges.map((m) => (
                    <Group key={m.id} justify="space-between" align="start">
                      <div>
                        <Text size="sm">
                          {m.reason === 'AUTO' ? 'Merged automatically' : `Merged by ${m.mergedBy?.name ?? 'an API key'}`} {timeAgo(m.createdAt)}
                          {m.undoneAt && <Badge ml={6} size="xs" color="gray">undone</Badge>}
                        </Text>
                        <Text size="xs" c="dimmed">
                          {m.evidence.map((e) => `${e.kind.toLowerCase()}: ${e.value}`).join(', ') || 'no shared identity'}
                        </Text>
                      </div>
                      {canWrite && !m.undoneAt && (
                        <Button
                          size="xs"
                          variant="default"
                          loading={undo.fetching}
                          onClick={async () => {
                            const r = await runUndo({ mergeId: m.id });
                            if (!r.error) {
                              notifications.show({ title: 'Merge undone', message: 'The duplicate is a contact of its own again.' });
                              reexecute({ requestPolicy: 'network-only' });
                            }
                          }}
                        >
                          Undo merge
                        </Button>
                      )}
                    </Group>
                  ))}
                </Stack>
              )}
            </Card>
            {admin && <PersonalData id={c.id} name={contactName(c)} />}
          </Stack>
        </Grid.Col>
      </Grid>
    </Stack>
  );
}
