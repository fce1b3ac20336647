// One account: its score with every factor's points and inputs, timeline, contacts with their
// identities, deals, and actions (log an activity, tag, open a deal).
import { lazy, Suspense, useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router-dom';
import { Anchor, Badge, Button, Card, Code, Grid, Group, Modal, NumberInput, Progress, Select, Stack, Table, TagsInput, Text, TextInput, Textarea, Title, Tooltip } from '@mantine/core';
import { useDebouncedValue, useDisclosure } from '@mantine/hooks';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../graphql';
import { Empty, ErrorNotice, Loading, TierBadge, contactName, fieldErrors, timeAgo, trendArrow, useCanWrite } from '../ui';

const FactorChart = lazy(() => import('../charts/FactorChart'));
const ScoreHistoryChart = lazy(() => import('../charts/ScoreHistoryChart'));

const AccountQuery = graphql(`
  query AccountPage($id: ID!) {
    account(id: $id) {
      id
      name
      domain
      industry
      githubOrg
      tags
      score {
        score
        tier
        trend
        computedAt
        signalCount
        userCount
        lastSignalAt
        factors { name points maxPoints description inputs }
      }
      scoreHistory(days: 90) { date score tier }
      contacts(first: 50) { id firstName lastName email title github twitter linkedIn }
      deals(first: 50) { id title stage amount currency }
      timeline(first: 30) {
        totalCount
        nodes {
          __typename
          ... on Signal { id type timestamp source { name } contact { id firstName lastName email github } }
          ... on Activity { id type title description createdAt author { name } }
        }
      }
    }
  }
`);

const AddActivity = graphql(`
  mutation AddActivity($input: ActivityInput!) {
    createActivity(input: $input) { id }
  }
`);
const TagAccount = graphql(`
  mutation TagAccount($id: ID!, $input: TagsInput!) {
    tagAccount(id: $id, input: $input) { id tags }
  }
`);
const AddDeal = graphql(`
  mutation AddDeal($input: DealInput!) {
    createDeal(input: $input) { id }
  }
`);
const FindDeals = graphql(`
  query FindDeals($query: String) {
    deals(first: 20, filter: { query: $query }, orderBy: { field: UPDATED_AT, direction: DESC }) {
      nodes { id title stage account { id name } }
    }
  }
`);
const LinkDeal = graphql(`
  mutation LinkDeal($id: ID!, $input: DealInput!) {
    updateDeal(id: $id, input: $input) { id account { id } }
  }
`);

export default function AccountPage() {
  const { id = '' } = useParams();
  const [{ data, error, fetching }, reexecute] = useQuery({ query: AccountQuery, variables: { id } });
  const canWrite = useCanWrite();
  const refresh = () => reexecute({ requestPolicy: 'network-only' });
  if (error) return <ErrorNotice error={error} />;
  if (!data) return fetching ? <Loading /> : null;
  const a = data.account;
  const s = a.score;
  return (
    <Stack>
      <Group justify="space-between" align="start">
        <div>
          <Anchor component={Link} to="/" size="sm">
            ← Accounts
          </Anchor>
          <Title order={2}>{a.name}</Title>
          <Text c="dimmed" size="sm">
            {[a.domain, a.industry, a.githubOrg && `github.com/${a.githubOrg}`].filter(Boolean).join(' · ') || 'No domain yet'}
          </Text>
          <Group gap={4} mt={6}>
            {a.tags.map((t) => (
              <Badge key={t} variant="light">
                {t}
              </Badge>
            ))}
          </Group>
        </div>
        {canWrite && <Actions accountId={a.id} tags={a.tags} onDone={refresh} />}
      </Group>
      <Grid>
        <Grid.Col span={{ base: 12, md: 5 }}>
          <Card withBorder aria-label="Score">
            <Group justify="space-between">
              <div>
                <Text size="sm" c="dimmed">
                  PQA score
                </Text>
                <Text fz={44} fw={800} lh={1} data-testid="account-score">
                  {s?.score ?? '—'}
                </Text>
              </div>
              <Stack gap={4} align="end">
                <TierBadge tier={s?.tier} />
                <Text size="sm">
                  {trendArrow(s?.trend)} {s?.trend?.toLowerCase() ?? 'no trend'}
                </Text>
              </Stack>
            </Group>
            {s ? (
              <Text size="xs" c="dimmed" mt="xs">
                {s.signalCount} signals from {s.userCount} people · last {timeAgo(s.lastSignalAt)} · computed {timeAgo(s.computedAt)}
              </Text>
            ) : (
              <Text size="sm" c="dimmed" mt="xs">
                Not scored yet: the score appears a few seconds after the first signal.
              </Text>
            )}
            {s && s.factors.length > 0 && (
              <Suspense fallback={<div style={{ height: 220 }} />}>
                <FactorChart factors={s.factors.map((f) => ({ name: f.name, points: f.points, maxPoints: f.maxPoints }))} />
              </Suspense>
            )}
            <section aria-label="Score history">
              <Text size="sm" fw={600} mt="md">
                Last 90 days
              </Text>
              {a.scoreHistory.length === 0 ? (
                <Text size="xs" c="dimmed" data-testid="history-summary">
                  History starts with the first nightly snapshot (02:00 UTC).
                </Text>
              ) : (
                <>
                  <Suspense fallback={<div style={{ height: 160 }} />}>
                    <ScoreHistoryChart points={a.scoreHistory} />
                  </Suspense>
                  <Text size="xs" c="dimmed" data-testid="history-summary">
                    {a.scoreHistory.length} {a.scoreHistory.length === 1 ? 'day' : 'days'} captured, from {a.scoreHistory[0].date} ({a.scoreHistory[0].score}) to{' '}
                    {a.scoreHistory[a.scoreHistory.length - 1].date} ({a.scoreHistory[a.scoreHistory.length - 1].score})
                  </Text>
                </>
              )}
            </section>
          </Card>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 7 }}>
          <Card withBorder>
            <Title order={3} size="h5" mb="sm">
              Score factors
            </Title>
            {!s ? (
              <Empty title="No factors yet">Send a signal for someone at this account to see how it scores.</Empty>
            ) : (
              <Stack gap="sm" aria-label="Score factors">
                {s.factors.map((f) => (
                  <div key={f.name} data-testid="factor">
                    <Group justify="space-between" gap="xs">
                      <Tooltip label={f.description} multiline w={280}>
                        <Text size="sm" fw={600}>
                          {f.name.replace(/_/g, ' ')}
                        </Text>
                      </Tooltip>
                      <Text size="sm">
                        {f.points.toFixed(1)} / {f.maxPoints} pts
                      </Text>
                    </Group>
                    <Progress value={f.maxPoints > 0 ? (100 * f.points) / f.maxPoints : 0} size="sm" aria-label={`${f.name} ${f.points} of ${f.maxPoints} points`} />
                    <Text size="xs" c="dimmed">
                      {f.description}
                    </Text>
                    <Code fz="xs" block>
                      {formatInputs(f.inputs)}
                    </Code>
                  </div>
                ))}
              </Stack>
            )}
          </Card>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 7 }}>
          <Card withBorder>
            <Title order={3} size="h5" mb="sm">
              Timeline ({a.timeline.totalCount})
            </Title>
            {a.timeline.nodes.length === 0 ? (
              <Empty title="Nothing happened yet">Signals and activities of this account appear here, newest first.</Empty>
            ) : (
              <Stack gap="xs">
                {a.timeline.nodes.map((item) =>
                  item.__typename === 'Signal' ? (
                    <div key={`s${item.id}`}>
                      <Text size="sm">
                        <Badge size="xs" variant="outline" mr={6}>
                          signal
                        </Badge>
                        <b>{item.type}</b>
                        {item.contact && (
                          <>
                            {' '}by <Anchor component={Link} to={`/contacts/${item.contact.id}`}>{contactName(item.contact)}</Anchor>
                          </>
                        )}
                      </Text>
                      <Text size="xs" c="dimmed">
                        {item.source?.name ?? 'unknown source'} · {new Date(item.timestamp).toLocaleString()}
                      </Text>
                    </div>
                  ) : item.__typename === 'Activity' ? (
                    <div key={`a${item.id}`}>
                      <Text size="sm">
                        <Badge size="xs" variant="light" mr={6}>
                          {item.type?.toLowerCase() ?? 'activity'}
                        </Badge>
                        <b>{item.title}</b>
                      </Text>
                      {item.description && <Text size="sm">{item.description}</Text>}
                      <Text size="xs" c="dimmed">
                        {item.author?.name ?? 'API'} · {new Date(item.createdAt).toLocaleString()}
                      </Text>
                    </div>
                  ) : null,
                )}
              </Stack>
            )}
          </Card>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 5 }}>
          <Stack>
            <Card withBorder>
              <Title order={3} size="h5" mb="sm">
                Contacts ({a.contacts.length})
              </Title>
              {a.contacts.length === 0 ? (
                <Text size="sm" c="dimmed">
                  No contacts linked to this account yet.
                </Text>
              ) : (
                <Table>
                  <Table.Tbody>
                    {a.contacts.map((c) => (
                      <Table.Tr key={c.id}>
                        <Table.Td>
                          <Anchor component={Link} to={`/contacts/${c.id}`} size="sm">
                            {contactName(c)}
                          </Anchor>
                          {c.title && (
                            <Text size="xs" c="dimmed">
                              {c.title}
                            </Text>
                          )}
                        </Table.Td>
                        <Table.Td>
                          <Identities c={c} />
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              )}
            </Card>
            <Card withBorder>
              <Title order={3} size="h5" mb="sm">
                Deals ({a.deals.length})
              </Title>
              {a.deals.length === 0 ? (
                <Text size="sm" c="dimmed">
                  No deals yet{canWrite ? ': use “New deal” or “Add to deal” above.' : '.'}
                </Text>
              ) : (
                <Stack gap={4}>
                  {a.deals.map((d) => (
                    <Group key={d.id} justify="space-between">
                      <Anchor component={Link} to="/deals" size="sm">
                        {d.title}
                      </Anchor>
                      <Group gap={6}>
                        {d.amount != null && <Text size="sm">{d.amount.toLocaleString(undefined, { style: 'currency', currency: d.currency })}</Text>}
                        <Badge size="sm" variant="light">
                          {d.stage?.replace(/_/g, ' ').toLowerCase() ?? 'no stage'}
                        </Badge>
                      </Group>
                    </Group>
                  ))}
                </Stack>
              )}
            </Card>
          </Stack>
        </Grid.Col>
      </Grid>
    </Stack>
  );
}

export function Identities({ c }: { c: { email?: string | null; github?: string | null; twitter?: string | null; linkedIn?: string | null } }) {
  const items = [
    c.email && ['email', c.email],
    c.github && ['GitHub', `@${c.github}`],
    c.twitter && ['X', `@${c.twitter}`],
    c.linkedIn && ['LinkedIn', c.linkedIn],
  ].filter(Boolean) as [string, string][];
  return (
    <Group gap={4}>
      {items.map(([k, v]) => (
        <Badge key={k} size="xs" variant="outline" color="gray" tt="none">
          {k}: {v}
        </Badge>
      ))}
    </Group>
  );
}

function formatInputs(inputs: unknown): string {
  if (inputs && typeof inputs === 'object') {
    return Object.entries(inputs as Record<string, unknown>)
      .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join('\n');
  }
  return String(inputs);
}

const ACTIVITY_TYPES = ['NOTE', 'CALL', 'MEETING', 'EMAIL', 'TASK'];
const STAGES = ['ANONYMOUS_USAGE', 'IDENTIFIED', 'ACTIVATED', 'TEAM_ADOPTION', 'EXPANSION_SIGNAL', 'SALES_QUALIFIED', 'NEGOTIATION', 'CLOSED_WON', 'CLOSED_LOST'];

function Actions({ accountId, tags, onDone }: { accountId: string; tags: string[]; onDone: () => void }) {
  const [activityOpen, activity] = useDisclosure();
  const [tagOpen, tag] = useDisclosure();
  const [dealOpen, deal] = useDisclosure();
  const [linkOpen, link] = useDisclosure();
  return (
    <Group gap="xs">
      <Button size="xs" onClick={activity.open}>
        Log activity
      </Button>
      <Button size="xs" variant="default" onClick={tag.open}>
        Tags
      </Button>
      <Button size="xs" variant="default" onClick={deal.open}>
        New deal
      </Button>
      <Button size="xs" variant="default" onClick={link.open}>
        Add to deal
      </Button>
      <Modal opened={activityOpen} onClose={activity.close} title="Log an activity">
        <ActivityForm accountId={accountId} onDone={() => (activity.close(), onDone())} />
      </Modal>
      <Modal opened={tagOpen} onClose={tag.close} title="Tags">
        <TagForm accountId={accountId} tags={tags} onDone={() => (tag.close(), onDone())} />
      </Modal>
      <Modal opened={dealOpen} onClose={deal.close} title="New deal">
        <DealForm accountId={accountId} onDone={() => (deal.close(), onDone())} />
      </Modal>
      <Modal opened={linkOpen} onClose={link.close} title="Add to an existing deal">
        <LinkDealForm accountId={accountId} onDone={() => (link.close(), onDone())} />
      </Modal>
    </Group>
  );
}

function ActivityForm({ accountId, onDone }: { accountId: string; onDone: () => void }) {
  const [result, run] = useMutation(AddActivity);
  const [type, setType] = useState<string | null>('NOTE');
  const fields = fieldErrors(result.error);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const r = await run({
      input: { accountId, type: type as never, title: String(f.get('title') ?? ''), description: String(f.get('description') ?? '') || null },
    });
    if (!r.error) onDone();
  };
  return (
    <form onSubmit={submit} noValidate>
      <Stack>
        <ErrorNotice error={result.error} />
        <Select label="Type" data={ACTIVITY_TYPES} value={type} onChange={setType} error={fields.type} allowDeselect={false} />
        <TextInput name="title" label="Title" required error={fields.title} data-autofocus />
        <Textarea name="description" label="Notes" autosize minRows={3} error={fields.description} />
        <Button type="submit" loading={result.fetching}>
          Save activity
        </Button>
      </Stack>
    </form>
  );
}

function TagForm({ accountId, tags, onDone }: { accountId: string; tags: string[]; onDone: () => void }) {
  const [result, run] = useMutation(TagAccount);
  const [value, setValue] = useState(tags);
  const fields = fieldErrors(result.error);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const add = value.filter((t) => !tags.includes(t));
    const remove = tags.filter((t) => !value.includes(t));
    const r = await run({ id: accountId, input: { add, remove } });
    if (!r.error) onDone();
  };
  return (
    <form onSubmit={submit} noValidate>
      <Stack>
        <ErrorNotice error={result.error} />
        <TagsInput label="Tags" description="Press Enter after each tag" value={value} onChange={setValue} error={fields.add ?? fields.tags} data-autofocus />
        <Button type="submit" loading={result.fetching}>
          Save tags
        </Button>
      </Stack>
    </form>
  );
}

function DealForm({ accountId, onDone }: { accountId: string; onDone: () => void }) {
  const [result, run] = useMutation(AddDeal);
  const [stage, setStage] = useState<string | null>('IDENTIFIED');
  const [amount, setAmount] = useState<number | string>('');
  const fields = fieldErrors(result.error);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const r = await run({
      input: { accountId, title: String(f.get('title') ?? ''), stage: stage as never, amount: amount === '' ? null : Number(amount) },
    });
    if (!r.error) onDone();
  };
  return (
    <form onSubmit={submit} noValidate>
      <Stack>
        <ErrorNotice error={result.error} />
        <TextInput name="title" label="Title" required error={fields.title} data-autofocus />
        <Select label="Stage" data={STAGES.map((s) => ({ value: s, label: s.replace(/_/g, ' ').toLowerCase() }))} value={stage} onChange={setStage} error={fields.stage} />
        <NumberInput label="Amount (USD)" value={amount} onChange={setAmount} min={0} error={fields.amount} />
        <Button type="submit" loading={result.fetching}>
          Create deal
        </Button>
      </Stack>
    </form>
  );
}


/** Links this account to a deal that exists (found by title); a deal of another account moves here. */
function LinkDealForm({ accountId, onDone }: { accountId: string; onDone: () => void }) {
  const [search, setSearch] = useState('');
  const [query] = useDebouncedValue(search.trim(), 200);
  const [dealId, setDealId] = useState<string | null>(null);
  const [{ data, fetching, error }] = useQuery({ query: FindDeals, variables: { query: query || null } });
  const [result, run] = useMutation(LinkDeal);
  const fields = fieldErrors(result.error);
  const deals = (data?.deals.nodes ?? []).filter((d) => d.account?.id !== accountId);
  const chosen = deals.find((d) => d.id === dealId);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!dealId) return;
    const r = await run({ id: dealId, input: { accountId } });
    if (!r.error) onDone();
  };
  return (
    <form onSubmit={submit} noValidate>
      <Stack>
        <ErrorNotice error={error ?? result.error} />
        <Select
          label="Deal"
          placeholder="Search deals by title"
          searchable
          data={deals.map((d) => ({ value: d.id, label: d.title }))}
          value={dealId}
          onChange={setDealId}
          searchValue={search}
          onSearchChange={setSearch}
          filter={({ options }) => options}
          nothingFoundMessage={fetching ? 'Searching…' : 'No other deal matches'}
          error={fields.accountId ?? fields.id}
          data-autofocus
        />
        {chosen && (
          <Text size="sm" c="dimmed">
            {chosen.account ? `It moves here from ${chosen.account.name}.` : 'It has no account yet.'} Stage:{' '}
            {chosen.stage?.replace(/_/g, ' ').toLowerCase() ?? 'none'}.
          </Text>
        )}
        <Button type="submit" disabled={!dealId} loading={result.fetching}>
          Add to deal
        </Button>
      </Stack>
    </form>
  );
}
