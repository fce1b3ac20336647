// Small shared pieces: error notices (FORBIDDEN explained), field errors from the API, tier
// badges, relative times, empty states and the role checks the pages use to hide write controls.
import type { ReactNode } from 'react';
import { Alert, Badge, Button, Center, Group, Loader, Modal, Stack, Text, Title } from '@mantine/core';
import type { CombinedError } from 'urql';
import { useSessionState, type Role } from './session';

export function codeOf(error: CombinedError | undefined): string | undefined {
  const ext = error?.graphQLErrors[0]?.extensions as { code?: string } | undefined;
  return ext?.code;
}

/** `{field: message}` from a BAD_USER_INPUT / CONFLICT error's `extensions.fields`. */
export function fieldErrors(error: CombinedError | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of error?.graphQLErrors ?? []) {
    const fields = (e.extensions as { fields?: { field: string; message: string }[] }).fields ?? [];
    for (const f of fields) {
      const key = f.field.split('.').pop() ?? f.field;
      out[key] = f.message;
      out[f.field] = f.message;
    }
  }
  return out;
}

export function ErrorNotice({ error }: { error: CombinedError | undefined }) {
  if (!error) return null;
  const code = codeOf(error);
  if (code === 'FORBIDDEN') {
    return (
      <Alert color="orange" title="You don't have access to this" role="alert">
        {error.graphQLErrors[0]?.message}. Your role in this organization does not allow it; ask an
        admin or owner if you need it.
      </Alert>
    );
  }
  if (code === 'NOT_FOUND') {
    return (
      <Alert color="gray" title="Not found" role="alert">
        {error.graphQLErrors[0]?.message}. It may have been deleted, merged, or belong to another organization.
      </Alert>
    );
  }
  const fields = fieldErrors(error);
  const message = error.graphQLErrors[0]?.message ?? error.networkError?.message ?? error.message;
  return (
    <Alert color="red" title={code === 'BAD_USER_INPUT' ? 'Please check the form' : 'Something went wrong'} role="alert">
      {Object.keys(fields).length ? 'Some fields need attention.' : message.slice(0, 300)}
    </Alert>
  );
}

export function Loading() {
  return (
    <Center h={200} aria-busy="true">
      <Loader aria-label="Loading" />
    </Center>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <Center py="xl">
      <Stack align="center" gap={4} maw={480}>
        <Title order={3} size="h4">
          {title}
        </Title>
        <Text c="dimmed" ta="center" size="sm" component="div">
          {children}
        </Text>
      </Stack>
    </Center>
  );
}

/** Background and text of each tier's badge; every pair is above 4.5:1 contrast. */
const TIER_STYLE: Record<string, { background: string; color: string }> = {
  HOT: { background: '#c92a2a', color: '#ffffff' },
  WARM: { background: '#ffe8cc', color: '#a63c00' },
  COLD: { background: '#d0ebff', color: '#1864ab' },
  INACTIVE: { background: '#e9ecef', color: '#495057' },
};

export function TierBadge({ tier }: { tier: string | null | undefined }) {
  const style = TIER_STYLE[tier ?? 'INACTIVE'] ?? TIER_STYLE.INACTIVE;
  return (
    <Badge variant="filled" style={style}>
      {tier ?? 'unscored'}
    </Badge>
  );
}

export function trendArrow(trend: string | null | undefined): string {
  if (trend === 'UP' || trend === 'RISING') return '↑';
  if (trend === 'DOWN' || trend === 'FALLING') return '↓';
  return '→';
}

export function timeAgo(iso: string | null | undefined): string {
  if (!iso) return '—';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.max(s, 0)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function useRole(): Role | null {
  const s = useSessionState();
  return s.status === 'signedIn' ? s.session.role : null;
}

/** MEMBER and above may change CRM data; VIEWER only reads. */
export function useCanWrite(): boolean {
  const role = useRole();
  return role !== null && role !== 'VIEWER';
}

export function useIsAdmin(): boolean {
  const role = useRole();
  return role === 'OWNER' || role === 'ADMIN';
}

export function contactName(c: { firstName?: string | null; lastName?: string | null; email?: string | null; github?: string | null }) {
  const name = [c.firstName, c.lastName].filter(Boolean).join(' ');
  return name || c.email || (c.github ? `@${c.github}` : 'Unnamed contact');
}

/** Asks before something that cannot be taken back: what it does (children), Cancel, the red action. */
export function ConfirmDialog(props: {
  opened: boolean;
  title: string;
  action: string;
  busy: boolean;
  onCancel: () => void;
  onConfirm: () => void;
  children: ReactNode;
}) {
  return (
    <Modal opened={props.opened} onClose={props.onCancel} title={props.title}>
      <Stack>
        {props.children}
        <Group justify="end">
          <Button variant="default" onClick={props.onCancel}>
            Cancel
          </Button>
          <Button color="red.9" loading={props.busy} onClick={props.onConfirm}>
            {props.action}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
