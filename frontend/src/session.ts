// The browser session. The refresh token lives in an httpOnly cookie that only
// `/api/v1/auth/*` sees (the server sets it because every call here sends `X-Session-Cookie: 1`);
// the access token lives in this module's memory and is refreshed a minute before it expires.
import { useSyncExternalStore } from 'react';

export type Role = 'OWNER' | 'ADMIN' | 'MEMBER' | 'VIEWER';

export interface Session {
  accessToken: string;
  expiresIn: number;
  user: { id: string; email: string; name: string };
  organization: { id: string; name: string };
  role: Role;
}

export interface FieldError {
  field: string;
  message: string;
}

export class AuthError extends Error {
  code: string;
  fields: FieldError[];
  constructor(code: string, message: string, fields: FieldError[] = []) {
    super(message);
    this.code = code;
    this.fields = fields;
  }
}

type State = { status: 'loading' } | { status: 'signedOut' } | { status: 'signedIn'; session: Session };

let state: State = { status: 'loading' };
const listeners = new Set<() => void>();
let timer: number | undefined;
let refreshing: Promise<Session | null> | null = null;

function set(next: State) {
  state = next;
  listeners.forEach((l) => l());
}

export function markSignedOut() {
  set({ status: 'signedOut' });
}

export function accessToken(): string | null {
  return state.status === 'signedIn' ? state.session.accessToken : null;
}

export function currentSession(): Session | null {
  return state.status === 'signedIn' ? state.session : null;
}

export function useSessionState(): State {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => state,
  );
}

async function post(path: string, body: unknown, token?: string): Promise<Response> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-session-cookie': '1',
  };
  if (token) headers.authorization = `Bearer ${token}`;
  return fetch(`/api/v1/auth/${path}`, {
    method: 'POST',
    headers,
    credentials: 'same-origin',
    body: JSON.stringify(body ?? {}),
  });
}

async function errorOf(res: Response): Promise<AuthError> {
  try {
    const body = await res.json();
    const e = body.error ?? {};
    return new AuthError(e.code ?? 'ERROR', e.message ?? res.statusText, e.fields ?? []);
  } catch {
    return new AuthError('ERROR', `${res.status} ${res.statusText}`);
  }
}

function adopt(body: Session) {
  const session: Session = {
    accessToken: body.accessToken,
    expiresIn: body.expiresIn,
    user: body.user,
    organization: body.organization,
    role: body.role,
  };
  window.clearTimeout(timer);
  const wait = Math.max(10, session.expiresIn - 60) * 1000;
  timer = window.setTimeout(() => void refresh(), wait);
  set({ status: 'signedIn', session });
  return session;
}

/** Calls a sign-in endpoint (`login`, `register`, `oauth/exchange`) and adopts its session. */
export async function signIn(path: string, body: unknown): Promise<Session> {
  const res = await post(path, body);
  if (!res.ok) throw await errorOf(res);
  return adopt(await res.json());
}


/**
 * Every tab of this browser shares the refresh cookie, and the server revokes a session whose
 * refresh token is used twice. Tabs therefore trade it one at a time under a Web Lock: a tab that
 * waits sends the cookie the previous one received (set before its response resolves). Without
 * Web Locks (an insecure origin, where the Secure cookie does not work anyway) it goes unlocked.
 */
function exclusively<T>(fn: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
  return locks ? (locks.request('devsignal-session-refresh', fn) as Promise<T>) : fn();
}

/** Trades the cookie for a new access token; signs out when the cookie is gone or revoked. */
export function refresh(): Promise<Session | null> {
  refreshing ??= (async () => {
    try {
      const res = await exclusively(() => post('refresh', {}));
      if (!res.ok) {
        window.clearTimeout(timer);
        set({ status: 'signedOut' });
        return null;
      }
      return adopt(await res.json());
    } catch {
      set({ status: 'signedOut' });
      return null;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export async function signOut() {
  const token = accessToken();
  window.clearTimeout(timer);
  try {
    await post('logout', {}, token ?? undefined);
  } finally {
    set({ status: 'signedOut' });
  }
}

export async function authPost(path: string, body: unknown): Promise<unknown> {
  const res = await post(path, body);
  if (!res.ok) throw await errorOf(res);
  return res.json();
}

/**
 * Takes over a session that a GraphQL mutation answered (`acceptInvitation`,
 * `switchOrganization`): its refresh token is traded at once through the cookie endpoint, so it
 * ends up in the httpOnly cookie and nowhere in this page's memory.
 */
export async function adoptRefreshToken(refreshToken: string): Promise<Session> {
  const res = await exclusively(() => post('refresh', { refreshToken }));
  if (!res.ok) throw await errorOf(res);
  return adopt(await res.json());
}

/**
 * Starts a demo organization (`POST /api/v1/demo/seed`, no credentials; the server's `demo`
 * limiter allows a few a minute per address) and signs in to it. The answer's refresh token is
 * traded at once through the cookie endpoint, like an accepted invitation's.
 */
export async function startDemo(): Promise<Session> {
  const res = await fetch('/api/v1/demo/seed', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    credentials: 'same-origin',
    body: '{}',
  });
  if (!res.ok) {
    const e = await errorOf(res);
    if (res.status === 429) {
      const wait = Number(res.headers.get('retry-after'));
      e.message = `Too many demos were started from your network in the last minute${
        Number.isFinite(wait) && wait > 0 ? `; try again in ${wait} s` : '; try again in a minute'
      }. (${e.message})`;
    }
    throw e;
  }
  const body = (await res.json()) as { refreshToken: string };
  return adoptRefreshToken(body.refreshToken);
}
