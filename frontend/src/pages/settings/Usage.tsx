// Usage this month: signals received and contacts stored.
import { Paper, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import { useQuery } from 'urql';
import { graphql } from '../../graphql';
import { ErrorNotice, Loading } from '../../ui';

const UsageQuery = graphql(`
  query Usage {
    usage { periodStart signalsThisMonth contacts }
  }
`);

export default function Usage() {
  const [{ data, error, fetching }] = useQuery({ query: UsageQuery });
  return (
    <Stack>
      <Title order={2}>Usage</Title>
      <ErrorNotice error={error} />
      {!data ? (
        fetching && <Loading />
      ) : (
        <>
          <Text size="sm" c="dimmed">
            Since {new Date(data.usage.periodStart).toLocaleDateString()}
          </Text>
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <Paper withBorder p="lg">
              <Text size="sm" c="dimmed">
                Signals this month
              </Text>
              <Text fz={32} fw={800}>
                {data.usage.signalsThisMonth.toLocaleString()}
              </Text>
            </Paper>
            <Paper withBorder p="lg">
              <Text size="sm" c="dimmed">
                Contacts
              </Text>
              <Text fz={32} fw={800}>
                {data.usage.contacts.toLocaleString()}
              </Text>
            </Paper>
          </SimpleGrid>
        </>
      )}
    </Stack>
  );
}
