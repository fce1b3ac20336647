// The scoring configuration: the model preset, tier thresholds and factor weights, with a
// preview of which accounts would change tier before saving (docs/scoring.md).
import { useEffect, useState } from 'react';
import { Alert, Button, Group, NumberInput, Paper, SegmentedControl, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useClient, useMutation, useQuery } from 'urql';
import { graphql, type ResultOf } from '../../graphql';
import { ErrorNotice, Loading, TierBadge, fieldErrors, useIsAdmin } from '../../ui';

const ConfigQuery = graphql(`
  query ScoringConfig {
    scoringConfig { version model updatedAt thresholds { hot warm cold } weights { factor weight } defaultHalfLife }
  }
`);
const Preview = graphql(`
  query PreviewScoring($input: ScoringConfigInput!) {
    previewScoringConfig(input: $input) { account { id name } currentScore currentTier newScore newTier }
  }
`);
const Save = graphql(`
  mutation SaveScoring($input: ScoringConfigInput!) {
    updateScoringConfig(input: $input) { version }
  }
`);

type Config = ResultOf<typeof ConfigQuery>['scoringConfig'];
type Model = Config['model'];

const MODELS: { value: Model; label: string; help: string }[] = [
  {
    value: 'CALIBRATED',
    label: 'Calibrated',
    help: 'Volume-aware: people, signals, active days and types count, each with diminishing returns. One signal from one person is cold; hot takes several people or sustained, varied activity.',
  },
  {
    value: 'CLASSIC',
    label: 'Classic',
    help: "The original model: user count, velocity, breadth, recency and freshness. Velocity, recency and freshness are ratios a single fresh signal maxes out.",
  },
];

export default function Scoring() {
  const [{ data, error, fetching }, reexecute] = useQuery({ query: ConfigQuery });
  if (error) return <ErrorNotice error={error} />;
  if (!data) return fetching ? <Loading /> : null;
  // Keyed by version: a saved version (perhaps of another model) starts the editor afresh.
  return <Editor key={data.scoringConfig.version} config={data.scoringConfig} onSaved={() => reexecute({ requestPolicy: 'network-only' })} />;
}

function Editor({ config, onSaved }: { config: Config; onSaved: () => void }) {
  const isAdmin = useIsAdmin();
  const client = useClient();
  const [model, setModel] = useState<Model>(config.model);
  const switching = model !== config.model;
  const [thresholds, setThresholds] = useState(config.thresholds);
  const [weights, setWeights] = useState(config.weights.map((w) => ({ factor: w.factor, weight: w.weight })));
  const [preview, setPreview] = useState<ResultOf<typeof Preview>['previewScoringConfig'] | null>(null);
  const [previewError, setPreviewError] = useState<Parameters<typeof ErrorNotice>[0]['error']>(undefined);
  const [saved, save] = useMutation(Save);
  useEffect(() => setPreview(null), [thresholds, weights, model]);
  const t = { hot: thresholds.hot, warm: thresholds.warm, cold: thresholds.cold };
  // A different model starts from its own default weights: the current ones weigh other factors.
  const input = switching ? { model, thresholds: t } : { model, thresholds: t, weights };
  const fields = fieldErrors(saved.error ?? previewError);
  const runPreview = async () => {
    const r = await client.query(Preview, { input }, { requestPolicy: 'network-only' }).toPromise();
    setPreviewError(r.error);
    if (r.data) setPreview(r.data.previewScoringConfig);
  };
  const num = (v: string | number) => (typeof v === 'number' ? v : Number(v) || 0);
  return (
    <Stack>
      <Title order={2}>Scoring</Title>
      <Text size="sm" c="dimmed">
        Version {config.version}
        {config.updatedAt ? `, changed ${new Date(config.updatedAt).toLocaleString()}` : ' (defaults)'}. An account's tier comes from its score and these thresholds.
      </Text>
      <ErrorNotice error={saved.error ?? previewError} />
      <Paper withBorder p="md">
        <Title order={3} size="h5" mb="sm">
          Model
        </Title>
        <SegmentedControl
          aria-label="Model"
          value={model}
          onChange={(v) => setModel(v as Model)}
          data={MODELS.map((m) => ({ value: m.value, label: m.label }))}
          disabled={!isAdmin}
        />
        <Text size="sm" c="dimmed" mt="xs">
          {MODELS.find((m) => m.value === model)?.help}
        </Text>
        <Title order={3} size="h5" mt="md" mb="sm">
          Tier thresholds (minimum score)
        </Title>
        <SimpleGrid cols={{ base: 1, sm: 3 }}>
          <NumberInput label="Hot" min={0} max={100} value={thresholds.hot} onChange={(v) => setThresholds({ ...thresholds, hot: num(v) })} error={fields.hot} disabled={!isAdmin} />
          <NumberInput label="Warm" min={0} max={100} value={thresholds.warm} onChange={(v) => setThresholds({ ...thresholds, warm: num(v) })} error={fields.warm} disabled={!isAdmin} />
          <NumberInput label="Cold" min={0} max={100} value={thresholds.cold} onChange={(v) => setThresholds({ ...thresholds, cold: num(v) })} error={fields.cold} disabled={!isAdmin} />
        </SimpleGrid>
        <Title order={3} size="h5" mt="md" mb="sm">
          Factor weights
        </Title>
        {switching ? (
          <Text size="sm">Saving switches to the {MODELS.find((m) => m.value === model)?.label.toLowerCase()} model with its default weights; adjust them afterwards.</Text>
        ) : (
        <SimpleGrid cols={{ base: 1, sm: 2, md: 4 }}>
          {weights.map((w, i) => (
            <NumberInput
              key={w.factor}
              label={w.factor.replace(/_/g, ' ')}
              min={0}
              step={0.1}
              decimalScale={2}
              value={w.weight}
              disabled={!isAdmin}
              error={fields[w.factor]}
              onChange={(v) => setWeights(weights.map((x, j) => (j === i ? { ...x, weight: num(v) } : x)))}
            />
          ))}
        </SimpleGrid>
        )}
        {isAdmin && (
          <Group mt="md">
            <Button variant="default" onClick={runPreview}>
              Preview changes
            </Button>
            <Button
              loading={saved.fetching}
              onClick={async () => {
                const r = await save({ input });
                if (r.data) {
                  notifications.show({ title: 'Scoring saved', message: `Version ${r.data.updateScoringConfig.version}; accounts are being rescored.` });
                  onSaved();
                }
              }}
            >
              Save
            </Button>
          </Group>
        )}
      </Paper>
      {preview && (
        <Paper withBorder p="md">
          <Title order={3} size="h5" mb="sm">
            Accounts that would change tier ({preview.length})
          </Title>
          {preview.length === 0 ? (
            <Alert color="gray">No account changes tier with these settings.</Alert>
          ) : (
            <Table aria-label="Tier changes">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Account</Table.Th>
                  <Table.Th>Now</Table.Th>
                  <Table.Th>After saving</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {preview.map((p) => (
                  <Table.Tr key={p.account.id}>
                    <Table.Td>{p.account.name}</Table.Td>
                    <Table.Td>
                      {p.currentScore ?? '—'} <TierBadge tier={p.currentTier} />
                    </Table.Td>
                    <Table.Td>
                      {p.newScore} <TierBadge tier={p.newTier} />
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </Paper>
      )}
    </Stack>
  );
}
