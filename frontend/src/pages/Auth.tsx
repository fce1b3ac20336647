// Signing in and out of the dashboard: the REST auth endpoints in cookie mode (see session.ts).
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { Alert, Anchor, Button, Center, Divider, Group, Paper, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { AuthError, authPost, signIn, startDemo, useSessionState } from '../session';

function Card({ title, children }: { title: string; children: ReactNode }) {
  return (
    <Center mih="100vh" p="md" component="main">
      <Paper withBorder shadow="sm" p="xl" w={420} maw="100%">
        <Title order={1} size="h2" mb="lg">
          {title}
        </Title>
        {children}
      </Paper>
    </Center>
  );
}

/** Runs a form submission, keeping the API's field errors and general message. */
function useSubmit() {
  const [busy, setBusy] = useState(false);
  const [fields, setFields] = useState<Record<string, string>>({});
  const [message, setMessage] = useState<string | null>(null);
  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    setFields({});
    setMessage(null);
    try {
      await work();
    } catch (e) {
      if (e instanceof AuthError) {
        const f = Object.fromEntries(e.fields.map((x) => [x.field, x.message]));
        setFields(f);
        setMessage(e.fields.length ? null : e.message);
      } else {
        setMessage(e instanceof Error ? e.message : String(e));
      }
    } finally {
      setBusy(false);
    }
  };
  return { busy, fields, message, run };
}

const formValue = (e: FormEvent<HTMLFormElement>, name: string) =>
  String(new FormData(e.currentTarget).get(name) ?? '');

function OAuthButtons() {
  return (
    <>
      <Divider label="or" labelPosition="center" my="md" />
      <Stack gap="xs">
        <Button component="a" href="/api/v1/auth/oauth/github" variant="default" fullWidth>
          Continue with GitHub
        </Button>
        <Button component="a" href="/api/v1/auth/oauth/google" variant="default" fullWidth>
          Continue with Google
        </Button>
      </Stack>
    </>
  );
}

/** One click into a demo organization full of scored sample data (deleted after 24 hours). */
function TryDemo() {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const start = async () => {
    setBusy(true);
    setProblem(null);
    try {
      await startDemo();
    } catch (e) {
      setProblem(e instanceof AuthError ? `${e.message} [${e.code}]` : `The demo could not start: ${e instanceof Error ? e.message : String(e)}`);
      setBusy(false);
    }
  };
  return (
    <>
      <Divider label="just looking?" labelPosition="center" my="md" />
      <Stack gap="xs">
        {problem && (
          <Alert variant="outline" color="red.9" role="alert" title="No demo this time">
            {problem}
          </Alert>
        )}
        <Button variant="light" fullWidth loading={busy} onClick={start}>
          Try the demo
        </Button>
        <Text size="xs" c="dimmed" ta="center">
          A demo organization with accounts, people and 45 days of signals, scored by the real model. Deleted after 24 hours.
        </Text>
      </Stack>
    </>
  );
}

export function Login() {
  const { busy, fields, message, run } = useSubmit();
  const [params] = useSearchParams();
  const onSubmit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const email = formValue(e, 'email');
    const password = formValue(e, 'password');
    void run(async () => {
      await signIn('login', { email, password });
    });
  };
  return (
    <Card title="Sign in to DevSignal">
      <form onSubmit={onSubmit} noValidate>
        <Stack>
          {params.get('reset') && <Alert color="green">Your password was changed. Sign in with the new one.</Alert>}
          {message && (
            <Alert color="red" role="alert">
              {message}
            </Alert>
          )}
          <TextInput name="email" type="email" label="Email" autoComplete="email" required error={fields.email} data-autofocus autoFocus />
          <PasswordInput name="password" label="Password" autoComplete="current-password" required error={fields.password} />
          <Button type="submit" loading={busy}>
            Sign in
          </Button>
          <Group justify="space-between">
            <Anchor component={Link} to="/forgot-password" size="sm">
              Forgot your password?
            </Anchor>
            <Anchor component={Link} to={`/register${params.get('next') ? `?next=${encodeURIComponent(params.get('next') ?? '')}` : ''}`} size="sm">
              Create an account
            </Anchor>
          </Group>
        </Stack>
      </form>
      <OAuthButtons />
      <TryDemo />
    </Card>
  );
}

export function Register() {
  const { busy, fields, message, run } = useSubmit();
  const [params] = useSearchParams();
  const invitation = params.get('invitation');
  const onSubmit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const body = {
      name: formValue(e, 'name'),
      email: formValue(e, 'email'),
      password: formValue(e, 'password'),
      organizationName: invitation ? '' : formValue(e, 'organizationName'),
      invitationToken: invitation ?? undefined,
    };
    void run(async () => {
      await signIn('register', body);
    });
  };
  return (
    <Card title={invitation ? 'Create your account to join' : 'Create your DevSignal account'}>
      <form onSubmit={onSubmit} noValidate>
        <Stack>
          {invitation && <Alert color="blue">You were invited: your new account joins the inviting organization.</Alert>}
          {message && (
            <Alert color="red" role="alert">
              {message}
            </Alert>
          )}
          <TextInput name="name" label="Your name" autoComplete="name" required error={fields.name} autoFocus />
          <TextInput name="email" type="email" label="Work email" autoComplete="email" required error={fields.email} />
          <PasswordInput name="password" label="Password" description="At least 8 characters" autoComplete="new-password" required error={fields.password} />
          {!invitation && (
            <TextInput name="organizationName" label="Organization" autoComplete="organization" required error={fields.organizationName} />
          )}
          {fields.invitationToken && (
            <Alert color="red" role="alert">
              Invitation: {fields.invitationToken}
            </Alert>
          )}
          <Button type="submit" loading={busy}>
            Create account
          </Button>
          <Text size="sm">
            Already have an account?{' '}
            <Anchor component={Link} to={invitation ? `/login?next=${encodeURIComponent(`/invitations/accept?token=${invitation}`)}` : '/login'}>
              Sign in
            </Anchor>
          </Text>
        </Stack>
      </form>
      {!invitation && <OAuthButtons />}
    </Card>
  );
}

export function ForgotPassword() {
  const { busy, fields, message, run } = useSubmit();
  const [sent, setSent] = useState<string | null>(null);
  const onSubmit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const email = formValue(e, 'email');
    void run(async () => {
      const body = (await authPost('forgot-password', { email })) as { message: string };
      setSent(body.message);
    });
  };
  return (
    <Card title="Reset your password">
      {sent ? (
        <Stack>
          <Alert color="green" role="status">
            {sent.charAt(0).toUpperCase() + sent.slice(1)}.
          </Alert>
          <Anchor component={Link} to="/login">
            Back to sign in
          </Anchor>
        </Stack>
      ) : (
        <form onSubmit={onSubmit} noValidate>
          <Stack>
            <Text size="sm">We will email you a link to choose a new password.</Text>
            {message && (
              <Alert color="red" role="alert">
                {message}
              </Alert>
            )}
            <TextInput name="email" type="email" label="Email" autoComplete="email" required error={fields.email} autoFocus />
            <Button type="submit" loading={busy}>
              Send reset link
            </Button>
            <Anchor component={Link} to="/login" size="sm">
              Back to sign in
            </Anchor>
          </Stack>
        </form>
      )}
    </Card>
  );
}

export function ResetPassword() {
  const { busy, fields, message, run } = useSubmit();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const signedIn = useSessionState().status === 'signedIn';
  const token = params.get('token') ?? '';
  const onSubmit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const password = formValue(e, 'password');
    void run(async () => {
      await authPost('reset-password', { token, password });
      navigate(signedIn ? '/' : '/login?reset=1');
    });
  };
  return (
    <Card title="Choose a new password">
      <form onSubmit={onSubmit} noValidate>
        <Stack>
          {!token && <Alert color="red">This link has no reset token. Ask for a new link.</Alert>}
          {(message || fields.token) && (
            <Alert color="red" role="alert">
              {fields.token ? `The reset link ${fields.token}. Ask for a new one.` : message}
            </Alert>
          )}
          <PasswordInput name="password" label="New password" description="At least 8 characters" autoComplete="new-password" required error={fields.password} autoFocus />
          <Button type="submit" loading={busy} disabled={!token}>
            Set password
          </Button>
          <Anchor component={Link} to="/forgot-password" size="sm">
            Ask for a new link
          </Anchor>
        </Stack>
      </form>
    </Card>
  );
}

/** The OAuth provider redirected back here with a one-time code; trade it for a session. */
export function OAuthCallback() {
  const [params] = useSearchParams();
  const [error, setError] = useState<string | null>(null);
  const started = useRef(false);
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    const code = params.get('code');
    const problem = params.get('error');
    if (!code) {
      setError(problem ?? 'The sign-in was cancelled or the link is incomplete.');
      return;
    }
    signIn('oauth/exchange', { code }).catch((e: Error) => setError(e.message));
  }, [params]);
  return (
    <Card title="Signing you in…">
      {error ? (
        <Stack>
          <Alert color="red" role="alert">
            {error}
          </Alert>
          <Anchor component={Link} to="/login">
            Back to sign in
          </Anchor>
        </Stack>
      ) : (
        <Text>One moment.</Text>
      )}
    </Card>
  );
}
