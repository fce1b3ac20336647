// Plan and usage: the plan whose limits apply, every counter against its limit, the
// subscription's state, and (for the owner, when the server takes payments) upgrading through
// Stripe Checkout or managing billing in Stripe's portal.
import { Alert, Button, Group, Paper, Progress, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../../graphql';
import { ErrorNotice, Loading, useRole } from '../../ui';

const UsageQuery = graphql(`
  query Usage {
    usage {
      plan enforced periodStart
      contacts { current limit percentage }
      signalsPerMonth { current limit percentage }
      members { current limit percentage }
      aiBriefsPerMonth { current limit percentage }
      integrations { current limit percentage }
    }
    subscription { plan effectivePlan status currentPeriodEnd cancelAtPeriodEnd graceEndsAt hasCustomer billingConfigured }
    plans { id name monthlyUsd purchasable }
  }
`);
const Checkout = graphql(`
  mutation StartCheckout($plan: PlanId!) {
    createCheckoutSession(plan: $plan) { url }
  }
`);
const Portal = graphql(`
  mutation OpenBillingPortal {
    createBillingPortalSession { url }
  }
`);

type Counter = { current: number; limit: number | null; percentage: number | null };

function Meter({ label, c }: { label: string; c: Counter }) {
  const pct = c.percentage ?? 0;
  return (
    <Paper withBorder p="lg">
      <Text size="sm" c="dimmed">
        {label}
      </Text>
      <Text fz={28} fw={800}>
        {c.current.toLocaleString()}
        <Text span size="sm" c="dimmed" fw={400}>
          {' '}
          / {c.limit === null ? 'unlimited' : c.limit.toLocaleString()}
        </Text>
      </Text>
      {c.limit !== null && (
        <Progress
          value={pct}
          color={pct >= 100 ? 'red' : pct >= 80 ? 'orange' : 'blue'}
          mt="xs"
          aria-label={`${label}: ${pct}% of the limit used`}
        />
      )}
    </Paper>
  );
}

const title = (s: string) => s.charAt(0) + s.slice(1).toLowerCase().replace('_', ' ');

export default function Usage() {
  const [{ data, error, fetching }] = useQuery({ query: UsageQuery });
  const [checkout, startCheckout] = useMutation(Checkout);
  const [portal, openPortal] = useMutation(Portal);
  const owner = useRole() === 'OWNER';
  const go = (url: string | undefined) => {
    if (url) window.location.assign(url);
  };
  return (
    <Stack>
      <Title order={2}>Plan and usage</Title>
      <ErrorNotice error={error ?? checkout.error ?? portal.error} />
      {!data ? (
        fetching && <Loading />
      ) : (
        <>
          <Group gap="sm">
            <Text fw={700}>{title(data.subscription.plan)} plan</Text>
            <Text size="sm">· {title(data.subscription.status)}</Text>
            {data.subscription.effectivePlan !== data.subscription.plan && (
              <Text size="sm" fw={600}>
                · limits of the {title(data.subscription.effectivePlan)} plan apply
              </Text>
            )}
          </Group>
          {data.subscription.graceEndsAt && (
            <Alert color="orange" title="Payment past due">
              The plan's limits stay until {new Date(data.subscription.graceEndsAt).toLocaleDateString()}; update the
              payment method to keep them.
            </Alert>
          )}
          {!data.usage.enforced && (
            <Text size="sm" c="dimmed">
              This server does not enforce plan limits.
            </Text>
          )}
          <Text size="sm" c="dimmed">
            Monthly counts since {new Date(data.usage.periodStart).toLocaleDateString()}
          </Text>
          <SimpleGrid cols={{ base: 1, sm: 2, lg: 3 }}>
            <Meter label="Signals this month" c={data.usage.signalsPerMonth} />
            <Meter label="Contacts" c={data.usage.contacts} />
            <Meter label="Members" c={data.usage.members} />
            <Meter label="Integrations" c={data.usage.integrations} />
            <Meter label="AI briefs this month" c={data.usage.aiBriefsPerMonth} />
          </SimpleGrid>
          {data.subscription.billingConfigured && owner && (
            <Group>
              {data.plans
                .filter((p) => p.purchasable && p.id !== data.subscription.plan)
                .map((p) => (
                  <Button
                    key={p.id}
                    variant="light"
                    loading={checkout.fetching}
                    onClick={() => startCheckout({ plan: p.id }).then((r) => go(r.data?.createCheckoutSession.url))}
                  >
                    Upgrade to {p.name} (${p.monthlyUsd}/month)
                  </Button>
                ))}
              {data.subscription.hasCustomer && (
                <Button
                  variant="default"
                  loading={portal.fetching}
                  onClick={() => openPortal({}).then((r) => go(r.data?.createBillingPortalSession.url))}
                >
                  Manage billing
                </Button>
              )}
            </Group>
          )}
        </>
      )}
    </Stack>
  );
}
