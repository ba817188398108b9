// Drives the web dashboard in headless Chromium against the real keystore binary and a mock
// OpenAI upstream: sign-in, BYOK key, mode switches, agents and tokens, usage, the kill switch
// and the concierge queue. Screenshots of every visited page go to test-artifacts/dashboard/.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { addPoolCredential, apiExpect, maskOf, repoRoot, startKeystore, waitForLedger } from '../harness/keystore.mjs';
import { startMock as startOpenAi } from '../mocks/openai.mjs';

const kChromium = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const kArtifacts = path.join(repoRoot, 'test-artifacts', 'dashboard');
const kByokKey = 'sk-test-DASHBOARD-BYOK-0001';
const kPoolKey = 'sk-test-DASHBOARD-POOL-0001';
const kConciergeKey = 'gsk-test-DASHBOARD-CONCIERGE-0001';
const kEmail = 'owner@example.test';
const kPassword = 'correct horse battery staple';

let openai;
let ks;
let browser;
let page;
let project;
const consoleErrors = [];

async function screenshot(name, width = 1280) {
  await page.setViewportSize({ width, height: width > 800 ? 900 : 844 });
  await page.screenshot({ path: path.join(kArtifacts, `${name}-${width}.png`), fullPage: true });
  if (width !== 1280) {
    await page.setViewportSize({ width: 1280, height: 900 });
  }
}

async function openPage(label) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label }).click();
  await page.getByRole('heading', { level: 1, name: label }).waitFor();
}

function providerRow(id) {
  return page.locator(`tr[data-provider="${id}"]`);
}

async function proxyChat(token) {
  const response = await fetch(`${ks.proxyUrl}/v1/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: response.status, json: await response.json() };
}

before(async () => {
  await mkdir(kArtifacts, { recursive: true });
  openai = await startOpenAi({ expectedCredential: kByokKey });
  ks = await startKeystore({ upstreams: { openai: openai.url } });
  project = await apiExpect(ks, 'POST', '/api/v1/projects', { name: 'web-shop' }, 201);
  // The first user, created on the data directory as an operator would, owns the organization
  // the bootstrap admin key belongs to and signs in through the real session routes.
  const created = await ks.cli(
    ['user', 'create', '--data-dir', ks.dataDir, '--email', kEmail, '--operator', '--organization', project.organization_id, '--role', 'owner'],
    { input: `${kPassword}\n`, withAdminKey: false },
  );
  assert.equal(created.code, 0, `user create: ${created.stderr}`);
  browser = await chromium.launch({ executablePath: kChromium, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') {
      consoleErrors.push(message.text());
    }
  });
});

after(async () => {
  await browser?.close();
  await ks?.close();
  await openai?.close();
});

test('index served with strict headers', async () => {
  const response = await fetch(`${ks.adminUrl}/`, { headers: { accept: 'text/html' } });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(response.headers.get('cache-control'), 'no-cache');
  assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(response.headers.get('x-frame-options'), 'DENY');
  const policy = response.headers.get('content-security-policy') ?? '';
  assert.match(policy, /script-src 'self';/);
  assert.match(policy, /frame-ancestors 'none'/);
  const html = await response.text();
  assert.doesNotMatch(html, /<script>(?!<)/, 'index.html has no inline script');
  const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
  assert.ok(script, `index.html names a hashed script: ${html}`);
  const asset = await fetch(`${ks.adminUrl}${script}`);
  assert.equal(asset.status, 200);
  assert.equal(asset.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');

  const fallback = await fetch(`${ks.adminUrl}/agents`, { headers: { accept: 'text/html' } });
  assert.equal(fallback.status, 200);
  assert.equal(await fallback.text(), html);
  const api = await fetch(`${ks.adminUrl}/api/v1/nothing`, { headers: { accept: 'text/html' } });
  assert.equal(api.status, 404);
  assert.equal(api.headers.get('content-type'), 'application/json');
});

test('sign-in rejects wrong password then succeeds', async () => {
  await page.goto(`${ks.adminUrl}/`);
  await page.getByRole('heading', { name: 'Sign in to Keystore' }).waitFor();
  await screenshot('sign-in');
  await screenshot('sign-in', 390);
  await page.getByLabel('Email').fill(kEmail);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('invalid_credentials').waitFor();
  assert.equal(await page.getByLabel('Password').inputValue(), '', 'the password field is cleared after a failed sign-in');

  await page.getByLabel('Password').fill(kPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Providers' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/providers');
  const cookies = await page.context().cookies();
  const session = cookies.find((cookie) => cookie.name === 'ks_session');
  assert.equal(session?.httpOnly, true, 'the session cookie is HttpOnly');
  assert.equal(session?.sameSite, 'Strict');
});

test('BYOK key set in UI shows only mask', async () => {
  const row = providerRow('openai');
  await row.getByRole('button', { name: 'Set the BYOK key of OpenAI' }).click();
  const dialog = page.getByRole('dialog', { name: 'BYOK key for OpenAI' });
  await dialog.getByLabel('API key').fill(kByokKey);
  await dialog.getByRole('button', { name: 'Save key' }).click();
  await dialog.waitFor({ state: 'detached' });
  await row.locator('.masked-key').getByText(maskOf(kByokKey), { exact: true }).waitFor();

  const html = await page.content();
  assert.ok(!html.includes(kByokKey), 'the raw BYOK key is absent from the page');
  assert.equal(await page.locator('input[name="api_key"]').count(), 0, 'no key field is left in the DOM');
  assert.match(await row.textContent(), /fingerprint/);
  const entry = await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}/providers/openai`, undefined, 200);
  assert.equal(entry.mode, 'byok');
  assert.equal(entry.status, 'enabled');
  assert.equal(entry.key, maskOf(kByokKey));
  await screenshot('providers');
  await screenshot('providers', 390);
});

test('OpenAI switches to Marketplace and back', async () => {
  await addPoolCredential(ks, 'openai', kPoolKey, { label: 'dashboard-pool' });
  const row = providerRow('openai');
  await row.getByRole('button', { name: 'Switch to Marketplace for OpenAI' }).click();
  const toMarket = page.getByRole('dialog', { name: 'Use Marketplace for OpenAI?' });
  await toMarket.getByText('billed by Keystore').waitFor();
  await screenshot('providers-switch-dialog');
  await toMarket.getByRole('button', { name: 'Switch to Marketplace' }).click();
  await toMarket.waitFor({ state: 'detached' });
  await row.locator('td').nth(1).getByText('marketplace', { exact: true }).waitFor();
  let entry = await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}/providers/openai`, undefined, 200);
  assert.equal(entry.mode, 'marketplace');

  await row.getByRole('button', { name: 'Switch OpenAI to BYOK' }).click();
  const toByok = page.getByRole('dialog', { name: 'Use your own key for OpenAI?' });
  await toByok.getByRole('button', { name: 'Switch to BYOK' }).click();
  await toByok.waitFor({ state: 'detached' });
  await row.locator('td').nth(1).getByText('byok', { exact: true }).waitFor();
  entry = await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}/providers/openai`, undefined, 200);
  assert.equal(entry.mode, 'byok');
  assert.equal(entry.status, 'enabled');
});

let agentToken;

test('agent and token created in UI', async () => {
  await openPage('Agents');
  await page.getByRole('button', { name: 'Create agent' }).click();
  const create = page.getByRole('dialog', { name: 'Create agent' });
  await create.getByLabel('Name').fill('checkout-bot');
  await create.getByLabel('Requests per minute').fill('60');
  await create.getByLabel('Monthly budget in US dollars').fill('25');
  await create.getByRole('button', { name: 'Create' }).click();
  await create.waitFor({ state: 'detached' });
  const card = page.locator('article[data-agent="checkout-bot"]');
  await card.getByText('$25.00').waitFor();

  await card.getByRole('button', { name: 'Mint a token for checkout-bot' }).click();
  const mint = page.getByRole('dialog', { name: 'Mint a token for checkout-bot' });
  await mint.getByRole('button', { name: 'Mint token' }).click();
  const shown = page.getByRole('dialog', { name: 'Token created' });
  await shown.getByText('shown only once').waitFor();
  agentToken = await shown.getByLabel('Agent token').inputValue();
  assert.match(agentToken, /^ks_[0-9a-f]{64}$/);
  await screenshot('agents-token-created');
  await shown.getByRole('button', { name: 'Done' }).click();
  await shown.waitFor({ state: 'detached' });
  assert.ok(!(await page.content()).includes(agentToken), 'the token is gone from the page after Done');
  await card.locator('tr[data-token]').first().waitFor();
  assert.equal(await card.locator('tr[data-token]').count(), 1);
  const agent = (await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}/agents`, undefined, 200)).data[0];
  const [listed] = (await apiExpect(ks, 'GET', `/api/v1/agents/${agent.id}/tokens`, undefined, 200)).data;
  const tokenRow = card.locator(`tr[data-token="${listed.id}"]`);
  assert.equal(await tokenRow.locator('td').nth(1).textContent(), listed.hint);
  assert.equal(await tokenRow.locator('td').nth(3).textContent(), 'active');
});

test('token from UI proxies and shows in usage', async () => {
  const answer = await proxyChat(agentToken);
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
  assert.equal(openai.requests.length, 1);
  assert.equal(openai.requests[0].headers.authorization, `Bearer ${kByokKey}`);
  const rows = await waitForLedger(ks, project.id, 1);
  assert.equal(rows.length, 1);

  await openPage('Usage');
  const byProvider = page.locator('.card', { has: page.getByRole('heading', { name: 'By provider' }) });
  const openaiRow = byProvider.getByRole('row', { name: /openai/ });
  await openaiRow.waitFor();
  assert.equal(await openaiRow.locator('td').first().textContent(), '1');
  await page.locator('.totals').getByText('Requests').waitFor();
  await page.locator('.chart canvas').first().waitFor();
  const budgets = page.locator('.budgets');
  await budgets.getByText('checkout-bot').waitFor();
  await screenshot('usage');
  await screenshot('usage', 390);

  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download CSV' }).click();
  const file = await download;
  assert.match(file.suggestedFilename(), /^keystore-usage-web-shop-\d{4}-\d{2}-\d{2}\.csv$/);
});

test('paused agent is refused by proxy', async () => {
  await openPage('Agents');
  const card = page.locator('article[data-agent="checkout-bot"]');
  await card.getByRole('button', { name: 'Pause agent checkout-bot' }).click();
  await card.getByRole('button', { name: 'Resume agent checkout-bot' }).waitFor();
  await card.locator('.badge').getByText('paused', { exact: true }).waitFor();
  await screenshot('agents-paused');
  await screenshot('agents-paused', 390);

  const answer = await proxyChat(agentToken);
  assert.equal(answer.status, 403);
  assert.equal(answer.json?.error?.code, 'agent_paused');
  assert.equal(openai.requests.length, 1, 'the refused request never reached the upstream');
});

test('concierge request fulfilled by operator', async () => {
  await openPage('Providers');
  const row = providerRow('groq');
  await row.getByRole('button', { name: 'Request Groq through the concierge' }).click();
  const dialog = page.getByRole('dialog', { name: 'Request Groq through the concierge' });
  await dialog.getByLabel('Note for the operator (optional)').fill('for the summarizer');
  await dialog.getByRole('button', { name: 'File request' }).click();
  await dialog.waitFor({ state: 'detached' });
  await row.getByText('concierge request open').waitFor();

  await openPage('Operator');
  const queue = page.locator('.card', { has: page.getByRole('heading', { name: 'Concierge queue' }) });
  const request = queue.locator('tr[data-request]');
  await request.first().waitFor();
  assert.equal(await request.count(), 1);
  const requestId = await request.getAttribute('data-request');
  await page.locator('tr[data-credential]').first().waitFor();
  await screenshot('operator');
  await screenshot('operator', 390);

  await queue.getByRole('button', { name: `Fulfil concierge request ${requestId}` }).click();
  const fulfil = page.getByRole('dialog', { name: `Fulfil groq for ${project.id}` });
  await fulfil.getByLabel('API key').fill(kConciergeKey);
  await fulfil.getByRole('button', { name: 'Fulfil request' }).click();
  await fulfil.waitFor({ state: 'detached' });
  await queue.getByText('No open requests.').waitFor();
  assert.ok(!(await page.content()).includes(kConciergeKey), 'the concierge key is absent from the page');

  const fulfilled = await apiExpect(ks, 'GET', `/api/v1/concierge/${requestId}`, undefined, 200);
  assert.equal(fulfilled.status, 'fulfilled');
  assert.match(fulfilled.credential_id ?? '', /^cred_/);

  await openPage('Providers');
  // Fulfilling a request of a project that had not configured the provider enables it in
  // Marketplace mode.
  const groq = providerRow('groq');
  await groq.getByText('concierge fulfilled').waitFor();
  await groq.locator('td').nth(1).getByText('marketplace', { exact: true }).waitFor();
  const entry = await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}/providers/groq`, undefined, 200);
  assert.equal(entry.mode, 'marketplace');
  assert.equal(entry.status, 'enabled');
});

test('placeholders and no secret in browser state', async () => {
  await openPage('Audit');
  await page.getByText('coming soon').waitFor();
  await screenshot('audit');
  await openPage('Webhooks');
  await screenshot('webhooks');

  const storage = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  const html = await page.content();
  for (const secret of [ks.adminKey, kByokKey, kPoolKey, kConciergeKey, agentToken]) {
    assert.ok(!storage.includes(secret), 'browser storage holds no secret');
    assert.ok(!html.includes(secret), 'the page holds no secret');
  }
  const cookies = await page.context().cookies();
  assert.ok(cookies.every((cookie) => !cookie.value.startsWith('ksa_')), 'no admin key in a cookie');
  assert.deepEqual(consoleErrors.filter((text) => /Content Security Policy/i.test(text)), [], 'no CSP violation');
});

test('sign-out returns to sign-in', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to Keystore' }).waitFor();
  const response = await page.evaluate(async () => (await fetch('/api/v1/auth/session')).status);
  assert.equal(response, 401);
});
