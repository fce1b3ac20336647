// A local stand-in for the outside services connectors read, so the e2e suite never reaches the
// internet: the npm downloads API (`/npm-downloads/downloads/range/{start}:{end}/{package}`) and
// the npm registry (`/npm-registry/{package}`) answer for the packages in PACKAGES; everything
// else (other packages, PyPI, GitHub) answers 404 like an unknown package. Listens on a free
// port of 127.0.0.1 and prints its base URL on the first line of stdout. `GET /__hits` lists the
// paths requested so far (JSON), for the suite to check what the server fetched.
//
// Under `/github-oauth` it is also a GitHub OAuth provider for sign-in: `authorize` sends the
// browser straight back to the server's callback with a code (as if the user approved), the
// token endpoint checks that code and the PKCE verifier against the challenge it was given, and
// `/user` and `/user/emails` answer for that token.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

const OAUTH = { code: 'e2e-oauth-code', token: 'e2e-provider-token', challenge: null };
const OAUTH_USER = { id: 90210, login: 'e2e-octo', name: 'Octo E2E' };
const OAUTH_EMAIL = 'octo-e2e@example.com';

const PACKAGES = new Map([
  ['acme-cli', { latest: '1.4.0', maintainers: ['olive'], perDay: 120 }],
  ['@acme/sdk', { latest: '0.9.1', maintainers: ['olive', 'bob'], perDay: 40 }],
]);
const hits = [];

function days(start, end, perDay) {
  const out = [];
  for (let d = new Date(`${start}T00:00:00Z`); d <= new Date(`${end}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + 1)) {
    out.push({ day: d.toISOString().slice(0, 10), downloads: perDay + (d.getUTCDate() % 7) });
  }
  return out;
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function readBody(req) {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(body));
  });
}

async function oauth(req, res, path, url) {
  if (path === '/github-oauth/login/oauth/authorize') {
    const q = url.searchParams;
    OAUTH.challenge = q.get('code_challenge_method') === 'S256' ? q.get('code_challenge') : null;
    const back = new URL(q.get('redirect_uri'));
    back.searchParams.set('code', OAUTH.code);
    back.searchParams.set('state', q.get('state'));
    res.writeHead(302, { location: back.toString() });
    return res.end();
  }
  if (path === '/github-oauth/login/oauth/access_token' && req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    const verifier = form.get('code_verifier') ?? '';
    const computed = createHash('sha256').update(verifier).digest('base64url');
    if (form.get('code') !== OAUTH.code || !OAUTH.challenge || computed !== OAUTH.challenge) {
      return json(res, 400, { error: 'invalid_grant' });
    }
    OAUTH.challenge = null; // one exchange per authorization
    return json(res, 200, { access_token: OAUTH.token, token_type: 'bearer', scope: 'user:email' });
  }
  if (req.headers.authorization !== `Bearer ${OAUTH.token}`) {
    return json(res, 401, { message: 'Bad credentials' });
  }
  if (path === '/github-oauth/user') return json(res, 200, OAUTH_USER);
  if (path === '/github-oauth/user/emails') {
    return json(res, 200, [{ email: OAUTH_EMAIL, primary: true, verified: true }]);
  }
  return json(res, 404, { message: 'Not Found' });
}

// Under `/hubspot`: HubSpot's consent page (consents at once), its token endpoint (code with the
// PKCE verifier), and just enough of the CRM API for one sync: DevSignal's property group and
// properties already there, one company to pull, batch writes echoed.
const HUBSPOT = { code: 'e2e-hubspot-code', token: 'e2e-hubspot-token', challenge: null };
const HUBSPOT_PROPS = ['devsignal_score', 'devsignal_tier', 'devsignal_trend', 'devsignal_signal_count', 'devsignal_top_signal_type', 'devsignal_last_signal_at'];

async function hubspot(req, res, path, url) {
  if (path === '/hubspot/oauth/authorize') {
    const q = url.searchParams;
    HUBSPOT.challenge = q.get('code_challenge_method') === 'S256' ? q.get('code_challenge') : null;
    const back = new URL(q.get('redirect_uri'));
    back.searchParams.set('code', HUBSPOT.code);
    back.searchParams.set('state', q.get('state'));
    res.writeHead(302, { location: back.toString() });
    return res.end();
  }
  if (path === '/hubspot/oauth/v1/token' && req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    const computed = createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url');
    if (form.get('code') !== HUBSPOT.code || !HUBSPOT.challenge || computed !== HUBSPOT.challenge) {
      return json(res, 400, { status: 'BAD_AUTH_CODE', message: 'missing or unknown auth code' });
    }
    HUBSPOT.challenge = null;
    return json(res, 200, { access_token: HUBSPOT.token, refresh_token: 'e2e-hubspot-refresh', expires_in: 1800, token_type: 'bearer' });
  }
  if (req.headers.authorization !== `Bearer ${HUBSPOT.token}`) {
    return json(res, 401, { status: 'error', category: 'EXPIRED_AUTHENTICATION', message: 'Authentication credentials not found.' });
  }
  const body = req.method === 'POST' ? JSON.parse((await readBody(req)) || '{}') : {};
  if (/^\/hubspot\/crm\/v3\/properties\/\w+\/groups$/.test(path)) return json(res, 200, { results: [{ name: 'devsignal', label: 'DevSignal' }] });
  if (/^\/hubspot\/crm\/v3\/properties\/\w+$/.test(path)) return json(res, 200, { results: HUBSPOT_PROPS.map((name) => ({ name })) });
  if (path === '/hubspot/crm/v3/objects/companies/search' && !body.filterGroups?.[0]?.filters?.some((f) => f.operator === 'IN')) {
    const now = new Date().toISOString();
    return json(res, 200, { total: 1, results: [{ id: '501', properties: { name: 'Hooli (HubSpot)', domain: 'hooli-e2e.io', hs_lastmodifieddate: now }, updatedAt: now }] });
  }
  if (/^\/hubspot\/crm\/v3\/objects\/\w+\/search$/.test(path)) return json(res, 200, { total: 0, results: [] });
  if (/^\/hubspot\/crm\/v3\/objects\/\w+\/batch\/(create|update)$/.test(path)) {
    let n = 900;
    const results = (body.inputs ?? []).map((i) => ({ id: i.id ?? String(n++), properties: i.properties ?? {} }));
    return json(res, path.endsWith('create') ? 201 : 200, { status: 'COMPLETE', results });
  }
  if (path === '/hubspot/crm/v4/associations/deals/companies/batch/read') return json(res, 200, { status: 'COMPLETE', results: [] });
  return json(res, 404, { status: 'error', category: 'OBJECT_NOT_FOUND', message: 'resource not found' });
}

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const path = decodeURIComponent(url.pathname);
  if (path === '/__hits') return json(res, 200, hits);
  hits.push(path);
  if (path.startsWith('/hubspot/')) {
    hubspot(req, res, path, url).catch((e) => json(res, 500, { message: String(e) }));
    return;
  }
  if (path.startsWith('/github-oauth/')) {
    oauth(req, res, path, url).catch((e) => json(res, 500, { message: String(e) }));
    return;
  }
  let m = path.match(/^\/npm-downloads\/downloads\/range\/(\d{4}-\d{2}-\d{2}):(\d{4}-\d{2}-\d{2})\/(.+)$/);
  if (m) {
    const pkg = PACKAGES.get(m[3]);
    if (!pkg) return json(res, 404, { error: `package ${m[3]} not found` });
    return json(res, 200, { start: m[1], end: m[2], package: m[3], downloads: days(m[1], m[2], pkg.perDay) });
  }
  m = path.match(/^\/npm-registry\/(.+)$/);
  if (m) {
    const pkg = PACKAGES.get(m[1]);
    if (!pkg) return json(res, 404, { error: 'Not found' });
    return json(res, 200, {
      name: m[1],
      'dist-tags': { latest: pkg.latest },
      maintainers: pkg.maintainers.map((name) => ({ name, email: `${name}@acme.io` })),
    });
  }
  return json(res, 404, { message: 'Not Found' });
});
server.listen(0, '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
