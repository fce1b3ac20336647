// The PQA home: accounts ranked by score, filtered by tier and source and searched by name or
// domain, a page of 50 at a time (keyset cursors, so 10,000 accounts cost one page each), with a
// live feed of signals and score changes (GraphQL subscriptions) that refreshes the ranking.
import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { Link } from 'react-router-dom';
import { Anchor, Badge, Button, Card, Grid, Group, NativeSelect, Paper, ScrollArea, SegmentedControl, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useQuery, useSubscription } from 'urql';
import { graphql } from '../graphql';
import { Empty, ErrorNotice, Loading, TierBadge, contactName, timeAgo, trendArrow } from '../ui';

const Accounts = graphql(`
  query RankedAccounts($first: Int!, $after: String, $filter: AccountFilter) {
    accounts(first: $first, after: $after, filter: $filter, orderBy: { field: SCORE, direction: DESC }) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        id
        name
        domain
        score { score tier trend signalCount lastSignalAt }
      }
    }
  }
`);

const Sources = graphql(`
  query AccountSources {
    signalSources { id name kind builtIn }
  }
`);

const SignalFeed = graphql(`
  subscription SignalFeed {
    signalCreated {
      id
      type
      timestamp
      source { name }
      contact { id firstName lastName email github }
      account { id name }
    }
  }
`);

const ScoreFeed = graphql(`
  subscription ScoreFeed {
    accountScoreChanged {
      seq
      accountId
      account { id name }
      oldScore
      newScore
      newTier
      delta
    }
  }
`);

type FeedItem =
  | { kind: 'signal'; key: string; type: string; who: string; account?: { id: string; name: string } | null; source?: string | null; at: string }
  | { kind: 'score'; key: string; account?: { id: string; name: string } | null; accountId: string; newScore: number; delta: number; newTier: string; at: string };

const PAGE = 50;
const TIERS = ['ALL', 'HOT', 'WARM', 'COLD', 'INACTIVE'] as const;

export default function Home() {
  const [tier, setTier] = useState<(typeof TIERS)[number]>('ALL');
  const [source, setSource] = useState('');
  const [search, setSearch] = useState('');
  const [query] = useDebouncedValue(search.trim(), 250);
  // The cursors of the pages before this one: Previous pops, Next pushes.
  const [cursors, setCursors] = useState<string[]>([]);
  const filter = { query: query || null, tier: tier === 'ALL' ? null : tier, source: source || null };
  const resetPages = () => setCursors([]);
  const [{ data: sources }] = useQuery({ query: Sources });

  // Rank refreshes: every page of the table re-asks the network when this changes.
  const [tick, setTick] = useState(0);
  const [feed, setFeed] = useState<FeedItem[]>([]);
  const push = useCallback((item: FeedItem) => setFeed((f) => [item, ...f.filter((x) => x.key !== item.key)].slice(0, 30)), []);

  useSubscription({ query: SignalFeed }, (_prev: unknown, data) => {
    const s = data.signalCreated;
    push({
      kind: 'signal',
      key: `s:${s.id}`,
      type: s.type,
      who: s.contact ? contactName(s.contact) : 'anonymous',
      account: s.account,
      source: s.source?.name,
      at: s.timestamp,
    });
    return data;
  });
  useSubscription({ query: ScoreFeed }, (_prev: unknown, data) => {
    const c = data.accountScoreChanged;
    push({ kind: 'score', key: `c:${c.seq}`, account: c.account, accountId: c.accountId, newScore: c.newScore, delta: c.delta, newTier: c.newTier, at: new Date().toISOString() });
    setTick((t) => t + 1);
    return data;
  });

  return (
    <Stack>
      <Group justify="space-between" align="end">
        <div>
          <Title order={2}>Product-qualified accounts</Title>
          <Text c="dimmed" size="sm">
            Ranked by score. New signals and score changes arrive live.
          </Text>
        </div>
      </Group>
      <Grid gap="md">
        <Grid.Col span={{ base: 12, lg: 8 }}>
          <Paper withBorder p="md">
            <Group mb="sm" wrap="wrap">
              <TextInput
                placeholder="Search name or domain"
                aria-label="Search accounts"
                value={search}
                onChange={(e) => {
                  setSearch(e.currentTarget.value);
                  resetPages();
                }}
                style={{ flex: 1, minWidth: 200 }}
              />
              <SegmentedControl
                aria-label="Tier"
                value={tier}
                onChange={(v) => {
                  setTier(v as (typeof TIERS)[number]);
                  resetPages();
                }}
                data={TIERS.map((t) => ({ value: t, label: t === 'ALL' ? 'All tiers' : t.charAt(0) + t.slice(1).toLowerCase() }))}
              />
              {/* A fixed width: a long source name (a LinkedIn page URL) must not widen it and wrap the row. */}
              <NativeSelect
                aria-label="Source"
                w={140}
                value={source}
                onChange={(e) => {
                  setSource(e.currentTarget.value);
                  resetPages();
                }}
                data={[{ value: '', label: 'All sources' }, ...(sources?.signalSources ?? []).map((s) => ({ value: s.id, label: s.name }))]}
              />
            </Group>
            <AccountPage
              after={cursors[cursors.length - 1] ?? null}
              page={cursors.length + 1}
              filter={filter}
              tick={tick}
              onNext={(cursor) => setCursors((c) => [...c, cursor])}
              onPrevious={() => setCursors((c) => c.slice(0, -1))}
              empty={<NoAccounts filtered={!!query || tier !== 'ALL' || !!source} />}
            />
          </Paper>
        </Grid.Col>
        <Grid.Col span={{ base: 12, lg: 4 }}>
          <LiveFeed items={feed} />
        </Grid.Col>
      </Grid>
    </Stack>
  );
}

const COLUMNS = 6;

function AccountPage(props: {
  after: string | null;
  page: number;
  filter: { query: string | null; tier: string | null; source: string | null };
  tick: number;
  onNext: (cursor: string) => void;
  onPrevious: () => void;
  empty: ReactNode;
}) {
  const [{ data: fresh, fetching, error }, reexecute] = useQuery({
    query: Accounts,
    variables: { first: PAGE, after: props.after, filter: props.filter as never },
  });
  // While the next page (or a new filter) loads, the rows on screen stay: nothing jumps.
  const last = useRef(fresh);
  if (fresh) last.current = fresh;
  const data = fresh ?? last.current;
  // A score changed somewhere: ask again, so the ranking and the numbers are current.
  useEffect(() => {
    if (props.tick > 0) reexecute({ requestPolicy: 'network-only' });
  }, [props.tick, reexecute]);
  const conn = data?.accounts;
  const pages = conn ? Math.max(1, Math.ceil(conn.totalCount / PAGE)) : 1;
  return (
    <>
      <ScrollArea>
        <Table highlightOnHover verticalSpacing="xs" miw={640} aria-label="Accounts ranked by score" aria-busy={fetching}>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Account</Table.Th>
              <Table.Th ta="right">Score</Table.Th>
              <Table.Th>Tier</Table.Th>
              <Table.Th>Trend</Table.Th>
              <Table.Th ta="right">Signals</Table.Th>
              <Table.Th>Last signal</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {error ? (
              <Table.Tr>
                <Table.Td colSpan={COLUMNS}>
                  <ErrorNotice error={error} />
                </Table.Td>
              </Table.Tr>
            ) : !conn ? (
              <Table.Tr>
                <Table.Td colSpan={COLUMNS}>{fetching && <Loading />}</Table.Td>
              </Table.Tr>
            ) : conn.nodes.length === 0 ? (
              <Table.Tr>
                <Table.Td colSpan={COLUMNS}>{props.empty}</Table.Td>
              </Table.Tr>
            ) : (
              conn.nodes.map((a) => (
                <Table.Tr key={a.id}>
                  <Table.Td>
                    <Anchor component={Link} to={`/accounts/${a.id}`} fw={600}>
                      {a.name}
                    </Anchor>
                    {a.domain && (
                      <Text size="xs" c="dimmed">
                        {a.domain}
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td ta="right" fw={700}>
                    {a.score?.score ?? '—'}
                  </Table.Td>
                  <Table.Td>
                    <TierBadge tier={a.score?.tier} />
                  </Table.Td>
                  <Table.Td aria-label={a.score?.trend ?? 'no trend'}>
                    {trendArrow(a.score?.trend)} <Text span size="xs" c="dimmed">{a.score?.trend?.toLowerCase()}</Text>
                  </Table.Td>
                  <Table.Td ta="right">{a.score?.signalCount ?? 0}</Table.Td>
                  <Table.Td>{timeAgo(a.score?.lastSignalAt)}</Table.Td>
                </Table.Tr>
              ))
            )}
          </Table.Tbody>
        </Table>
      </ScrollArea>
      {conn && conn.totalCount > 0 && (
        <Group justify="space-between" mt="sm">
          <Text size="sm" c="dimmed" data-testid="accounts-page">
            Page {props.page} of {pages} · {conn.totalCount.toLocaleString('en-US')} {conn.totalCount === 1 ? 'account' : 'accounts'}
          </Text>
          <Group gap="xs">
            <Button variant="default" size="xs" disabled={props.page === 1} onClick={props.onPrevious}>
              Previous
            </Button>
            <Button
              variant="default"
              size="xs"
              disabled={!conn.pageInfo.hasNextPage || !conn.pageInfo.endCursor || !fresh}
              onClick={() => conn.pageInfo.endCursor && props.onNext(conn.pageInfo.endCursor)}
            >
              Next
            </Button>
          </Group>
        </Group>
      )}
    </>
  );
}

function NoAccounts({ filtered }: { filtered: boolean }) {
  if (filtered) return <Empty title="No accounts match">Clear the search or pick another tier.</Empty>;
  return (
    <Empty title="No accounts yet">
      Accounts appear as soon as signals arrive. <Anchor component={Link} to="/onboarding">Get started</Anchor>: create an API key and
      send your first signal, or add an account by hand. Or <Anchor component={Link} to="/settings/data">import a CSV file or load
      sample data</Anchor>.
    </Empty>
  );
}

function LiveFeed({ items }: { items: FeedItem[] }) {
  return (
    <Card withBorder padding="md" aria-label="Live feed">
      <Group justify="space-between" mb="xs">
        <Title order={3} size="h5">
          Live feed
        </Title>
        <Badge color="green" variant="dot">
          live
        </Badge>
      </Group>
      {items.length === 0 ? (
        <Text size="sm" c="dimmed">
          Waiting for signals. Anything ingested now (API, Segment, connectors) shows up here.
        </Text>
      ) : (
        <Stack gap="xs" role="log" aria-live="polite">
          {items.map((item) =>
            item.kind === 'signal' ? (
              <div key={item.key}>
                <Text size="sm">
                  <b>{item.type}</b> by {item.who}
                  {item.account && (
                    <>
                      {' '}at <Anchor component={Link} to={`/accounts/${item.account.id}`}>{item.account.name}</Anchor>
                    </>
                  )}
                </Text>
                <Text size="xs" c="dimmed">
                  {item.source ?? 'signal'} · {timeAgo(item.at)}
                </Text>
              </div>
            ) : (
              <div key={item.key}>
                <Text size="sm">
                  <Anchor component={Link} to={`/accounts/${item.accountId}`}>{item.account?.name ?? 'Account'}</Anchor> scored{' '}
                  <b>{item.newScore}</b> ({item.delta >= 0 ? '+' : ''}
                  {item.delta}) <TierBadge tier={item.newTier} />
                </Text>
              </div>
            ),
          )}
        </Stack>
      )}
    </Card>
  );
}
