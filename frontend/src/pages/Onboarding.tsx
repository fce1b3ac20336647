// The checklist of a new organization: an API key (with copyable curl and Segment snippets),
// a source, the first signal (watched live), and the team.
import { useState, type ReactNode } from 'react';
import { Link } from 'react-router-dom';
import { Anchor, Badge, Card, Group, Loader, Stack, Text, ThemeIcon, Title } from '@mantine/core';
import { useQuery, useSubscription } from 'urql';
import { graphql } from '../graphql';
import { ErrorNotice, Loading, useIsAdmin } from '../ui';
import { CreateKeyForm } from './settings/ApiKeys';

const Progress = graphql(`
  query Onboarding {
    apiKeys { id revokedAt }
    signalSources { id name kind builtIn status lastSyncAt }
    signals(first: 1) { totalCount nodes { id type account { id name } } }
    members { user { id } }
  }
`);

const FirstSignal = graphql(`
  subscription FirstSignal {
    signalCreated { id type account { id name } }
  }
`);

function Step({ n, done, title, children }: { n: number; done: boolean; title: string; children: ReactNode }) {
  return (
    <Card withBorder aria-label={`Step ${n}: ${title}${done ? ' (done)' : ''}`}>
      <Group align="start" wrap="nowrap">
        <ThemeIcon radius="xl" color={done ? 'green' : 'gray'} variant={done ? 'filled' : 'light'} aria-hidden>
          {done ? '✓' : n}
        </ThemeIcon>
        <Stack gap="xs" style={{ flex: 1 }}>
          <Group gap="xs">
            <Title order={3} size="h5">
              {title}
            </Title>
            {done && (
              <Badge variant="filled" style={{ background: '#d3f9d8', color: '#1e5631' }}>
                done
              </Badge>
            )}
          </Group>
          {children}
        </Stack>
      </Group>
    </Card>
  );
}

export default function Onboarding() {
  const [{ data, error, fetching }, reexecute] = useQuery({ query: Progress });
  const [live, setLive] = useState<{ type: string; account?: { id: string; name: string } | null } | null>(null);
  const isAdmin = useIsAdmin();
  useSubscription({ query: FirstSignal }, (_p: unknown, d) => {
    setLive(d.signalCreated);
    return d;
  });
  if (error) return <ErrorNotice error={error} />;
  if (!data) return fetching ? <Loading /> : null;
  const hasKey = data.apiKeys.some((k) => !k.revokedAt);
  const sources = data.signalSources.filter((s) => !s.builtIn);
  const first = live ?? data.signals.nodes[0];
  const hasSignal = !!first;
  return (
    <Stack maw={820}>
      <Title order={2}>Get started</Title>
      <Text c="dimmed">Four steps from an empty organization to ranked accounts.</Text>
      <Step n={1} done={hasKey} title="Create an API key">
        {hasKey ? (
          <Text size="sm">
            You have a key. Manage keys in <Anchor component={Link} to="/settings/api-keys">API keys</Anchor>.
          </Text>
        ) : isAdmin ? (
          <CreateKeyForm onCreated={() => reexecute({ requestPolicy: 'network-only' })} />
        ) : (
          <Text size="sm">Ask an admin of your organization to create one.</Text>
        )}
      </Step>
      <Step n={2} done={hasSignal} title="Send your first signal">
        {first ? (
          <Text size="sm" data-testid="first-signal">
            Received <b>{first.type}</b>
            {first.account && (
              <>
                {' '}for <Anchor component={Link} to={`/accounts/${first.account.id}`}>{first.account.name}</Anchor>
              </>
            )}
            . It is scored within a few seconds.
          </Text>
        ) : (
          <Group gap="xs">
            <Loader size="xs" />
            <Text size="sm">Waiting for a signal: run the curl command from step 1. It appears here the moment it arrives.</Text>
          </Group>
        )}
      </Step>
      <Step n={3} done={sources.length > 0} title="Connect GitHub or another source">
        {sources.length > 0 ? (
          sources.map((s) => (
            <Text size="sm" key={s.id}>
              {s.name} ({s.kind.toLowerCase()}): {s.status.toLowerCase()}
            </Text>
          ))
        ) : (
          <Text size="sm">
            Point Segment or RudderStack at this server with your API key as the write key (see step 1), or send events from your backend.
            Connectors for GitHub, npm and PyPI are configured through the integrations API.
          </Text>
        )}
      </Step>
      <Step n={4} done={data.members.length > 1} title="Invite your team">
        <Text size="sm">
          {data.members.length > 1 ? `${data.members.length} members.` : 'Invite the people who follow up on hot accounts.'}{' '}
          <Anchor component={Link} to="/settings/team">Team settings</Anchor>
        </Text>
      </Step>
    </Stack>
  );
}
