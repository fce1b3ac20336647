// Team and roles: members (change role, remove), invitations (invite by email with a role).
import { useState, type FormEvent } from 'react';
import { Badge, Button, Group, Paper, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../../graphql';
import { currentSession } from '../../session';
import { ErrorNotice, Loading, fieldErrors, timeAgo, useIsAdmin } from '../../ui';

const TeamQuery = graphql(`
  query Team {
    members { role joinedAt user { id name email } }
  }
`);
const InvitationsQuery = graphql(`
  query Invitations {
    invitations { id email role createdAt expiresAt acceptedAt }
  }
`);
const Invite = graphql(`
  mutation Invite($email: String!, $role: Role!) {
    inviteMember(email: $email, role: $role) { id email role }
  }
`);
const ChangeRole = graphql(`
  mutation ChangeRole($userId: ID!, $role: Role!) {
    updateMemberRole(userId: $userId, role: $role) { role user { id } }
  }
`);
const Remove = graphql(`
  mutation RemoveMember($userId: ID!) {
    removeMember(userId: $userId)
  }
`);

const ROLES = ['ADMIN', 'MEMBER', 'VIEWER'];

export default function Team() {
  const isAdmin = useIsAdmin();
  const [{ data, error, fetching }, reexecute] = useQuery({ query: TeamQuery });
  const [changed, changeRole] = useMutation(ChangeRole);
  const [removed, remove] = useMutation(Remove);
  const me = currentSession()?.user.id;
  const refresh = () => reexecute({ requestPolicy: 'network-only' });
  return (
    <Stack>
      <Title order={2}>Team</Title>
      <ErrorNotice error={error ?? changed.error ?? removed.error} />
      <Paper withBorder p="md">
        {!data ? (
          fetching && <Loading />
        ) : (
          <Table aria-label="Members">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Member</Table.Th>
                <Table.Th>Role</Table.Th>
                <Table.Th>Joined</Table.Th>
                <Table.Th />
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.members.map((m) => (
                <Table.Tr key={m.user.id}>
                  <Table.Td>
                    <Text size="sm" fw={600}>
                      {m.user.name} {m.user.id === me && <Badge size="xs">you</Badge>}
                    </Text>
                    <Text size="xs" c="dimmed">
                      {m.user.email}
                    </Text>
                  </Table.Td>
                  <Table.Td>
                    {isAdmin && m.role !== 'OWNER' && m.user.id !== me ? (
                      <Select
                        size="xs"
                        w={130}
                        aria-label={`Role of ${m.user.name}`}
                        data={ROLES}
                        value={m.role}
                        allowDeselect={false}
                        onChange={async (role) => {
                          if (role && !(await changeRole({ userId: m.user.id, role: role as never })).error) refresh();
                        }}
                      />
                    ) : (
                      <Badge variant="light">{m.role}</Badge>
                    )}
                  </Table.Td>
                  <Table.Td>{timeAgo(m.joinedAt)}</Table.Td>
                  <Table.Td ta="right">
                    {isAdmin && m.role !== 'OWNER' && m.user.id !== me && (
                      <Button
                        size="xs"
                        color="red"
                        variant="subtle"
                        onClick={async () => {
                          if (confirm(`Remove ${m.user.name} from the organization?`) && !(await remove({ userId: m.user.id })).error) refresh();
                        }}
                      >
                        Remove
                      </Button>
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Paper>
      {/* Below the members only once they are on screen: nothing moves when they arrive. */}
      {data && (isAdmin ? <Invitations /> : <Text size="sm" c="dimmed">Admins and owners invite people and change roles.</Text>)}
    </Stack>
  );
}

function Invitations() {
  const [{ data, error }, reexecute] = useQuery({ query: InvitationsQuery });
  const [result, invite] = useMutation(Invite);
  const [role, setRole] = useState<string | null>('MEMBER');
  const fields = fieldErrors(result.error);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const email = String(new FormData(form).get('email') ?? '');
    const r = await invite({ email, role: (role ?? 'MEMBER') as never });
    if (r.data) {
      notifications.show({ title: 'Invitation sent', message: `${email} gets an email with a link to join.` });
      form.reset();
      reexecute({ requestPolicy: 'network-only' });
    }
  };
  return (
    <Paper withBorder p="md">
      <Title order={3} size="h5" mb="sm">
        Invite someone
      </Title>
      <form onSubmit={submit} noValidate>
        <Group align="start">
          <TextInput name="email" type="email" label="Email" required error={fields.email} style={{ flex: 1 }} />
          <Select label="Role" data={ROLES} value={role} onChange={setRole} allowDeselect={false} error={fields.role} w={140} />
          <Button type="submit" mt={25} loading={result.fetching}>
            Send invitation
          </Button>
        </Group>
        {!Object.keys(fields).length && <ErrorNotice error={result.error} />}
      </form>
      <ErrorNotice error={error} />
      {data && data.invitations.length > 0 && (
        <Table mt="md" aria-label="Pending invitations">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Invited</Table.Th>
              <Table.Th>Role</Table.Th>
              <Table.Th>Status</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {data.invitations.map((i) => (
              <Table.Tr key={i.id}>
                <Table.Td>{i.email}</Table.Td>
                <Table.Td>{i.role}</Table.Td>
                <Table.Td>{i.acceptedAt ? 'accepted' : new Date(i.expiresAt) < new Date() ? 'expired' : `expires ${new Date(i.expiresAt).toLocaleDateString()}`}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Paper>
  );
}
