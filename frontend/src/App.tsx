import { Component, Suspense, lazy, useEffect, useMemo, type ErrorInfo, type ReactNode } from 'react';
import { Link, NavLink, Navigate, Route, Routes, useLocation, useNavigate } from 'react-router-dom';
import { Anchor, AppShell, Badge, Burger, Button, Group, NavLink as MantineNavLink, Paper, ScrollArea, Text, Title, Kbd, UnstyledButton } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { Provider, useQuery } from 'urql';
import { graphql } from './graphql';
import { makeClient } from './client';
import { signOut, useSessionState, type Session } from './session';
import { Loading } from './ui';
import { CommandPalette, openPalette } from './CommandPalette';

const Auth = {
  Login: lazy(() => import('./pages/Auth').then((m) => ({ default: m.Login }))),
  Register: lazy(() => import('./pages/Auth').then((m) => ({ default: m.Register }))),
  Forgot: lazy(() => import('./pages/Auth').then((m) => ({ default: m.ForgotPassword }))),
  Reset: lazy(() => import('./pages/Auth').then((m) => ({ default: m.ResetPassword }))),
  OAuth: lazy(() => import('./pages/Auth').then((m) => ({ default: m.OAuthCallback }))),
  Invitation: lazy(() => import('./pages/Invitation').then((m) => ({ default: m.AcceptInvitation }))),
};
const Home = lazy(() => import('./pages/Home'));
const AccountPage = lazy(() => import('./pages/Account'));
const Contacts = lazy(() => import('./pages/Contacts'));
const ContactPage = lazy(() => import('./pages/Contact'));
const Deals = lazy(() => import('./pages/Deals'));
const Signals = lazy(() => import('./pages/Signals'));
const Onboarding = lazy(() => import('./pages/Onboarding'));
const ApiKeys = lazy(() => import('./pages/settings/ApiKeys'));
const Team = lazy(() => import('./pages/settings/Team'));
const Webhooks = lazy(() => import('./pages/settings/Webhooks'));
const Integrations = lazy(() => import('./pages/settings/Integrations'));
const Scoring = lazy(() => import('./pages/settings/Scoring'));
const Audit = lazy(() => import('./pages/settings/Audit'));
const Usage = lazy(() => import('./pages/settings/Usage'));
const Data = lazy(() => import('./pages/settings/Data'));

/** Pages anyone can open; the invitation and password pages work signed in or out. */
function PublicRoutes() {
  return (
    <Routes>
      <Route path="/login" element={<Auth.Login />} />
      <Route path="/register" element={<Auth.Register />} />
      <Route path="/forgot-password" element={<Auth.Forgot />} />
      <Route path="/reset-password" element={<Auth.Reset />} />
      <Route path="/oauth/callback" element={<Auth.OAuth />} />
      <Route path="/invitations/accept" element={<Auth.Invitation />} />
      <Route path="*" element={<RedirectToLogin />} />
    </Routes>
  );
}

function RedirectToLogin() {
  const loc = useLocation();
  const next = loc.pathname === '/' ? '' : `?next=${encodeURIComponent(loc.pathname + loc.search)}`;
  return <Navigate to={`/login${next}`} replace />;
}

export function App() {
  const state = useSessionState();
  if (state.status === 'loading') return <Loading />;
  return (
    <Suspense fallback={<Loading />}>
      {state.status === 'signedIn' ? <SignedIn session={state.session} /> : <PublicRoutes />}
    </Suspense>
  );
}

const NAV: { to: string; label: string }[] = [
  { to: '/', label: 'Accounts' },
  { to: '/contacts', label: 'Contacts' },
  { to: '/deals', label: 'Deals' },
  { to: '/signals', label: 'Signals' },
  { to: '/onboarding', label: 'Get started' },
];
const SETTINGS: { to: string; label: string }[] = [
  { to: '/settings/integrations', label: 'Integrations' },
  { to: '/settings/api-keys', label: 'API keys' },
  { to: '/settings/webhooks', label: 'Webhooks' },
  { to: '/settings/team', label: 'Team' },
  { to: '/settings/scoring', label: 'Scoring' },
  { to: '/settings/audit', label: 'Audit log' },
  { to: '/settings/usage', label: 'Plan and usage' },
  { to: '/settings/data', label: 'Import and export' },
];

function SignedIn({ session }: { session: Session }) {
  // A new client per user and organization: nothing cached crosses sessions.
  const { client, dispose } = useMemo(makeClient, [session.user.id, session.organization.id]);
  useEffect(() => dispose, [dispose]);
  const [opened, { toggle, close }] = useDisclosure();
  const loc = useLocation();
  const navigate = useNavigate();
  useEffect(close, [loc.pathname, close]);
  const authPath = ['/login', '/register', '/oauth/callback'].includes(loc.pathname);
  if (authPath) {
    const next = new URLSearchParams(loc.search).get('next');
    return <Navigate to={next && next.startsWith('/') ? next : '/'} replace />;
  }
  const link = (item: { to: string; label: string }) => (
    <MantineNavLink
      key={item.to}
      component={NavLink}
      to={item.to}
      end={item.to === '/'}
      label={item.label}
      active={item.to === '/' ? loc.pathname === '/' || loc.pathname.startsWith('/accounts') : loc.pathname.startsWith(item.to)}
    />
  );
  return (
    <Provider value={client}>
      <CommandPalette />
      <AppShell header={{ height: 56 }} navbar={{ width: 220, breakpoint: 'sm', collapsed: { mobile: !opened } }} padding="md">
        <AppShell.Header>
          <Group h="100%" px="md" justify="space-between" wrap="nowrap">
            <Group gap="sm" wrap="nowrap">
              <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
              <Title order={1} size="h4">
                <Link to="/" style={{ color: 'inherit', textDecoration: 'none' }}>
                  DevSignal
                </Link>
              </Title>
              <Text size="sm" c="dimmed" visibleFrom="sm">
                {session.organization.name}
              </Text>
            </Group>
            <Group gap="sm" wrap="nowrap">
              <UnstyledButton onClick={openPalette} aria-label="Search (Ctrl+K)" visibleFrom="xs">
                <Group gap={6} px="sm" py={4} style={{ border: '1px solid var(--mantine-color-gray-4)', borderRadius: 8 }}>
                  <Text size="sm" c="dimmed">
                    Search…
                  </Text>
                  <Kbd size="xs">Ctrl K</Kbd>
                </Group>
              </UnstyledButton>
              <Text size="sm" visibleFrom="md">
                {session.user.name}
              </Text>
              <Badge variant="light" aria-label={`Your role: ${session.role}`}>
                {session.role}
              </Badge>
              <Button
                variant="subtle"
                size="xs"
                onClick={async () => {
                  await signOut();
                  navigate('/login');
                }}
              >
                Sign out
              </Button>
            </Group>
          </Group>
        </AppShell.Header>
        <AppShell.Navbar p="xs" aria-label="Main">
          <ScrollArea>
            {NAV.map(link)}
            <Text size="xs" c="dimmed" fw={700} mt="md" mb={4} px="sm" tt="uppercase">
              Settings
            </Text>
            {SETTINGS.map(link)}
            <MantineNavLink component="a" href="/graphiql" label="GraphiQL" />
          </ScrollArea>
        </AppShell.Navbar>
        <AppShell.Main>
          <DemoBanner admin={session.role === 'OWNER' || session.role === 'ADMIN'} />
          <PageBoundary key={loc.pathname}>
          <Suspense fallback={<Loading />}>
            <Routes>
              <Route path="/" element={<Home />} />
              <Route path="/accounts/:id" element={<AccountPage />} />
              <Route path="/contacts" element={<Contacts />} />
              <Route path="/contacts/:id" element={<ContactPage />} />
              <Route path="/deals" element={<Deals />} />
              <Route path="/signals" element={<Signals />} />
              <Route path="/onboarding" element={<Onboarding />} />
              <Route path="/settings" element={<Navigate to="/settings/api-keys" replace />} />
              <Route path="/settings/api-keys" element={<ApiKeys />} />
              <Route path="/settings/team" element={<Team />} />
              <Route path="/settings/webhooks" element={<Webhooks />} />
              <Route path="/settings/integrations" element={<Integrations />} />
              <Route path="/settings/scoring" element={<Scoring />} />
              <Route path="/settings/audit" element={<Audit />} />
              <Route path="/settings/usage" element={<Usage />} />
              <Route path="/settings/data" element={<Data />} />
              <Route path="/invitations/accept" element={<Auth.Invitation />} />
              <Route path="/reset-password" element={<Auth.Reset />} />
              <Route path="/forgot-password" element={<Auth.Forgot />} />
              <Route path="*" element={<NotFound />} />
            </Routes>
          </Suspense>
          </PageBoundary>
        </AppShell.Main>
      </AppShell>
    </Provider>
  );
}

const DemoState = graphql(`
  query DemoOrganization {
    demoData { demoOrganization }
  }
`);

/** A demo organization (`POST /api/v1/demo/seed`) says so on every page (`demoData` is ADMIN). */
function DemoBanner({ admin }: { admin: boolean }) {
  const [{ data }] = useQuery({ query: DemoState, pause: !admin });
  if (!data?.demoData.demoOrganization) return null;
  return (
    <Paper withBorder p="sm" mb="md" role="note" aria-label="Demo organization" style={{ background: 'var(--mantine-color-yellow-0)' }}>
      <Text fw={700} size="sm">
        Demo organization — deleted 24 h after it was made
      </Text>
      <Text size="sm">
        Everything here is sample data, scored by the real model. Explore freely; to keep your own data,{' '}
        <Anchor href="/register" onClick={(e) => { e.preventDefault(); void signOut().then(() => window.location.assign('/register')); }}>
          create an account
        </Anchor>
        .
      </Text>
    </Paper>
  );
}

/** A page that throws shows what happened instead of a blank screen; the rest stays usable. */
class PageBoundary extends Component<{ children: ReactNode }, { error: Error | null }> {
  state = { error: null as Error | null };
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  componentDidCatch(error: Error, info: ErrorInfo) {
    console.warn('page failed', error, info.componentStack);
  }
  render() {
    if (!this.state.error) return this.props.children;
    return (
      <div role="alert">
        <Title order={2}>This page could not be shown</Title>
        <Text mt="sm">{this.state.error.message}</Text>
        <Text mt="sm">
          <Link to="/">Go to the accounts</Link> or reload the page.
        </Text>
      </div>
    );
  }
}

function NotFound(): ReactNode {
  return (
    <div>
      <Title order={2}>Page not found</Title>
      <Text mt="sm">
        There is nothing at this address. <Link to="/">Go to the accounts</Link>.
      </Text>
    </div>
  );
}
