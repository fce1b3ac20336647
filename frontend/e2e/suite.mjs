// The dashboard's end-to-end suite: headless Chromium (Debian's /usr/bin/chromium) driven by
// playwright-core against a running `devsignal serve` at BASE_URL, with its DATA_DIR (for the
// emails the server writes as .eml files). Run through run.sh, which starts the server.
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import { readFileSync, readdirSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const base = process.env.BASE_URL;
const fakeSources = process.env.FAKE_SOURCES_URL;
const dataDir = process.env.DATA_DIR;
const out = process.env.RESULTS_DIR ?? 'test-results';
mkdirSync(out, { recursive: true });
const PASSWORD = 'correct horse battery';
const stamp = Date.now().toString(36);
const ownerEmail = `owner-${stamp}@acme.io`;

const consoleErrors = [];
const openPages = [];
const results = [];
const state = {};
let browser;

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function eventually(what, fn, timeout = 30000) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** A fresh browser context (its own cookies) and page, with console errors collected. */
async function newPage(label, { expectHttpErrors = false, context: shared } = {}) {
  const context = shared ?? (await browser.newContext({ viewport: { width: 1366, height: 900 }, baseURL: base }));
  // Layout shifts not caused by input, summed per document (CLS as the browser reports it).
  if (!shared) await context.addInitScript(() => {
    window.__cls = 0;
    window.__shifts = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.hadRecentInput) continue;
        window.__cls += e.value;
        window.__shifts.push({ value: e.value, nodes: (e.sources ?? []).map((s) => s.node?.nodeName + (s.node?.className ? `.${String(s.node.className).split(' ')[0]}` : '')) });
      }
    }).observe({ type: 'layout-shift', buffered: true });
  });
  const page = await context.newPage();
  openPages.push(page);
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (expectHttpErrors && m.text().startsWith('Failed to load resource')) return;
    consoleErrors.push(`${label}: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`${label}: ${e.message}`));
  return page;
}

async function settled(page) {
  await page.waitForLoadState('networkidle');
  await eventually('loaders to finish', async () => (await page.locator('[aria-busy="true"]').count()) === 0, 15000);
}

async function shot(page, name) {
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
}

/** axe on the page, or only on the part `include` selects (a dialog over a dimmed page). */
async function axe(page, name, include) {
  const builder = new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']);
  const r = await (include ? builder.include(include) : builder).analyze();
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(bad.length === 0, `axe on ${name}: ${bad.map((v) => `${v.id} (${v.impact}) at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`).join('; ')}`);
}

async function gql(token, query, variables = {}) {
  const res = await fetch(`${base}/api/v1/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

async function apiLogin(email, password) {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  check(res.ok, `login ${email}: ${res.status}`);
  return (await res.json()).accessToken;
}

/** The first link to `path` in the newest email to `to` (quoted-printable decoded). */
async function mailedLink(to, path) {
  return eventually(`an email to ${to}`, async () => {
    const dir = join(dataDir, 'mail');
    let files = [];
    try {
      files = readdirSync(dir).sort().reverse();
    } catch {
      return null;
    }
    for (const f of files) {
      const raw = readFileSync(join(dir, f), 'utf8');
      const text = raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
      if (!text.split(/\r?\n/).some((l) => l.startsWith('To:') && l.includes(to))) continue;
      const m = text.match(new RegExp(`https?://[^\\s]+${path.replace(/[?]/g, '\\?')}[^\\s]+`));
      if (m) return m[0];
    }
    return null;
  }, 10000);
}

async function signUp(page, { name, email, org }) {
  await page.goto('/register');
  await page.locator('input[name=name]').fill(name);
  await page.locator('input[name=email]').fill(email);
  await page.locator('input[name=password]').fill(PASSWORD);
  if (org) await page.locator('input[name=organizationName]').fill(org);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Product-qualified accounts' }).waitFor();
}

async function ownerToken() {
  state.ownerToken ??= await apiLogin(ownerEmail, PASSWORD);
  return state.ownerToken;
}

async function gqlOk(token, query, variables = {}) {
  const r = await gql(token, query, variables);
  check(!r.errors, JSON.stringify(r.errors));
  return r.data;
}

async function ingest(key, signal) {
  const res = await fetch(`${base}/api/v1/signals`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(signal),
  });
  check(res.status === 201 || res.status === 200, `ingest: ${res.status} ${await res.text()}`);
}

const tests = [
  ['sign up, create an API key, ingest signals: the account appears scored live; its factors read', async () => {
    const page = await newPage('owner');
    state.owner = page;
    await signUp(page, { name: 'Olive Owner', email: ownerEmail, org: 'Signal Labs' });
    await settled(page);
    await page.getByText('No accounts yet').waitFor();
    await shot(page, 'home-empty');

    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('button', { name: 'Create API key' }).click();
    await page.locator('input[name=name]').fill('e2e backend');
    await page.getByRole('checkbox', { name: /accounts:read/ }).check();
    await page.getByRole('button', { name: 'Create key' }).click();
    const keyBlock = page.locator('pre', { hasText: /^dsk_/ }).first();
    await keyBlock.waitFor();
    state.key = (await keyBlock.innerText()).trim();
    check(state.key.startsWith('dsk_'), `key: ${state.key}`);
    check(await page.getByText(`Authorization: Bearer ${state.key}`).count() > 0, 'the curl snippet names the key');
    check(await page.getByText(`writeKey: '${state.key}'`).count() > 0, 'the Segment snippet names the key');
    await shot(page, 'api-key-created');
    await page.keyboard.press('Escape');

    // A reload restores the session from the httpOnly cookie (no token in storage).
    const ws = page.waitForEvent('websocket');
    await page.goto('/');
    await page.getByRole('heading', { name: 'Product-qualified accounts' }).waitFor();
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    check(!stored.includes('dsk_') && !/eyJ/.test(stored), `tokens leaked into script-readable storage: ${stored}`);
    await settled(page);
    await ws;
    await page.evaluate(() => (window.__noReload = true));

    for (const [who, type, extra] of [
      ['jane', 'repo_star', { github: 'janedev' }],
      ['jane', 'package_install', {}],
      ['bob', 'docs_view', {}],
      ['carol', 'api_call', {}],
    ]) {
      await ingest(state.key, { type, actor: { email: `${who}@acme.io`, ...extra }, metadata: { repo: 'cli' } });
    }
    await page.getByRole('log').getByText('repo_star').first().waitFor({ timeout: 20000 });
    const row = page.locator('table[aria-label="Accounts ranked by score"] tr', { hasText: 'acme.io' }).first();
    await row.waitFor({ timeout: 30000 });
    // The score of all four signals (a rescore may land between them: wait for the last one).
    const score = await eventually('a score of the four signals in the row', async () => {
      const t = (await row.locator('td').nth(1).innerText()).trim();
      const signals = (await row.locator('td').nth(4).innerText()).trim();
      return /^\d+$/.test(t) && signals === '4' ? Number(t) : null;
    });
    check(await page.evaluate(() => window.__noReload === true), 'the page reloaded');
    await settled(page);
    await shot(page, 'home-live');

    await row.getByRole('link').first().click();
    await page.getByRole('heading', { name: 'Score factors' }).waitFor();
    state.accountUrl = new URL(page.url()).pathname;
    const shown = Number((await page.getByTestId('account-score').innerText()).trim());
    check(shown === score, `the account page shows ${shown}, the list ${score}`);
    const factors = page.getByTestId('factor');
    await eventually('factors', async () => (await factors.count()) > 0);
    const text = await page.locator('[aria-label="Score factors"]').innerText();
    check(/pts/.test(text), `factors without points: ${text}`);
    // A new organization scores with the calibrated model (docs/scoring.md).
    check(/people/i.test(text) && /active days/i.test(text) && /recent activity/i.test(text), `factor names missing: ${text}`);
    await page.getByText('repo_star').first().waitFor();
    await settled(page);
    await shot(page, 'account');
  }],

  ['score history: the nightly snapshot shows on the account page as a daily line', async () => {
    const page = state.owner;
    const summary = page.getByTestId('history-summary');
    check(/first nightly snapshot/.test(await summary.innerText()), `before any snapshot: ${await summary.innerText()}`);
    const token = await ownerToken();
    const { triggerJob } = await gqlOk(token, 'mutation { triggerJob(name: "capture-score-snapshot") { id } }');
    await eventually('the nightly job to complete', async () => {
      const d = await gqlOk(token, '{ jobs(first: 50) { edges { node { id state lastError } } } }');
      const job = d.jobs.edges.find((e) => e.node.id === triggerJob.id);
      check(job?.node.state !== 'failed', `the job failed: ${job?.node.lastError}`);
      return job?.node.state === 'completed';
    });
    await page.reload();
    await page.getByRole('img', { name: /Daily score over 1 captured days/ }).waitFor();
    const score = (await page.getByTestId('account-score').innerText()).trim();
    const text = await summary.innerText();
    const today = new Date().toISOString().slice(0, 10);
    check(text.includes(`1 day captured, from ${today} (${score})`), `history summary: ${text} (score ${score})`);
    await settled(page);
    await shot(page, 'account-history');
  }],

  ['account actions: log an activity, tag, open a deal and drag it on the board', async () => {
    const page = state.owner;
    await page.getByRole('button', { name: 'Log activity' }).click();
    await page.locator('input[name=title]').fill('Intro call booked');
    await page.getByRole('button', { name: 'Save activity' }).click();
    await page.getByText('Intro call booked').first().waitFor();
    await page.getByRole('button', { name: 'Tags' }).click();
    const tags = page.getByRole('combobox', { name: 'Tags' });
    await tags.fill('pilot');
    await tags.press('Enter');
    await page.getByRole('button', { name: 'Save tags' }).click();
    await page.locator('.mantine-Badge-root', { hasText: 'pilot' }).first().waitFor();
    await page.getByRole('button', { name: 'New deal' }).click();
    await page.locator('input[name=title]').fill('Acme pilot');
    await page.getByRole('button', { name: 'Create deal' }).click();
    await page.getByRole('link', { name: 'Acme pilot' }).waitFor();

    await page.getByRole('link', { name: 'Deals' }).first().click();
    const card = page.locator('[data-deal="Acme pilot"]');
    await card.waitFor();
    check((await card.locator('xpath=ancestor::*[@data-stage][1]').getAttribute('data-stage')) === 'IDENTIFIED', 'the deal starts in Identified');
    await card.dragTo(page.locator('[data-stage="ACTIVATED"]'));
    await eventually('the deal in Activated', async () => (await page.locator('[data-stage="ACTIVATED"] [data-deal="Acme pilot"]').count()) === 1);
    await page.reload();
    await page.locator('[data-stage="ACTIVATED"] [data-deal="Acme pilot"]').waitFor();
    await settled(page);
    await shot(page, 'deals');
  }],

  ['home filters accounts by the source of their signals', async () => {
    const token = await ownerToken();
    const docs = (await gqlOk(token, 'mutation { createSignalSource(input: {kind: "CUSTOM_WEBHOOK", name: "Docs site"}) { id } }')).createSignalSource.id;
    await gqlOk(token, 'mutation($input: SignalInput!) { ingestSignal(input: $input) { signal { id } } }', {
      input: { type: 'docs_view', sourceId: docs, actor: { email: 'dana@globex.com' } },
    });
    const api = (await gqlOk(token, '{ signalSources { name builtIn kind } }')).signalSources.find((s) => s.builtIn && s.kind !== 'SEGMENT');
    check(api, 'a built-in API source');
    const page = state.owner;
    await page.goto('/');
    const table = page.locator('table[aria-label="Accounts ranked by score"]');
    await table.locator('tr', { hasText: 'globex.com' }).waitFor();
    await table.locator('tr', { hasText: 'acme.io' }).waitFor();
    const source = page.getByRole('combobox', { name: 'Source' });
    await source.selectOption({ label: 'Docs site' });
    await eventually('only the Docs site account', async () => {
      const t = await table.innerText();
      return t.includes('globex.com') && !t.includes('acme.io');
    });
    await source.selectOption({ label: api.name });
    await eventually('only the API account', async () => {
      const t = await table.innerText();
      return t.includes('acme.io') && !t.includes('globex.com');
    });
    await settled(page);
    await shot(page, 'home-by-source');
    await source.selectOption({ label: 'All sources' });
    await table.locator('tr', { hasText: 'globex.com' }).waitFor();
  }],

  ['account page: add the account to an existing deal', async () => {
    await gqlOk(await ownerToken(), 'mutation { createDeal(input: {title: "Platform expansion", stage: SALES_QUALIFIED}) { id } }');
    const page = state.owner;
    await page.goto(state.accountUrl);
    await page.getByRole('heading', { name: 'Score factors' }).waitFor();
    check((await page.getByRole('link', { name: 'Platform expansion' }).count()) === 0, 'the deal is not on the account yet');
    await page.getByRole('button', { name: 'Add to deal' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add to an existing deal' });
    const deal = dialog.getByLabel('Deal', { exact: true });
    await deal.fill('Platform');
    await page.getByRole('option', { name: 'Platform expansion' }).click();
    await dialog.getByText('It has no account yet.', { exact: false }).waitFor();
    await dialog.getByRole('button', { name: 'Add to deal' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('link', { name: 'Platform expansion' }).waitFor();
    await page.goto('/deals');
    await page.locator('[data-deal="Platform expansion"]', { hasText: /acme/i }).waitFor();
  }],

  ['contacts: a merge suggestion shows its evidence; merge, then undo', async () => {
    await gqlOk(await ownerToken(), 'mutation { createContact(input: {email: "j.dev@acme.io", github: "JaneDev"}) { id } }');
    const page = state.owner;
    await page.goto('/contacts');
    await page.getByRole('tab', { name: 'Merge suggestions' }).click();
    const card = page.locator('.mantine-Card-root', { hasText: 'j.dev@acme.io' });
    await card.waitFor();
    const text = await card.innerText();
    check(/github: janedev/i.test(text), `the suggestion shows the evidence: ${text}`);
    const button = card.getByRole('button', { name: /^Merge into / });
    const primary = (await button.innerText()).replace(/^Merge into /, '').trim();
    check(primary !== 'j.dev@acme.io' && text.includes(primary), `the older contact is kept: ${primary}`);
    await settled(page);
    await shot(page, 'merge-suggestion');
    await button.click();
    const status = page.getByRole('status').filter({ hasText: `merged into ${primary}` });
    await status.waitFor();
    await eventually('the suggestion gone', async () => (await card.count()) === 0);
    const left = (await gqlOk(await ownerToken(), '{ contacts(first: 10, filter: {query: "j.dev"}) { totalCount } }')).contacts.totalCount;
    check(left === 0, `the duplicate is gone after the merge: ${left}`);

    await status.getByRole('button', { name: 'Undo merge' }).click();
    await page.getByRole('status').filter({ hasText: 'is a contact of its own again' }).waitFor();
    await card.filter({ hasText: 'merged and undone before' }).waitFor();
    await page.getByRole('link', { name: `Open ${primary}` }).click();
    const mergesCard = page.locator('.mantine-Card-root', { hasText: 'Merges' });
    await mergesCard.getByText('undone', { exact: true }).waitFor();
    check(/github: janedev/i.test(await mergesCard.innerText()), 'the merge lists its evidence');
    await page.goto('/contacts');
    await page.getByLabel('Search contacts').fill('j.dev');
    await page.getByRole('link', { name: 'j.dev@acme.io' }).waitFor();
  }],

  ['scoring settings preview which accounts change tier before saving', async () => {
    const page = state.owner;
    await page.goto('/settings/scoring');
    // Calibrated: Acme's four signals from three people on one day score 49, COLD (Globex's one
    // signal 26, COLD). Under the classic model one day of activity maxes out velocity, recency
    // and freshness: Acme 74 and Globex 57, both WARM.
    const model = page.getByRole('radiogroup', { name: 'Model' });
    check((await model.getByRole('radio', { name: 'Calibrated' }).isChecked()), 'a new organization scores calibrated');
    await model.locator('label', { hasText: /^Classic$/ }).click();
    await page.getByText('Saving switches to the classic model').waitFor();
    await page.getByRole('button', { name: 'Preview changes' }).click();
    const table = page.getByRole('table', { name: 'Tier changes' });
    await table.waitFor();
    const row = table.locator('tr', { hasText: 'Acme' });
    await row.waitFor();
    check(/49[\s\S]*COLD[\s\S]*74[\s\S]*WARM/.test(await row.innerText()), `Acme should go from 49 COLD to 74 WARM: ${await row.innerText()}`);
    await shot(page, 'scoring-preview');
    // Back to calibrated, unsaved: a higher cold threshold would make Globex inactive.
    await model.locator('label', { hasText: /^Calibrated$/ }).click();
    await page.getByRole('textbox', { name: 'Cold' }).fill('30');
    await page.getByRole('button', { name: 'Preview changes' }).click();
    const globex = page.getByRole('table', { name: 'Tier changes' }).locator('tr', { hasText: /globex/i });
    await globex.waitFor();
    check(/COLD[\s\S]*INACTIVE/.test(await globex.innerText()), `Globex should go from COLD to INACTIVE: ${await globex.innerText()}`);
  }],

  ['integrations: connect npm, sync now, see the run; a missing package shows its error; disconnect', async () => {
    check(fakeSources, 'FAKE_SOURCES_URL is not set (run through e2e/run.sh)');
    const page = state.owner;
    await page.goto('/settings/integrations');
    await settled(page);
    await page.getByText('No sources connected').waitFor();
    await page.getByRole('button', { name: 'Connect a source' }).click();
    const dialog = page.getByRole('dialog', { name: 'Connect a source' });
    await dialog.getByLabel('Source', { exact: true }).click();
    await page.getByRole('option', { name: 'npm' }).click();
    const packages = dialog.getByRole('combobox', { name: 'Packages' });
    await packages.fill('acme-cli');
    await packages.press('Enter');
    await dialog.getByRole('button', { name: 'Connect' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const table = page.getByRole('table', { name: 'Integrations' });
    const row = table.locator('tbody tr', { hasText: 'acme-cli' });
    await row.waitFor();
    check(/npm/.test(await row.innerText()), `the row names npm: ${await row.innerText()}`);

    await row.getByRole('button', { name: 'Sync now' }).click();
    const runs = page.getByRole('table', { name: 'Runs' });
    await runs.locator('tbody tr', { hasText: 'succeeded' }).first().waitFor({ timeout: 30000 });
    await eventually('the row to show a success', async () => /connected/i.test(await row.innerText()) && !/last success never/.test(await row.innerText()));
    const requests = (await runs.locator('tbody tr').first().locator('td').nth(3).innerText()).trim();
    check(requests === '2', `the run sent 2 requests (downloads and registry), not ${requests}`);
    const hits = await (await fetch(`${fakeSources}/__hits`)).json();
    check(hits.some((h) => h.startsWith('/npm-downloads/downloads/range/') && h.endsWith('/acme-cli')), `the server read the fake: ${hits.join(', ')}`);
    check(hits.includes('/npm-registry/acme-cli'), `the registry document was read: ${hits.join(', ')}`);
    await settled(page);
    await shot(page, 'integrations');

    // A package the registry does not know: the run fails and the integration says why.
    await row.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit npm' });
    const list = edit.getByRole('combobox', { name: 'Packages' });
    await list.fill('missing-pkg');
    await list.press('Enter');
    await edit.getByRole('button', { name: 'Save' }).click();
    await edit.waitFor({ state: 'hidden' });
    const row2 = table.locator('tbody tr', { hasText: 'missing-pkg' });
    await row2.getByRole('button', { name: 'Sync now' }).click();
    await row2.getByText('error', { exact: true }).waitFor({ timeout: 30000 });
    const shown = await row2.getByTestId('integration-error').innerText();
    check(/missing-pkg was not found/.test(shown), `the error names the package: ${shown}`);
    await runs.locator('tbody tr', { hasText: 'missing-pkg was not found' }).first().waitFor();
    check(/failed/i.test(await runs.locator('tbody tr').first().innerText()), 'the newest run failed');
    await settled(page);
    await shot(page, 'integrations-error');

    await row2.getByRole('button', { name: 'Disconnect' }).click();
    await page.getByRole('dialog', { name: 'Disconnect this source?' }).getByRole('button', { name: 'Disconnect' }).click();
    await row2.getByText('disconnected', { exact: true }).waitFor();
    check((await row2.getByRole('button', { name: 'Sync now' }).count()) === 0, 'a disconnected source offers no sync');
  }],

  ['integrations: connect HubSpot through its consent page (OAuth with PKCE), come back connected, and sync both ways', async () => {
    check(fakeSources, 'FAKE_SOURCES_URL is not set (run through e2e/run.sh)');
    const page = state.owner;
    await page.goto('/settings/integrations');
    await settled(page);
    await page.getByRole('button', { name: 'Connect a source' }).click();
    const dialog = page.getByRole('dialog', { name: 'Connect a source' });
    await dialog.getByLabel('Source', { exact: true }).click();
    await page.getByRole('option', { name: 'HubSpot' }).click();
    // The consent page (the fake consents at once) sends the browser back to the page.
    await dialog.getByRole('button', { name: 'Connect with HubSpot' }).click();
    await page.waitForURL(/\/settings\/integrations/);
    const done = page.getByRole('alert').filter({ hasText: 'HubSpot is connected' });
    await done.waitFor();
    const table = page.getByRole('table', { name: 'Integrations' });
    const row = table.locator('tbody tr', { hasText: 'HubSpot' });
    await row.waitFor();
    await row.getByRole('button', { name: 'Sync now' }).click();
    const runs = page.getByRole('table', { name: 'Runs' });
    await runs.waitFor();
    check((await runs.getByRole('columnheader', { name: 'Pushed' }).count()) === 1, 'a CRM run counts what it pushed');
    await eventually('the run to succeed', async () => /succeeded/i.test(await runs.locator('tbody tr').first().innerText()));
    const hits = await (await fetch(`${fakeSources}/__hits`)).json();
    for (const path of ['/hubspot/oauth/authorize', '/hubspot/oauth/v1/token', '/hubspot/crm/v3/objects/companies/search']) {
      check(hits.includes(path), `the server reached ${path}`);
    }
    // The company HubSpot holds is an account here now.
    const accounts = (await gqlOk(await ownerToken(), '{ accounts(first: 5, filter: {query: "hooli-e2e.io"}) { nodes { name } } }')).accounts.nodes;
    check(accounts.some((a) => a.name === 'Hooli (HubSpot)'), `the pulled company is an account: ${JSON.stringify(accounts)}`);
    await settled(page);
    await shot(page, 'integrations-hubspot');
    await row.getByRole('button', { name: 'Disconnect' }).click();
    await page.getByRole('dialog', { name: 'Disconnect this source?' }).getByRole('button', { name: 'Disconnect' }).click();
    await row.getByText('disconnected', { exact: true }).waitFor();
  }],
  ['integrations: connect Twitter/X through its form (a bad keyword shows its error by the input); LinkedIn has no Sync now, shows its webhook and imports a CSV', async () => {
    const page = state.owner;
    await page.goto('/settings/integrations');
    await settled(page);
    const table = page.getByRole('table', { name: 'Integrations' });
    await page.getByRole('button', { name: 'Connect a source' }).click();
    let dialog = page.getByRole('dialog', { name: 'Connect a source' });
    await dialog.getByLabel('Source', { exact: true }).click();
    // Every kind the API says is built is offered (HubSpot connects through its consent page).
    check((await page.getByRole('option', { name: 'HubSpot' }).count()) === 1, 'HubSpot is offered');
    await page.getByRole('option', { name: 'Twitter/X' }).click();
    const keywords = dialog.getByRole('textbox', { name: 'Keywords' });
    const tooLong = 'x'.repeat(200);
    await keywords.fill(`acme\n${tooLong}`);
    await dialog.getByLabel(/^Bearer token/).fill('e2e-bearer-token');
    await dialog.getByRole('button', { name: 'Connect' }).click();
    await eventually('the keyword error', async () => (await keywords.getAttribute('aria-invalid')) === 'true');
    const describedBy = (await keywords.getAttribute('aria-describedby')) ?? '';
    const errorText = await page.evaluate((ids) => ids.split(' ').map((id) => document.getElementById(id)?.textContent ?? '').join(' '), describedBy);
    check(/Item 2: must be a keyword/.test(errorText), `the error is by the Keywords input: ${errorText}`);
    check((await dialog.getByLabel(/^Bearer token/).getAttribute('aria-invalid')) !== 'true', 'the token is not blamed');
    await keywords.fill('acme, acme sdk');
    await dialog.getByRole('button', { name: 'Connect' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const twitter = table.locator('tbody tr', { hasText: 'acme, acme sdk' });
    await twitter.waitFor();
    check(/Twitter\/X/.test(await twitter.innerText()), `the row names Twitter/X: ${await twitter.innerText()}`);
    check((await twitter.getByRole('button', { name: 'Sync now' }).count()) === 1, 'Twitter/X syncs');
    check((await page.getByRole('alert').filter({ hasText: 'Webhook for this integration' }).count()) === 0, 'Twitter/X takes no webhook');

    // LinkedIn: a page URL, no credentials; a webhook, an import, no sync.
    await page.getByRole('button', { name: 'Connect a source' }).click();
    dialog = page.getByRole('dialog', { name: 'Connect a source' });
    await dialog.getByLabel('Source', { exact: true }).click();
    await page.getByRole('option', { name: 'LinkedIn' }).click();
    await dialog.getByRole('textbox', { name: 'Company page URL' }).fill('https://www.linkedin.com/company/signal-labs');
    await dialog.getByRole('button', { name: 'Connect' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const secretAlert = page.getByRole('alert').filter({ hasText: 'Webhook for this integration' });
    await secretAlert.waitFor();
    check(/\/api\/v1\/webhooks\/linkedin\//.test(await secretAlert.innerText()), `the webhook URL is shown: ${await secretAlert.innerText()}`);
    check(/Secret \(shown once\)/.test(await secretAlert.innerText()), 'the secret is shown once');
    const linkedin = table.locator('tbody tr', { hasText: 'linkedin.com/company/signal-labs' });
    await linkedin.waitFor();
    check((await linkedin.getByRole('button', { name: 'Sync now' }).count()) === 0, 'LinkedIn offers no sync');
    await linkedin.getByRole('button', { name: /^Details of LinkedIn/ }).click();
    const panel = page.locator('div', { has: page.getByRole('heading', { name: /^Webhook and import · LinkedIn/ }) }).last();
    await panel.waitFor();
    check(/\/api\/v1\/webhooks\/linkedin\//.test(await panel.innerText()), 'the panel shows the webhook URL');
    check((await page.getByRole('table', { name: 'Runs' }).count()) === 0, 'no runs table for LinkedIn');
    const csv = 'First Name,Last Name,LinkedIn URL,Email Address,Position,Company,Website\n' +
      'Ada,Park,https://www.linkedin.com/in/ada-park-e2e,ada.park@acme.io,CTO,Acme,acme.io\n' +
      'Ben,Ortiz,https://www.linkedin.com/in/ben-ortiz-e2e,,Engineer,Acme,acme.io\n';
    await page.getByLabel('CSV file').setInputFiles({ name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    const pasted = page.getByRole('textbox', { name: 'People (CSV)' });
    await eventually('the file read into the form', async () => (await pasted.inputValue()).includes('ada-park-e2e'));
    await page.getByRole('button', { name: 'Import people' }).click();
    await page.getByText('2 people', { exact: false }).waitFor();
    await settled(page);
    await shot(page, 'integrations-linkedin');

    // Twitter/X leaves (its first run only reaches the local fake); LinkedIn stays for the axe pass.
    await twitter.getByRole('button', { name: 'Disconnect' }).click();
    await page.getByRole('dialog', { name: 'Disconnect this source?' }).getByRole('button', { name: 'Disconnect' }).click();
    await twitter.getByText('disconnected', { exact: true }).waitFor();
  }],

  ['keyboard: tab to the search, open an account; Ctrl+K finds it and Enter opens it', async () => {
    const page = state.owner;
    await page.goto('/');
    await settled(page);
    const active = () => page.evaluate(() => {
      const e = document.activeElement;
      return { label: e?.getAttribute('aria-label') ?? '', href: e?.getAttribute('href') ?? '', tag: e?.tagName ?? '' };
    });
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await active()).label === 'Search accounts';
    }
    check(reached, 'Tab reaches the accounts search');
    await page.keyboard.type('acme');
    await eventually('the list filtered', async () => !(await page.locator('table[aria-label="Accounts ranked by score"]').innerText()).includes('globex.com'));
    let link = null;
    for (let i = 0; i < 20 && !link; i++) {
      await page.keyboard.press('Tab');
      const a = await active();
      if (a.tag === 'A' && a.href.startsWith('/accounts/')) link = a.href;
    }
    check(link, 'Tab reaches an account link');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Score factors' }).waitFor();
    check(new URL(page.url()).pathname === link, `Enter opened ${link}`);

    await page.keyboard.press('Control+K');
    const search = page.getByRole('textbox', { name: 'Search', exact: true });
    await search.waitFor();
    check(await search.evaluate((e) => e === document.activeElement), 'the palette’s search has the focus');
    await page.keyboard.type('globex');
    const option = page.locator('.mantine-Spotlight-action', { hasText: 'Account · globex.com' });
    await option.waitFor();
    let selected = false;
    for (let i = 0; i < 10 && !selected; i++) {
      await page.keyboard.press('ArrowDown');
      selected = (await option.getAttribute('data-selected')) !== null || (await option.getAttribute('data-combobox-selected')) !== null;
    }
    check(selected, 'the arrow keys select the account');
    const from = page.url();
    await page.keyboard.press('Enter');
    // The palette was opened on Acme's page: wait for Globex's, not any account page.
    await page.getByRole('heading', { level: 2, name: /globex/i }).waitFor();
    check(page.url() !== from && /\/accounts\//.test(page.url()), `the palette opened an account page: ${page.url()}`);
  }],

  ['try the demo from the sign-in page: a demo organization with scored accounts; its sample data is removed and loaded again; a rate-limited demo says so', async () => {
    const page = await newPage('demo');
    await page.goto('/login');
    await page.getByRole('button', { name: 'Try the demo' }).click();
    await page.getByRole('heading', { name: 'Product-qualified accounts' }).waitFor({ timeout: 60000 });
    await page.getByText('Demo organization', { exact: false }).first().waitFor();
    const rows = page.locator('table[aria-label="Accounts ranked by score"] tbody tr');
    const scored = async () => {
      const scores = await rows.locator('td:nth-child(2)').allInnerTexts();
      return scores.filter((s) => /^\d+$/.test(s.trim())).length;
    };
    await eventually('scored demo accounts on the home page', async () => (await scored()) >= 5);
    const tiers = await rows.locator('td:nth-child(3)').allInnerTexts();
    check(tiers.some((t) => /HOT|WARM|COLD/.test(t)), `the demo accounts have tiers: ${tiers.join(', ')}`);
    // The session is the browser's own (the refresh cookie): a reload keeps it.
    await page.reload();
    await page.getByRole('heading', { name: 'Product-qualified accounts' }).waitFor();
    await eventually('the accounts again after a reload', async () => (await scored()) >= 5);
    await settled(page);
    await shot(page, 'demo-home');
    await axe(page, 'demo-home');

    await page.goto('/settings/data');
    const sample = page.getByTestId('sample-data-state');
    await sample.filter({ hasText: 'Sample data is loaded' }).waitFor();
    check(/8 accounts/.test(await sample.innerText()), `the demo holds 8 accounts: ${await sample.innerText()}`);
    await page.getByText('This is a demo organization').waitFor();
    await settled(page);
    await axe(page, 'data-demo');
    await page.getByRole('button', { name: 'Remove sample data' }).click();
    const dialog = page.getByRole('dialog', { name: 'Remove the sample data?' });
    await dialog.getByRole('button', { name: 'Remove sample data' }).click();
    await sample.filter({ hasText: 'No sample data' }).waitFor({ timeout: 60000 });
    await page.getByRole('link', { name: 'Accounts' }).first().click();
    await page.getByText('No accounts yet').waitFor();
    await page.getByRole('link', { name: 'Import and export' }).click();
    await page.getByRole('button', { name: 'Load sample data' }).click();
    await sample.filter({ hasText: 'Sample data is loaded' }).waitFor({ timeout: 60000 });
    await page.getByRole('link', { name: 'Accounts' }).first().click();
    await eventually('the sample accounts back, scored', async () => (await scored()) >= 5);
    await page.context().close();

    // The demo limiter (RATE_LIMIT_DEMO=1 in run.sh): use up this minute's demo, then the button
    // says why no demo started.
    let limited = false;
    for (let i = 0; i < 3 && !limited; i++) {
      const res = await fetch(`${base}/api/v1/demo/seed`, { method: 'POST' });
      limited = res.status === 429;
    }
    check(limited, 'the demo limiter answers 429');
    const late = await newPage('demo-limited', { expectHttpErrors: true });
    await late.goto('/login');
    await late.getByRole('button', { name: 'Try the demo' }).click();
    const alert = late.getByRole('alert').filter({ hasText: /Too many demos/ });
    await alert.waitFor();
    check(/RATE_LIMITED/.test(await alert.innerText()) && /try again in \d+ s/i.test(await alert.innerText()), `the message: ${await alert.innerText()}`);
    check((await late.getByRole('heading', { name: 'Sign in to DevSignal' }).count()) === 1, 'still on the sign-in page');
    await axe(late, 'login-demo-limited');
    await late.context().close();
  }],

  ['import wizard: a bad row shows its row and field in the dry run; a clean file imports with an edited mapping; the same file again creates nothing', async () => {
    const page = state.owner;
    await page.goto('/settings/data');
    const header = 'Email,First Name,Last Name,Company,Company Domain,Position Held\n';
    const bad = header +
      'ivy@importco.io,Ivy,Imported,ImportCo,importco.io,CTO\n' +
      'not-an-email,Bad,Row,ImportCo,importco.io,Intern\n' +
      'max@importco.io,Max,Imported,ImportCo,importco.io,Engineer\n';
    const clean = header +
      'ivy@importco.io,Ivy,Imported,ImportCo,importco.io,CTO\n' +
      'max@importco.io,Max,Imported,ImportCo,importco.io,Engineer\n';
    const upload = async (name, csv) => {
      await page.getByLabel('What to import').selectOption('CONTACTS');
      await page.getByLabel('CSV file', { exact: true }).setInputFiles({ name, mimeType: 'text/csv', buffer: Buffer.from(csv) });
      await page.getByRole('button', { name: 'Upload' }).click();
      await page.getByRole('table', { name: 'Column mapping' }).waitFor();
    };
    await upload('people-with-a-bad-row.csv', bad);
    const summary = page.getByTestId('import-summary');
    check(/3 rows of contacts/.test(await summary.innerText()), `summary: ${await summary.innerText()}`);
    check(/Detected: a generic CSV file/.test(await summary.innerText()), `the source: ${await summary.innerText()}`);
    check((await page.getByLabel('Field for column Email').inputValue()) === 'email', 'Email is guessed as email');
    check((await page.getByLabel('Field for column Company Domain').inputValue()) === 'accountDomain', 'the domain is guessed');
    check((await page.getByLabel('Field for column Position Held').inputValue()) === '', 'an unknown column is ignored');
    check(await page.getByRole('button', { name: 'Start import' }).isDisabled(), 'no import before a dry run');
    await page.getByRole('button', { name: 'Dry run' }).click();
    const errors = page.getByRole('table', { name: 'Rows with errors' });
    await errors.waitFor();
    const cells = await errors.locator('tbody tr').first().locator('td').allInnerTexts();
    check(cells[0] === '2' && cells[1] === '3' && cells[2] === 'email' && /email/.test(cells[3]), `the bad row: ${cells.join(' | ')}`);
    check(/2 would be created/.test(await page.getByRole('status').filter({ hasText: 'Dry run' }).innerText()), 'two rows would be created');
    await settled(page);
    await shot(page, 'import-dry-run');
    await axe(page, 'import-dry-run');
    const count = async () =>
      (await gqlOk(await ownerToken(), '{ contacts(first: 10, filter: {query: "importco.io"}) { totalCount nodes { email title } } }')).contacts;
    check((await count()).totalCount === 0, 'a dry run writes nothing');

    // The clean file, with the unknown column mapped by hand.
    await page.getByRole('button', { name: 'Choose another file' }).click();
    await upload('people.csv', clean);
    await page.getByLabel('Field for column Position Held').selectOption('title');
    await page.getByRole('button', { name: 'Save mapping' }).click();
    await page.getByText('Mapping saved').waitFor();
    await page.getByRole('button', { name: 'Dry run' }).click();
    await page.getByRole('status').filter({ hasText: /2 rows: 2 would be created, 0 updated, 0 unchanged, 0 left out/ }).waitFor();
    await page.getByRole('button', { name: 'Start import' }).click();
    const status = page.getByTestId('import-status');
    await status.filter({ hasText: 'Import succeeded: 2 of 2 rows processed' }).waitFor({ timeout: 60000 });
    check(/2 created, 0 updated, 0 unchanged, 0 left out/.test(await page.getByTestId('import-result').innerText()), 'two created');
    await settled(page);
    await shot(page, 'import-done');
    await axe(page, 'import-done');
    const after = await count();
    check(after.totalCount === 2 && after.nodes.every((n) => n.title === 'CTO' || n.title === 'Engineer'), `imported with titles: ${JSON.stringify(after)}`);
    await page.getByRole('link', { name: 'Contacts' }).first().click();
    await page.getByLabel('Search contacts').fill('importco');
    await page.getByRole('link', { name: 'Ivy Imported' }).waitFor();
    await page.getByRole('link', { name: 'Max Imported' }).waitFor();

    // The same file again: matched by email, nothing new.
    await page.getByRole('link', { name: 'Import and export' }).click();
    await upload('people.csv', clean);
    await page.getByLabel('Field for column Position Held').selectOption('title');
    await page.getByRole('button', { name: 'Dry run' }).click();
    await page.getByRole('status').filter({ hasText: /2 rows: 0 would be created/ }).waitFor();
    await page.getByRole('button', { name: 'Start import' }).click();
    await status.filter({ hasText: 'Import succeeded' }).waitFor({ timeout: 60000 });
    check(/^0 created/.test(await page.getByTestId('import-result').innerText()), `nothing created: ${await page.getByTestId('import-result').innerText()}`);
    check((await count()).totalCount === 2, 'no duplicates after a re-import');
  }],

  ['export contacts as CSV from the dashboard and download the file', async () => {
    const page = state.owner;
    await page.goto('/settings/data');
    const what = page.getByRole('group', { name: 'What to export' });
    check(await what.getByRole('checkbox', { name: 'Contacts' }).isChecked(), 'contacts are picked by default');
    await page.getByRole('radio', { name: /^CSV/ }).check();
    await page.getByRole('button', { name: 'Export', exact: true }).click();
    const row = page.getByRole('table', { name: 'Exports' }).locator('tbody tr').first();
    const link = row.getByRole('link', { name: /^Download/ });
    await link.waitFor({ timeout: 60000 });
    check(/succeeded/.test(await row.innerText()) && /Link expires/.test(await row.innerText()), `the export row: ${await row.innerText()}`);
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const text = readFileSync(await download.path(), 'utf8');
    const [head, ...lines] = text.split(/\r?\n/).filter(Boolean);
    check(head.split(',').includes('email') && head.startsWith('id,'), `the header line: ${head}`);
    check(lines.some((l) => l.includes('ivy@importco.io')) && lines.some((l) => l.includes('max@importco.io')), 'the imported contacts are in the file');
    check(/\.csv$/.test(download.suggestedFilename()), `file name: ${download.suggestedFilename()}`);
    // The list is the server's (`exports`): the link is there after a reload too.
    await page.reload();
    await row.getByRole('link', { name: /^Download/ }).waitFor();
    await settled(page);
    await shot(page, 'export-done');
    await axe(page, 'export-done');
  }],

  ['contact page: export personal data as JSON, then erase the contact (confirmed); it leaves the list', async () => {
    const page = state.owner;
    await page.goto('/contacts');
    await page.getByLabel('Search contacts').fill('max@importco');
    await page.getByRole('link', { name: 'Max Imported' }).click();
    await page.getByRole('heading', { name: 'Max Imported' }).waitFor();
    await settled(page);
    await axe(page, 'contact');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export personal data' }).click()]);
    const data = JSON.parse(readFileSync(await download.path(), 'utf8'));
    check(data.contact?.email === 'max@importco.io', `the JSON holds the contact: ${JSON.stringify(data).slice(0, 200)}`);
    check(Array.isArray(data.identities) && /\.json$/.test(download.suggestedFilename()), `identities and a .json name: ${download.suggestedFilename()}`);

    await page.getByRole('button', { name: 'Erase contact' }).click();
    const dialog = page.getByRole('dialog', { name: 'Erase this contact?' });
    const says = await dialog.innerText();
    check(/cannot be undone/i.test(says) && /hashed/i.test(says), `the dialog explains the erasure: ${says}`);
    // axe reads colours as drawn: wait for the dialog's fade-in to end.
    await eventually('the dialog fully shown', () =>
      dialog.evaluate((e) => {
        for (let n = e; n; n = n.parentElement) if (getComputedStyle(n).opacity !== '1') return false;
        return true;
      }));
    await axe(page, 'contact-erase-dialog', '[role=dialog]');
    await dialog.getByRole('button', { name: 'Erase contact' }).click();
    await page.waitForURL(/\/contacts$/);
    await page.getByText('Max Imported was erased').waitFor();
    await page.getByLabel('Search contacts').fill('importco');
    await page.getByRole('link', { name: 'Ivy Imported' }).waitFor();
    await eventually('the erased contact gone from the list', async () => (await page.getByRole('link', { name: 'Max Imported' }).count()) === 0);
    const left = (await gqlOk(await ownerToken(), '{ contacts(first: 10, filter: {query: "max@importco.io"}) { totalCount } }')).contacts.totalCount;
    check(left === 0, `the contact is gone: ${left}`);
  }],

  ['every page passes axe with no serious violations (screenshots saved)', async () => {
    const page = state.owner;
    const pages = [
      ['home', '/'],
      ['account', state.accountUrl],
      ['contacts', '/contacts'],
      ['deals', '/deals'],
      ['signals', '/signals'],
      ['onboarding', '/onboarding'],
      ['settings-api-keys', '/settings/api-keys'],
      ['settings-webhooks', '/settings/webhooks'],
      ['settings-integrations', '/settings/integrations'],
      ['settings-team', '/settings/team'],
      ['settings-scoring', '/settings/scoring'],
      ['settings-audit', '/settings/audit'],
      ['settings-usage', '/settings/usage'],
      ['settings-data', '/settings/data'],
    ];
    const failures = [];
    const cls = [];
    for (const [name, path] of pages) {
      await page.goto(path);
      await settled(page);
      const shift = await page.evaluate(() => ({ cls: window.__cls, shifts: window.__shifts }));
      cls.push(`${name} ${shift.cls.toFixed(4)}`);
      if (shift.cls > 0.01) failures.push(`layout shift on ${name}: CLS ${shift.cls.toFixed(4)} ${JSON.stringify(shift.shifts)}`);
      await shot(page, name);
      try {
        await axe(page, name);
      } catch (e) {
        failures.push(e.message);
      }
    }
    const out = await newPage('signed-out');
    for (const [name, path] of [
      ['login', '/login'],
      ['register', '/register'],
      ['forgot-password', '/forgot-password'],
      ['reset-password', '/reset-password?token=abc'],
      ['invitation', '/invitations/accept?token=abc'],
    ]) {
      await out.goto(path);
      await settled(out);
      await shot(out, name);
      try {
        await axe(out, name);
      } catch (e) {
        failures.push(e.message);
      }
    }
    await out.context().close();
    console.log(`      CLS on load: ${cls.join(', ')}`);
    check(failures.length === 0, failures.join('\n'));
  }],

  ['the contacts page lists identities; the signals page filters by type', async () => {
    const page = state.owner;
    await page.goto('/contacts');
    await page.getByRole('link', { name: 'carol@acme.io' }).waitFor();
    check((await page.getByText('GitHub: @janedev').count()) > 0, 'the GitHub identity is shown');
    await page.goto('/signals');
    await page.getByRole('table', { name: 'Signals' }).waitFor();
    // `docs_view` is an alias: the signals were stored as `docs_read`, and the filter matches
    // every spelling of the type.
    await page.getByLabel('Type').fill('docs_view');
    await eventually('only docs_read rows', async () => {
      const rows = await page.locator('table[aria-label="Signals"] tbody tr td:first-child').allInnerTexts();
      return rows.length > 0 && rows.every((r) => r === 'docs_read');
    });
  }],

  ['an invitee without an account signs up from the email link as a VIEWER and sees no write controls', async () => {
    const token = await apiLogin(ownerEmail, PASSWORD);
    state.ownerToken = token;
    const viewerEmail = `viewer-${stamp}@acme.io`;
    const r = await gql(token, 'mutation($e: String!) { inviteMember(email: $e, role: VIEWER) { id } }', { e: viewerEmail });
    check(!r.errors, JSON.stringify(r.errors));
    const link = await mailedLink(viewerEmail, '/invitations/accept?token=');
    check(link.startsWith(base), `the invitation link opens the dashboard: ${link}`);
    const page = await newPage('viewer');
    await page.goto(link);
    await page.getByRole('heading', { name: 'Join an organization' }).waitFor();
    await page.getByRole('link', { name: 'Create account' }).click();
    check((await page.locator('input[name=organizationName]').count()) === 0, 'no organization field for invitees');
    await page.locator('input[name=name]').fill('Vic Viewer');
    await page.locator('input[name=email]').fill(viewerEmail);
    await page.locator('input[name=password]').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { name: 'Product-qualified accounts' }).waitFor();
    check((await page.getByLabel('Your role: VIEWER').count()) === 1, 'the header shows the VIEWER role');
    check((await page.getByText('Signal Labs').count()) > 0, 'the viewer is in the inviting organization');
    await page.locator('table[aria-label="Accounts ranked by score"] tr', { hasText: 'acme.io' }).first().waitFor();

    await page.goto(state.accountUrl);
    await page.getByRole('heading', { name: 'Score factors' }).waitFor();
    await settled(page);
    for (const name of ['Log activity', 'Tags', 'New deal', 'Add to deal']) {
      check((await page.getByRole('button', { name }).count()) === 0, `a VIEWER sees “${name}”`);
    }
    await shot(page, 'viewer-account');
    await page.goto('/settings/api-keys');
    await settled(page);
    check((await page.getByRole('button', { name: 'Create API key' }).count()) === 0, 'a VIEWER sees “Create API key”');
    await page.goto('/deals');
    await settled(page);
    check((await page.locator('select[aria-label^="Stage of"]').count()) === 0, 'a VIEWER can move deals');
    check((await page.locator('[draggable="true"]').count()) === 0, 'a VIEWER can drag deals');
    await page.goto('/settings/audit');
    await settled(page);
    await page.getByText("You don't have access to this").waitFor();
    await shot(page, 'viewer-forbidden');
    await page.context().close();
  }],

  ['a second organization sees nothing of the first', async () => {
    const page = await newPage('other-org');
    await signUp(page, { name: 'Otto Other', email: `other-${stamp}@other.io`, org: 'Other Inc' });
    await settled(page);
    await page.getByText('No accounts yet').waitFor();
    await page.goto(state.accountUrl);
    await settled(page);
    await page.getByRole('alert').waitFor();
    check(!(await page.content()).includes('acme.io'), 'the other organization’s account leaked');
    await page.goto('/signals');
    await settled(page);
    await page.getByText('No signals yet').waitFor();
    await page.goto('/contacts');
    await settled(page);
    await page.getByText('No contacts yet').waitFor();
    await page.keyboard.press('Control+K');
    await page.getByRole('textbox', { name: 'Search', exact: true }).fill('acme');
    await page.waitForLoadState('networkidle');
    check((await page.getByText('jane@acme.io').count()) === 0, 'search found the other organization’s contact');
    await page.context().close();
  }],

  ['forms show the API’s field errors next to the field', async () => {
    const page = await newPage('field-errors', { expectHttpErrors: true });
    await page.goto('/register');
    await page.locator('input[name=name]').fill('Shorty');
    await page.locator('input[name=email]').fill('not-an-email');
    await page.locator('input[name=password]').fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    for (const field of ['email', 'password', 'organizationName']) {
      const wrapper = page
        .locator(`input[name=${field}]`)
        .locator('xpath=ancestor::div[contains(@class,"mantine-InputWrapper-root")][1]');
      const error = wrapper.locator('.mantine-InputWrapper-error');
      await error.waitFor({ timeout: 10000 });
      check((await error.innerText()).trim().length > 0, `${field} error text is empty`);
    }
    await shot(page, 'register-field-errors');
    await page.context().close();
  }],

  ['forgot and reset password through the emailed link, then sign in with the new password', async () => {
    const page = await newPage('reset');
    await page.goto('/login');
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    // The sign-in form has an email input too: fill only once the reset form has replaced it.
    await page.getByRole('button', { name: 'Send reset link' }).waitFor();
    await page.locator('input[name=email]').fill(ownerEmail);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.getByRole('status').waitFor();
    const link = await mailedLink(ownerEmail, '/reset-password?token=');
    check(link.startsWith(base), `the reset link opens the dashboard: ${link}`);
    await page.goto(link);
    const fresh = 'a brand new passphrase';
    await page.locator('input[name=password]').fill(fresh);
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.getByText('Your password was changed').waitFor();
    await page.locator('input[name=email]').fill(ownerEmail);
    await page.locator('input[name=password]').fill(fresh);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Product-qualified accounts' }).waitFor();
    state.ownerPassword = fresh;
    state.reset = page;
  }],

  ['GraphiQL is served offline, opens with an example and uses the dashboard session', async () => {
    const page = state.reset;
    const external = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(base) && !r.url().startsWith('ws://localhost') && !r.url().startsWith('data:')) external.push(r.url());
    });
    await page.goto('/graphiql');
    await page.locator('.graphiql-container').waitFor();
    await page.getByText('topAccounts').first().waitFor();
    await page.locator('.graphiql-execute-button').click();
    await eventually('a result', async () => {
      const t = await page.locator('.result-window').innerText();
      return t.includes('"topAccounts"') && !t.includes('UNAUTHENTICATED');
    }, 15000);
    check(external.length === 0, `requests outside the server: ${external.join(', ')}`);
    await shot(page, 'graphiql');
  }],

  ['OAuth buttons go through the server’s OAuth flow; sign out ends the session', async () => {
    const page = state.reset;
    await page.goto('/');
    await page.getByRole('heading', { name: 'Product-qualified accounts' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to DevSignal' }).waitFor();
    check((await page.getByRole('link', { name: 'Continue with GitHub' }).getAttribute('href')) === '/api/v1/auth/oauth/github', 'GitHub button');
    check((await page.getByRole('link', { name: 'Continue with Google' }).getAttribute('href')) === '/api/v1/auth/oauth/google', 'Google button');
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in to DevSignal' }).waitFor();
    await page.goto('/settings/api-keys');
    await page.getByRole('heading', { name: 'Sign in to DevSignal' }).waitFor();
  }],

  ['GitHub sign-in round trip: the provider sends the browser back signed in, and a reload keeps the session', async () => {
    check(fakeSources, 'FAKE_SOURCES_URL is not set (run through e2e/run.sh)');
    const page = await newPage('oauth');
    await page.goto('/login');
    await page.getByRole('link', { name: 'Continue with GitHub' }).click();
    await page.getByRole('heading', { name: 'Product-qualified accounts' }).waitFor();
    await page.getByText('Octo E2E').first().waitFor();
    const hits = await (await fetch(`${fakeSources}/__hits`)).json();
    for (const path of ['/github-oauth/login/oauth/authorize', '/github-oauth/login/oauth/access_token', '/github-oauth/user/emails']) {
      check(hits.includes(path), `the server did not go through ${path}`);
    }
    check(new URL(page.url()).pathname === '/', `landed on ${page.url()}`);
    await page.reload();
    await page.getByRole('heading', { name: 'Product-qualified accounts' }).waitFor();
    await page.getByText('Octo E2E').first().waitFor();
  }],

  ['two tabs restoring the session at the same moment both stay signed in', async () => {
    const email = `tabs-${stamp}@tabs.io`;
    const res = await fetch(`${base}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Tab User', email, password: PASSWORD, organizationName: 'Tabs Inc' }),
    });
    check(res.status === 201, `register: ${res.status}`);
    const a = await newPage('tab-a');
    await a.goto('/login');
    await a.locator('input[name=email]').fill(email);
    await a.locator('input[name=password]').fill(PASSWORD);
    await a.getByRole('button', { name: 'Sign in' }).click();
    const home = (p) => p.getByRole('heading', { name: 'Product-qualified accounts' });
    await home(a).waitFor();
    const b = await newPage('tab-b', { context: a.context() });
    await b.goto('/');
    await home(b).waitFor();
    // Both tabs trade the same refresh cookie at once, five times over; the rotation must not
    // look like a stolen token to the server.
    for (let round = 1; round <= 5; round++) {
      await Promise.all([a.reload(), b.reload()]);
      for (const [name, p] of [['A', a], ['B', b]]) {
        await eventually(`tab ${name} to settle after reload ${round}`, async () =>
          (await home(p).count()) > 0 || (await p.getByRole('heading', { name: 'Sign in to DevSignal' }).count()) > 0);
        check((await home(p).count()) > 0, `tab ${name} was signed out by reload ${round}`);
      }
    }
    // The sessions still work for the API (the server did not revoke the family).
    for (const p of [a, b]) {
      await p.getByRole('link', { name: 'API keys' }).click();
      await p.getByRole('table', { name: 'API keys' }).or(p.getByText('No API keys')).waitFor();
      await p.reload();
      await home(p).or(p.getByRole('heading', { name: 'API keys', exact: true })).waitFor();
      check((await p.getByRole('heading', { name: 'Sign in to DevSignal' }).count()) === 0, 'signed out after the races');
    }
    await a.context().close();
  }],

  ['10,000 accounts: the home list pages through them and stays responsive (figures printed)', async () => {
    const email = `bulk-${stamp}@bulk.io`;
    const res = await fetch(`${base}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Bulk Owner', email, password: PASSWORD, organizationName: 'Bulk Co' }),
    });
    check(res.status === 201, `register: ${res.status}`);
    const token = (await res.json()).accessToken;
    const TOTAL = 10000;
    const BATCH = 100;
    const seedStart = Date.now();
    const batches = Array.from({ length: TOTAL / BATCH }, (_, b) => b);
    const worker = async () => {
      for (let b = batches.shift(); b !== undefined; b = batches.shift()) {
        const input = Array.from({ length: BATCH }, (_, i) => {
          const n = String(b * BATCH + i).padStart(5, '0');
          return { name: `Bulk ${n}`, domain: `bulk-${n}.example` };
        });
        await gqlOk(token, 'mutation($input: [CreateAccountInput!]!) { createAccounts(input: $input) { id } }', { input });
      }
    };
    // One writer: SQLite takes one write transaction at a time anyway.
    await worker();
    const seeded = Date.now() - seedStart;

    const page = await newPage('bulk');
    await page.goto('/login');
    await page.locator('input[name=email]').fill(email);
    await page.locator('input[name=password]').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Product-qualified accounts' }).waitFor();
    const rows = 'table[aria-label="Accounts ranked by score"] tbody tr';
    // A fresh load of the home page: navigation start to 50 rows on screen.
    await page.goto('/');
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 50 && !!document.querySelector(`${sel} a[href^="/accounts/"]`), rows);
    const firstRender = await page.evaluate(() => performance.now());
    const domNodes = await page.evaluate(() => document.getElementsByTagName('*').length);
    const indicator = page.getByTestId('accounts-page');
    check((await indicator.innerText()).trim() === 'Page 1 of 200 · 10,000 accounts', `indicator: ${await indicator.innerText()}`);
    const first = await page.locator(`${rows} a`).allInnerTexts();
    check(new Set(first).size === 50, 'page 1 has 50 different accounts');

    const turns = [];
    const seen = new Set(first);
    for (let p = 2; p <= 4; p++) {
      const before = await page.evaluate(() => performance.now());
      await page.getByRole('button', { name: 'Next' }).click();
      // The rows on screen stay until the next page is in (aria-busy while it loads).
      await page.waitForFunction(
        ({ want, sel }) =>
          document.querySelector('[data-testid="accounts-page"]')?.textContent?.startsWith(`Page ${want} of`) &&
          document.querySelector('table[aria-label="Accounts ranked by score"]')?.getAttribute('aria-busy') === 'false' &&
          document.querySelectorAll(sel).length === 50,
        { want: p, sel: rows },
      );
      turns.push((await page.evaluate(() => performance.now())) - before);
      const names = await page.locator(`${rows} a`).allInnerTexts();
      check(names.length === 50 && names.every((n) => !seen.has(n)), `page ${p} repeats no account of the pages before`);
      names.forEach((n) => seen.add(n));
    }
    await page.getByRole('button', { name: 'Previous' }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid="accounts-page"]')?.textContent?.startsWith('Page 3 of'));
    await page.getByLabel('Search accounts').fill('bulk-09999');
    await page.locator(rows, { hasText: 'bulk-09999.example' }).waitFor();
    await eventually('one match', async () => (await page.locator(rows).count()) === 1);
    console.log(`      10,000 accounts: seeded in ${(seeded / 1000).toFixed(1)} s (100 createAccounts calls of 100); home list first render ${firstRender.toFixed(0)} ms after navigation start; page turns ${turns.map((t) => `${t.toFixed(0)} ms`).join(', ')}; ${domNodes} DOM elements on a page`);
    await settled(page);
    await shot(page, 'home-10k');
    await page.context().close();
  }],

  ['no console errors on any page', async () => {
    check(consoleErrors.length === 0, consoleErrors.join('\n'));
  }],
];

const only = process.env.E2E_ONLY;
browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
for (const [name, fn] of tests) {
  if (only && !only.split('|').some((part) => name.includes(part))) continue;
  const start = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok    ${name} (${Date.now() - start} ms)`);
  } catch (e) {
    results.push([name, false]);
    const last = openPages.filter((p) => !p.isClosed()).pop();
    if (last) await last.screenshot({ path: join(out, `failed-${results.length}.png`), fullPage: true }).catch(() => {});
    console.log(`FAIL  ${name} (${Date.now() - start} ms)\n      ${String(e.message ?? e).split('\n').join('\n      ')}`);
  }
}
await browser.close();
const passed = results.filter((r) => r[1]).length;
const failed = results.length - passed;
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
