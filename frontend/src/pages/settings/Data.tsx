// Data in and out of the organization: the CSV import wizard (contacts, accounts, deals: upload,
// the detected source, the column mapping, a dry run with each bad row, then the run with live
// progress), exports with their signed, expiring download links (ADMIN), and sample data to try
// the product with (ADMIN).
import { useEffect, useState, type FormEvent } from 'react';
import { Alert, Anchor, Button, Checkbox, Group, NativeSelect, Paper, Progress, Radio, ScrollArea, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useClient, useMutation, useQuery, useSubscription, type CombinedError } from 'urql';
import { graphql, type ResultOf } from '../../graphql';
import { ConfirmDialog, ErrorNotice, Loading, timeAgo, useCanWrite, useIsAdmin } from '../../ui';

const DemoFields = graphql(`
  fragment DemoFields on DemoData @_unmask {
    present seededAt demoOrganization accounts contacts signals deals activities alertRules
  }
`);
const DemoDataQuery = graphql(
  `
  query DemoDataState {
    demoData { ...DemoFields }
  }
`,
  [DemoFields],
);
const SeedDemo = graphql(
  `
  mutation LoadSampleData {
    seedDemoData { ...DemoFields }
  }
`,
  [DemoFields],
);
const RemoveDemo = graphql(
  `
  mutation RemoveSampleData {
    removeDemoData { ...DemoFields }
  }
`,
  [DemoFields],
);

const ImportFields = graphql(`
  fragment ImportFields on ImportJob @_unmask {
    id entity status source sizeBytes delimiter headers fields
    mapping { column field }
    total processed created updated unchanged failed lastError
    errors(first: 100) { row line field message }
  }
`);
const CreateImport = graphql(`
  mutation CreateImport($entity: ImportEntity!) {
    createImport(entity: $entity) { uploadUrl import { id } }
  }
`);
const ImportJobQuery = graphql(
  `
  query ImportJob($id: ID!) {
    importJob(id: $id) { ...ImportFields }
  }
`,
  [ImportFields],
);
const UpdateMapping = graphql(
  `
  mutation UpdateImportMapping($id: ID!, $mapping: [ImportColumnMappingInput!]!) {
    updateImportMapping(id: $id, mapping: $mapping) { ...ImportFields }
  }
`,
  [ImportFields],
);
const PreviewImport = graphql(`
  query PreviewImport($id: ID!) {
    previewImport(id: $id) { total wouldCreate wouldUpdate unchanged invalid errors { row line field message } }
  }
`);
const StartImport = graphql(
  `
  mutation StartImport($id: ID!) {
    startImport(id: $id) { ...ImportFields }
  }
`,
  [ImportFields],
);
const ImportProgress = graphql(
  `
  subscription ImportProgress($id: ID!) {
    importProgress(id: $id) { ...ImportFields }
  }
`,
  [ImportFields],
);

const ExportFields = graphql(`
  fragment ExportFields on ExportJob @_unmask {
    id status entities format rows sizeBytes downloadUrl expiresAt error createdAt
  }
`);
const ExportData = graphql(
  `
  mutation ExportData($entities: [ExportEntity!]!, $format: ExportFormat!) {
    exportData(entities: $entities, format: $format) { ...ExportFields }
  }
`,
  [ExportFields],
);
const ExportsQuery = graphql(
  `
  query RecentExports {
    exports(first: 10) { ...ExportFields }
  }
`,
  [ExportFields],
);

type Job = ResultOf<typeof ImportJobQuery>['importJob'];
type Preview = ResultOf<typeof PreviewImport>['previewImport'];
type Entity = Job['entity'];
type ExportJob = ResultOf<typeof ExportsQuery>['exports'][number];
type ExportEntity = ExportJob['entities'][number];

const ENTITIES: { value: Entity; label: string }[] = [
  { value: 'CONTACTS', label: 'Contacts' },
  { value: 'ACCOUNTS', label: 'Accounts' },
  { value: 'DEALS', label: 'Deals' },
];
const EXPORT_ENTITIES: { value: ExportEntity; label: string }[] = [
  { value: 'CONTACTS', label: 'Contacts' },
  { value: 'ACCOUNTS', label: 'Accounts' },
  { value: 'DEALS', label: 'Deals' },
  { value: 'SIGNALS', label: 'Signals' },
  { value: 'ACTIVITIES', label: 'Activities' },
];
const SOURCE_LABEL: Record<Job['source'], string> = {
  HUBSPOT: 'a HubSpot export',
  SALESFORCE: 'a Salesforce export',
  GENERIC: 'a generic CSV file',
};
const FINISHED = ['SUCCEEDED', 'FAILED'];

const lower = (s: string) => s.toLowerCase().replace(/_/g, ' ');
const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

function bytes(n: number | null | undefined): string {
  if (n == null) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export default function Data() {
  const canWrite = useCanWrite();
  const admin = useIsAdmin();
  return (
    <Stack>
      <div>
        <Title order={2}>Import and export</Title>
        <Text c="dimmed" size="sm">
          Bring contacts, accounts and deals in from a CSV file (HubSpot and Salesforce exports are recognised), take your data out, or try
          the product with sample data.
        </Text>
      </div>
      {canWrite ? (
        <ImportWizard />
      ) : (
        <Alert variant="outline" color="gray.8" title="Imports need write access">
          Your role can read this organization's data but not change it; ask an admin to import for you.
        </Alert>
      )}
      {/* Side by side: either one growing as its list loads moves nothing else on the page. */}
      {admin && (
        <SimpleGrid cols={{ base: 1, lg: 2 }}>
          <Exports />
          <SampleData />
        </SimpleGrid>
      )}
    </Stack>
  );
}

/** The API's answer to an upload that was refused (`{error: {code, message}}`), as a sentence. */
async function uploadError(res: Response): Promise<string> {
  try {
    const e = (await res.json()).error ?? {};
    return `${e.message ?? res.statusText} (${e.code ?? res.status})`;
  } catch {
    return `${res.status} ${res.statusText}`;
  }
}

function ImportWizard() {
  const client = useClient();
  const [entity, setEntity] = useState<Entity>('CONTACTS');
  const [file, setFile] = useState<File | null>(null);
  const [fileKey, setFileKey] = useState(0);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<CombinedError | undefined>();
  const [uploadProblem, setUploadProblem] = useState<string | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [mapping, setMapping] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState(true);
  const [preview, setPreview] = useState<Preview | null>(null);

  const adopt = (j: Job) => {
    setJob(j);
    setMapping(Object.fromEntries(j.mapping.map((m) => [m.column, m.field ?? ''])));
    setSaved(true);
  };
  const reset = () => {
    setJob(null);
    setPreview(null);
    setFile(null);
    setError(undefined);
    setUploadProblem(null);
    setFileKey((k) => k + 1);
  };

  const upload = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    if (!file) {
      setUploadProblem('Choose a CSV file first.');
      return;
    }
    setBusy('upload');
    setError(undefined);
    setUploadProblem(null);
    setPreview(null);
    try {
      const created = await client.mutation(CreateImport, { entity }).toPromise();
      if (created.error || !created.data) {
        setError(created.error);
        return;
      }
      const { uploadUrl, import: made } = created.data.createImport;
      const res = await fetch(uploadUrl, { method: 'PUT', headers: { 'content-type': 'text/csv' }, body: file });
      if (!res.ok) {
        setUploadProblem(`The file was not accepted: ${await uploadError(res)}`);
        return;
      }
      const read = await client.query(ImportJobQuery, { id: made.id }, { requestPolicy: 'network-only' }).toPromise();
      if (read.error || !read.data) setError(read.error);
      else adopt(read.data.importJob);
    } catch (err) {
      setUploadProblem(`The upload failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      setBusy(null);
    }
  };

  /** Saves the mapping when it was changed; false when the server refused it. */
  const saveMapping = async (): Promise<boolean> => {
    if (!job || saved) return true;
    const r = await client
      .mutation(UpdateMapping, { id: job.id, mapping: job.headers.map((column) => ({ column, field: mapping[column] || null })) })
      .toPromise();
    if (r.error || !r.data) {
      setError(r.error);
      return false;
    }
    adopt(r.data.updateImportMapping);
    return true;
  };

  const dryRun = async () => {
    if (!job) return;
    setBusy('preview');
    setError(undefined);
    try {
      if (!(await saveMapping())) return;
      const r = await client.query(PreviewImport, { id: job.id }, { requestPolicy: 'network-only' }).toPromise();
      if (r.error || !r.data) setError(r.error);
      else setPreview(r.data.previewImport);
    } finally {
      setBusy(null);
    }
  };

  const start = async () => {
    if (!job) return;
    setBusy('start');
    setError(undefined);
    try {
      if (!(await saveMapping())) return;
      const r = await client.mutation(StartImport, { id: job.id }).toPromise();
      if (r.error || !r.data) setError(r.error);
      else setJob(r.data.startImport);
    } finally {
      setBusy(null);
    }
  };

  const editable = job?.status === 'READY';
  const running = job && !['AWAITING_UPLOAD', 'READY'].includes(job.status);
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="import-title">
      <Stack>
        <Title order={3} size="h4" id="import-title">
          Import a CSV file
        </Title>
        <ErrorNotice error={error} />
        {error && <ErrorCode error={error} />}
        {uploadProblem && (
          <Alert variant="outline" color="red.9" role="alert" title="Upload">
            {uploadProblem}
          </Alert>
        )}
        {!job ? (
          <form onSubmit={upload} noValidate>
            <Group align="end" wrap="wrap">
              <NativeSelect
                label="What to import"
                value={entity}
                onChange={(e) => setEntity(e.currentTarget.value as Entity)}
                data={ENTITIES}
              />
              <div>
                <Text component="label" htmlFor="import-file" size="sm" fw={500} display="block">
                  CSV file
                </Text>
                <input
                  key={fileKey}
                  id="import-file"
                  type="file"
                  accept=".csv,text/csv"
                  onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)}
                />
              </div>
              <Button type="submit" loading={busy === 'upload'}>
                Upload
              </Button>
            </Group>
            <Text size="xs" c="dimmed" mt="xs">
              A header line first; separated by commas, semicolons or tabs. Rows match existing records by email (contacts), domain
              (accounts) or title and account (deals), so importing the same file again updates them instead of adding duplicates.
            </Text>
          </form>
        ) : (
          <>
            <Group gap="xs" wrap="wrap" data-testid="import-summary">
              <Text size="sm">
                {file?.name ?? 'The file'}: {plural(job.total, 'row')} of {lower(job.entity)}, {bytes(job.sizeBytes)}
                {job.delimiter ? `, separated by ${job.delimiter === '\t' ? 'tabs' : `“${job.delimiter}”`}` : ''}.
              </Text>
              <Text size="sm" fw={600}>
                Detected: {SOURCE_LABEL[job.source]}
              </Text>
            </Group>
            <MappingTable
              job={job}
              mapping={mapping}
              disabled={!editable}
              onChange={(column, field) => {
                setMapping((m) => ({ ...m, [column]: field }));
                setSaved(false);
                setPreview(null);
              }}
            />
            {editable && (
              <Group>
                <Button variant="default" disabled={saved} loading={busy === 'save'} onClick={async () => {
                  setBusy('save');
                  setError(undefined);
                  try {
                    if (await saveMapping()) notifications.show({ title: 'Mapping saved', message: 'The dry run and the import use it.' });
                  } finally {
                    setBusy(null);
                  }
                }}>
                  Save mapping
                </Button>
                <Button variant="default" loading={busy === 'preview'} onClick={dryRun}>
                  Dry run
                </Button>
                <Button loading={busy === 'start'} disabled={!preview} onClick={start}>
                  Start import
                </Button>
                <Button variant="subtle" onClick={reset}>
                  Choose another file
                </Button>
              </Group>
            )}
            {editable && !preview && (
              <Text size="xs" c="dimmed">
                Make a dry run first: it checks every row as the import would, and writes nothing.
              </Text>
            )}
            {preview && !running && <PreviewResult preview={preview} />}
            {running && <ImportRun job={job} onUpdate={setJob} onDone={reset} />}
          </>
        )}
      </Stack>
    </Paper>
  );
}

/** The code of an error next to its message (ErrorNotice shows the message). */
function ErrorCode({ error }: { error: CombinedError }) {
  const ext = error.graphQLErrors[0]?.extensions as { code?: string; fields?: { field: string; message: string }[] } | undefined;
  if (!ext?.code && !ext?.fields?.length) return null;
  return (
    <Text size="sm" c="red.9">
      {ext.code && <>Error code {ext.code}. </>}
      {ext.fields?.map((f) => `${f.field}: ${f.message}`).join('; ')}
    </Text>
  );
}

function MappingTable({
  job,
  mapping,
  disabled,
  onChange,
}: {
  job: Job;
  mapping: Record<string, string>;
  disabled: boolean;
  onChange: (column: string, field: string) => void;
}) {
  const options = [{ value: '', label: 'Ignore this column' }, ...job.fields.map((f) => ({ value: f, label: f }))];
  return (
    <ScrollArea>
      <Table aria-label="Column mapping" miw={480}>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Column in the file</Table.Th>
            <Table.Th>Fills the field</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {job.headers.map((column) => (
            <Table.Tr key={column}>
              <Table.Td>{column}</Table.Td>
              <Table.Td>
                <NativeSelect
                  aria-label={`Field for column ${column}`}
                  size="xs"
                  value={mapping[column] ?? ''}
                  disabled={disabled}
                  onChange={(e) => onChange(column, e.currentTarget.value)}
                  data={options}
                />
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </ScrollArea>
  );
}

function RowErrors({ errors, label }: { errors: { row: number; line?: number | null; field: string; message: string }[]; label: string }) {
  if (errors.length === 0) return null;
  return (
    <ScrollArea>
      <Table aria-label={label} miw={480}>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Row</Table.Th>
            <Table.Th>Line</Table.Th>
            <Table.Th>Field</Table.Th>
            <Table.Th>Problem</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {errors.map((e) => (
            <Table.Tr key={`${e.row}:${e.field}:${e.message}`}>
              <Table.Td>{e.row}</Table.Td>
              <Table.Td>{e.line ?? '—'}</Table.Td>
              <Table.Td>{e.field}</Table.Td>
              <Table.Td>{e.message}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </ScrollArea>
  );
}

function PreviewResult({ preview }: { preview: Preview }) {
  return (
    <Stack gap="xs">
      <Paper withBorder p="sm" role="status" aria-label="Dry run">
        <Text fw={700} size="sm">
          Dry run
        </Text>
        <Text size="sm">
          {plural(preview.total, 'row')}: {preview.wouldCreate.toLocaleString()} would be created, {preview.wouldUpdate.toLocaleString()}{' '}
          updated, {preview.unchanged.toLocaleString()} unchanged, {preview.invalid.toLocaleString()} left out.
          {preview.invalid > 0 && ' Fix the rows below in the file and upload it again, or start the import without them.'}
        </Text>
      </Paper>
      <RowErrors errors={preview.errors} label="Rows with errors" />
    </Stack>
  );
}

/** A started import: live progress from `importProgress`, and a poll of `importJob` in case the socket is down. */
function ImportRun({ job, onUpdate, onDone }: { job: Job; onUpdate: (j: Job) => void; onDone: () => void }) {
  const client = useClient();
  const finished = FINISHED.includes(job.status);
  useSubscription({ query: ImportProgress, variables: { id: job.id }, pause: finished }, (_prev: unknown, data) => {
    onUpdate(data.importProgress);
    return data;
  });
  useEffect(() => {
    if (finished) return;
    const timer = window.setInterval(async () => {
      const r = await client.query(ImportJobQuery, { id: job.id }, { requestPolicy: 'network-only' }).toPromise();
      if (r.data) onUpdate(r.data.importJob);
    }, 2000);
    return () => window.clearInterval(timer);
  }, [client, job.id, finished, onUpdate]);
  const pct = job.total ? Math.round((job.processed / job.total) * 100) : finished ? 100 : 0;
  return (
    <Stack gap="xs" aria-live="polite">
      <Group>
        <Text size="sm" fw={600} data-testid="import-status">
          Import {lower(job.status)}: {job.processed.toLocaleString()} of {plural(job.total, 'row')} processed
        </Text>
      </Group>
      <Progress value={pct} aria-label={`Import progress: ${pct}%`} color={job.status === 'FAILED' ? 'red' : 'blue'} />
      {finished && (
        <Text size="sm" data-testid="import-result">
          {job.created.toLocaleString()} created, {job.updated.toLocaleString()} updated, {job.unchanged.toLocaleString()} unchanged,{' '}
          {job.failed.toLocaleString()} left out.
        </Text>
      )}
      {job.status === 'FAILED' && (
        <Alert variant="outline" color="red.9" role="alert" title="The import stopped">
          {job.lastError ?? 'No reason was recorded.'} Batches committed before it stopped are kept.
        </Alert>
      )}
      {finished && <RowErrors errors={job.errors} label="Rows left out" />}
      {finished && (
        <Group>
          <Button variant="default" onClick={onDone}>
            Import another file
          </Button>
        </Group>
      )}
    </Stack>
  );
}

function Exports() {
  const [entities, setEntities] = useState<string[]>(['CONTACTS']);
  const [format, setFormat] = useState<'CSV' | 'JSON'>('CSV');
  const [made, startExport] = useMutation(ExportData);
  const [{ data, error, fetching }, reexecute] = useQuery({ query: ExportsQuery, requestPolicy: 'network-only' });
  const [problem, setProblem] = useState<string | null>(null);
  const list = data?.exports ?? [];
  // An export being written is asked about again every second until its file is ready.
  const pending = list.some((j) => j.status === 'QUEUED' || j.status === 'RUNNING');
  useEffect(() => {
    if (!pending) return;
    const timer = window.setInterval(() => reexecute({ requestPolicy: 'network-only' }), 1000);
    return () => window.clearInterval(timer);
  }, [pending, reexecute]);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    setProblem(null);
    if (entities.length === 0) {
      setProblem('Pick at least one kind of data to export.');
      return;
    }
    const r = await startExport({ entities: entities as ExportEntity[], format });
    if (r.data) reexecute({ requestPolicy: 'network-only' });
  };
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="export-title">
      <Stack>
        <Title order={3} size="h4" id="export-title">
          Export data
        </Title>
        <ErrorNotice error={made.error ?? error} />
        {made.error && <ErrorCode error={made.error} />}
        <form onSubmit={submit} noValidate>
          <Stack>
            <Checkbox.Group label="What to export" value={entities} onChange={setEntities} error={problem}>
              <Group mt={6}>
                {EXPORT_ENTITIES.map((x) => (
                  <Checkbox key={x.value} value={x.value} label={x.label} />
                ))}
              </Group>
            </Checkbox.Group>
            <Radio.Group label="Format" value={format} onChange={(v) => setFormat(v as 'CSV' | 'JSON')}>
              <Group mt={6}>
                <Radio value="CSV" label="CSV (one file, or a .tar.gz of one CSV per kind)" />
                <Radio value="JSON" label="JSON lines (gzip)" />
              </Group>
            </Radio.Group>
            <Group>
              <Button type="submit" loading={made.fetching}>
                Export
              </Button>
            </Group>
          </Stack>
        </form>
        {!data ? (
          fetching && <Loading />
        ) : list.length === 0 ? (
          <Text size="sm" c="dimmed">
            No exports yet. Each export's file is kept until its link expires.
          </Text>
        ) : (
          <ScrollArea>
            <Table aria-label="Exports" miw={480}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Data</Table.Th>
                  <Table.Th>Made</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Rows</Table.Th>
                  <Table.Th>File</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.map((job) => (
                  <ExportRow key={job.id} job={job} />
                ))}
              </Table.Tbody>
            </Table>
          </ScrollArea>
        )}
      </Stack>
    </Paper>
  );
}

function ExportRow({ job }: { job: ExportJob }) {
  return (
    <Table.Tr>
      <Table.Td>
        {job.entities.map(lower).join(', ')} · {job.format}
      </Table.Td>
      <Table.Td>{timeAgo(job.createdAt)}</Table.Td>
      <Table.Td>{lower(job.status)}</Table.Td>
      <Table.Td>{job.status === 'SUCCEEDED' ? job.rows.toLocaleString() : '—'}</Table.Td>
      <Table.Td>
        {job.status === 'SUCCEEDED' && job.downloadUrl ? (
          <Stack gap={0}>
            <Anchor href={job.downloadUrl} download>
              Download ({bytes(job.sizeBytes)})
            </Anchor>
            {job.expiresAt && (
              <Text size="xs" c="dimmed">
                Link expires {new Date(job.expiresAt).toLocaleString()}
              </Text>
            )}
          </Stack>
        ) : job.status === 'FAILED' ? (
          <Text size="sm" c="red.9">
            {job.error ?? 'The export failed.'}
          </Text>
        ) : job.status === 'EXPIRED' ? (
          'The link expired and the file was deleted.'
        ) : (
          'Being written…'
        )}
      </Table.Td>
    </Table.Tr>
  );
}

function SampleData() {
  const [{ data, error, fetching }, reexecute] = useQuery({ query: DemoDataQuery });
  const [seeded, seed] = useMutation(SeedDemo);
  const [removed, remove] = useMutation(RemoveDemo);
  const [confirming, setConfirming] = useState(false);
  const d = data?.demoData;
  const refresh = () => reexecute({ requestPolicy: 'network-only' });
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="sample-title">
      <Stack>
        <Title order={3} size="h4" id="sample-title">
          Sample data
        </Title>
        <ErrorNotice error={error ?? seeded.error ?? removed.error} />
        {!d ? (
          fetching && <Loading />
        ) : (
          <>
            {d.demoOrganization && (
              <Text size="sm">This is a demo organization: it and everything in it is deleted 24 hours after it was made.</Text>
            )}
            {d.present ? (
              <>
                <Text size="sm" data-testid="sample-data-state">
                  Sample data is loaded{d.seededAt ? ` (since ${new Date(d.seededAt).toLocaleString()})` : ''}: {plural(d.accounts, 'account')},{' '}
                  {plural(d.contacts, 'contact')}, {plural(d.signals, 'signal')}, {plural(d.deals, 'deal')}, {plural(d.activities, 'activity', 'activities')}{' '}
                  and {plural(d.alertRules, 'alert rule')}. Your own data is kept apart and stays when it is removed.
                </Text>
                <Group>
                  <Button color="red.9" variant="outline" onClick={() => setConfirming(true)}>
                    Remove sample data
                  </Button>
                </Group>
              </>
            ) : (
              <>
                <Text size="sm" data-testid="sample-data-state">
                  No sample data. Load 8 accounts tagged “demo” with their people, about 600 signals over 45 days scored by your model,
                  deals, activities and an alert rule — to see what DevSignal does before your own signals arrive. You can remove exactly
                  this data later.
                </Text>
                <Group>
                  <Button
                    loading={seeded.fetching}
                    onClick={async () => {
                      const r = await seed({});
                      if (!r.error) {
                        notifications.show({ title: 'Sample data loaded', message: 'Open Accounts to see them ranked by score.' });
                        refresh();
                      }
                    }}
                  >
                    Load sample data
                  </Button>
                </Group>
              </>
            )}
          </>
        )}
      </Stack>
      <ConfirmDialog
        opened={confirming}
        title="Remove the sample data?"
        action="Remove sample data"
        busy={removed.fetching}
        onCancel={() => setConfirming(false)}
        onConfirm={async () => {
          const r = await remove({});
          setConfirming(false);
          if (!r.error) {
            notifications.show({ title: 'Sample data removed', message: 'Only your own data is left.' });
            refresh();
          }
        }}
      >
        <Text size="sm">The sample accounts, contacts, signals, deals, activities and alert rule are deleted. Your own data stays.</Text>
      </ConfirmDialog>
    </Paper>
  );
}

