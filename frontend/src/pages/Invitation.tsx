// The invitation link from the email: signed in, accept it (and switch to that organization);
// signed out, sign in or create an account that joins the inviting organization directly.
import { useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { Alert, Anchor, Button, Center, Group, Paper, Stack, Text, Title } from '@mantine/core';
import { Provider, useMutation } from 'urql';
import { graphql } from '../graphql';
import { adoptRefreshToken, useSessionState } from '../session';
import { ErrorNotice, fieldErrors } from '../ui';
import { makeClient } from '../client';

const Accept = graphql(`
  mutation AcceptInvitation($token: String!) {
    acceptInvitation(token: $token) {
      refreshToken
      organization { id name }
    }
  }
`);

export function AcceptInvitation() {
  const state = useSessionState();
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const here = `/invitations/accept?token=${encodeURIComponent(token)}`;
  return (
    <Center mih="70vh" p="md" component="main">
      <Paper withBorder shadow="sm" p="xl" w={460} maw="100%">
        <Title order={1} size="h2" mb="md">
          Join an organization
        </Title>
        {!token ? (
          <Alert color="red">This invitation link has no token. Ask for a new invitation.</Alert>
        ) : state.status === 'signedIn' ? (
          <AcceptWithClient token={token} email={state.session.user.email} />
        ) : (
          <Stack>
            <Text>You were invited to DevSignal. Sign in with the invited email address, or create your account.</Text>
            <Group grow>
              <Button component={Link} to={`/register?invitation=${encodeURIComponent(token)}`}>
                Create account
              </Button>
              <Button component={Link} to={`/login?next=${encodeURIComponent(here)}`} variant="default">
                Sign in
              </Button>
            </Group>
          </Stack>
        )}
      </Paper>
    </Center>
  );
}

function AcceptWithClient(props: { token: string; email: string }) {
  // Usable inside and outside the signed-in layout (which provides its own client).
  const [client] = useState(() => makeClient().client);
  return (
    <Provider value={client}>
      <AcceptForm {...props} />
    </Provider>
  );
}

function AcceptForm({ token, email }: { token: string; email: string }) {
  const [result, accept] = useMutation(Accept);
  const [failed, setFailed] = useState<string | null>(null);
  const navigate = useNavigate();
  const onAccept = async () => {
    const r = await accept({ token });
    if (r.data) {
      try {
        await adoptRefreshToken(r.data.acceptInvitation.refreshToken);
        navigate('/');
      } catch (e) {
        setFailed(e instanceof Error ? e.message : String(e));
      }
    }
  };
  const fields = fieldErrors(result.error);
  return (
    <Stack>
      <Text>
        Accept the invitation as <b>{email}</b>? You will switch to the inviting organization.
      </Text>
      {fields.token ? (
        <Alert color="red" role="alert">
          The invitation {fields.token}.
        </Alert>
      ) : (
        <ErrorNotice error={result.error} />
      )}
      {failed && <Alert color="red">{failed}</Alert>}
      <Button onClick={onAccept} loading={result.fetching}>
        Accept invitation
      </Button>
      <Anchor component={Link} to="/" size="sm">
        Not now
      </Anchor>
    </Stack>
  );
}
