// Drives the web dashboard in headless Chromium against the real keystore binary and a mock
// OpenAI upstream. It covers sign-in, BYOK key, mode switches, agents and token mint and
// rotation, usage and the invoice, the kill switch and the concierge queue, then the audit trail
// and webhooks delivered to a Node receiver. It also checks that every control has an accessible
// name, that no page scrolls sideways at 390 px, and signs in with the keyboard alone.
// Screenshots of every visited page go to test-artifacts/dashboard/.

import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
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
let receiver;
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

// A webhook receiver on 127.0.0.1 that records every request and responds 200.
async function startReceiver() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    requests,
    url: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function waitForRequests(target, count, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (target.requests.length < count) {
    assert.ok(Date.now() < deadline, `the receiver got ${target.requests.length} of ${count} requests within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// Checks Keystore-Signature (t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">) against `secret`.
function assertSigned(request, secret) {
  const header = request.headers['keystore-signature'] ?? '';
  const parts = Object.fromEntries(header.split(',').map((part) => part.split('=')));
  assert.match(parts.t ?? '', /^\d+$/, `Keystore-Signature has t=: ${header}`);
  assert.match(parts.v1 ?? '', /^[0-9a-f]{64}$/, `Keystore-Signature has v1=: ${header}`);
  const expected = createHmac('sha256', secret).update(`${parts.t}.${request.body}`).digest();
  assert.ok(timingSafeEqual(Buffer.from(parts.v1, 'hex'), expected), 'the signature matches the body and the secret shown in the UI');
}

function providerRow(id) {
  return page.locator(`tr[data-provider="${id}"]`);
}

async function proxyChat(token) {
  const response = await fetch(`${ks.proxyUrl}/v1/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    // max_tokens keeps the budget reservation (the most the request may cost at $0.15 a token)
    // under the agent's $25 budget.
    body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: response.status, json: await response.json() };
}

// Lists the focusable controls that Chromium computes no accessible name for: text fields,
// selects, checkboxes, radios and buttons, from the accessibility tree of the whole page. Hidden
// controls are ignored in that tree and so are not listed.
async function unnamedControls() {
  const session = await page.context().newCDPSession(page);
  try {
    const { nodes } = await session.send('Accessibility.getFullAXTree');
    const kControlRoles = new Set(['textbox', 'searchbox', 'combobox', 'listbox', 'spinbutton', 'checkbox', 'radio', 'switch', 'slider', 'button']);
    const controls = nodes.filter((node) => !node.ignored && kControlRoles.has(node.role?.value));
    assert.ok(controls.length > 0, 'the accessibility tree lists at least one control');
    return controls.filter((node) => !(node.name?.value ?? '').trim()).map((node) => `${node.role.value} (DOM node ${node.backendDOMNodeId})`);
  } finally {
    await session.detach();
  }
}

async function assertControlsNamed(where) {
  assert.deepEqual(await unnamedControls(), [], `every control on ${where} has an accessible name`);
}

// Checks that the current page does not scroll sideways in a phone-sized viewport.
async function assertFitsWidth(where, width = 390) {
  await page.setViewportSize({ width, height: 844 });
  try {
    // Resize observers, such as the usage chart's, resize their elements in the next frames.
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    const { scrollWidth, innerWidth, overflowing } = await page.evaluate(() => {
      // The elements that reach past the right edge, outside any sideways scroll box, to name
      // the cause of a failure. An absolutely positioned element can escape its scroll box.
      const overflowing = [];
      for (const element of document.body.querySelectorAll('*')) {
        const scrollBox = element.parentElement?.closest('.table-wrap');
        const escapes = !scrollBox || getComputedStyle(element).position === 'absolute';
        if (escapes && element.getBoundingClientRect().right > window.innerWidth && !overflowing.some((outer) => outer.contains(element))) {
          overflowing.push(element);
        }
      }
      return {
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        overflowing: overflowing.map((element) => `${element.tagName.toLowerCase()}.${[...element.classList].join('.')}`),
      };
    });
    assert.ok(scrollWidth <= innerWidth, `${where} at ${width} px is ${scrollWidth} px wide, so it scrolls sideways; past the edge: ${overflowing.join(', ')}`);
  } finally {
    await page.setViewportSize({ width: 1280, height: 900 });
  }
}

// Presses Tab until the focused element matches `selector`, with at most `maxPresses` presses.
async function tabTo(selector, maxPresses = 80) {
  for (let presses = 0; presses < maxPresses; presses++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((wanted) => document.activeElement?.matches(wanted) ?? false, selector)) {
      return;
    }
  }
  assert.fail(`${maxPresses} presses of Tab did not reach ${selector}`);
}

before(async () => {
  await mkdir(kArtifacts, { recursive: true });
  openai = await startOpenAi({ expectedCredential: kByokKey });
  receiver = await startReceiver();
  // The webhook receiver listens on loopback, which webhook URLs may name only with this flag.
  ks = await startKeystore({ upstreams: { openai: openai.url }, extraArgs: ['--allow-private-webhooks'] });
  project = await apiExpect(ks, 'POST', '/api/v1/projects', { name: 'web-shop' }, 201);
  // $0.15 per token, set by the operator before any proxied request, so spend is not zero.
  for (const unit of ['input_tokens', 'output_tokens']) {
    await apiExpect(ks, 'POST', '/api/v1/prices', { provider: 'openai', model: 'gpt-4o-mini', unit, usd_per_million: '150000' }, 201);
  }
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
  await receiver?.close();
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
  await assertControlsNamed('the sign-in page');
  await assertFitsWidth('the sign-in page');
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
  await mint.getByLabel('Expires after').waitFor();
  await assertControlsNamed('the mint dialog');
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

  // 11 input and 6 output tokens from the mock at $0.15 each: $2.55 at list price. The key is
  // the project's own (BYOK), so Keystore bills nothing.
  const spend = page.locator('.total', { hasText: 'Spend at list price' });
  assert.equal(await spend.locator('strong').textContent(), '$2.55');
  const invoiceCard = page.locator('.card', { has: page.getByRole('heading', { name: /^Invoice for / }) });
  await invoiceCard.getByText('at list price: $2.55').waitFor();
  assert.equal(await invoiceCard.locator('tbody tr').count(), 2, 'one invoice line per priced unit');
  const inputLine = invoiceCard.getByRole('row', { name: /input_tokens/ });
  assert.deepEqual(await inputLine.locator('td').allTextContents(), ['openai', 'gpt-4o-mini', 'input_tokens', '11', '$150000', 'byok', '$1.65', '$0.00']);
  const month = new Date().toISOString().slice(0, 7);
  const invoice = await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}/invoices/${month}`, undefined, 200);
  assert.equal(invoice.total_list_price_micros, 2_550_000);
  await screenshot('usage');
  await screenshot('usage', 390);

  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download CSV' }).click();
  const file = await download;
  assert.match(file.suggestedFilename(), /^keystore-usage-web-shop-\d{4}-\d{2}-\d{2}\.csv$/);
});

let rotatedToken;

test('token rotated in UI with grace', async () => {
  await openPage('Agents');
  const card = page.locator('article[data-agent="checkout-bot"]');
  const [agent] = (await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}/agents`, undefined, 200)).data;
  const [old] = (await apiExpect(ks, 'GET', `/api/v1/agents/${agent.id}/tokens`, undefined, 200)).data;
  await card.getByRole('button', { name: `Rotate token ${old.id}` }).click();
  const dialog = page.getByRole('dialog', { name: `Rotate token ${old.id}?` });
  await dialog.getByText(`ending in ${old.hint} stops working at once`).waitFor();
  await dialog.getByLabel('Grace period for the old token').selectOption('10m');
  await dialog.getByText(`ending in ${old.hint} keeps working for 10 minutes`).waitFor();
  await assertControlsNamed('the rotate dialog');
  await screenshot('agents-token-rotate');
  await dialog.getByRole('button', { name: 'Rotate token' }).click();

  const rotatedDialog = page.getByRole('dialog', { name: 'Token rotated' });
  await rotatedDialog.getByText('shown only once').waitFor();
  await rotatedDialog.getByRole('button', { name: 'Copy token' }).waitFor();
  await rotatedDialog.getByText(`It replaces ${old.id}.`).waitFor();
  rotatedToken = await rotatedDialog.getByLabel('Agent token').inputValue();
  assert.match(rotatedToken, /^ks_[0-9a-f]{64}$/);
  assert.notEqual(rotatedToken, agentToken);
  await rotatedDialog.getByRole('button', { name: 'Done' }).click();
  await rotatedDialog.waitFor({ state: 'detached' });
  assert.ok(!(await page.content()).includes(rotatedToken), 'the rotated token is gone from the page after Done');

  const tokens = (await apiExpect(ks, 'GET', `/api/v1/agents/${agent.id}/tokens`, undefined, 200)).data;
  assert.equal(tokens.length, 2);
  const oldAfter = tokens.find((token) => token.id === old.id);
  const replacement = tokens.find((token) => token.id !== old.id);
  assert.equal(oldAfter.rotated_to, replacement.id);
  assert.equal(replacement.rotated_from, old.id);
  assert.equal(oldAfter.status, 'active');
  const graceLeftMs = Date.parse(oldAfter.expires_at) - Date.now();
  assert.ok(graceLeftMs > 0, `the old token still works, expiring in ${graceLeftMs} ms`);
  assert.ok(graceLeftMs <= 600_000, `the old token expires within the 10 minute grace, in ${graceLeftMs} ms`);

  const oldRow = card.locator(`tr[data-token="${old.id}"]`);
  await oldRow.locator('.rotation').getByText(replacement.id).waitFor();
  assert.equal(await oldRow.locator('.rotation').textContent(), `replaced by ${replacement.id}`);
  assert.equal(await oldRow.locator('.badge').textContent(), 'expiring');
  assert.equal(await oldRow.getByRole('button', { name: `Rotate token ${old.id}` }).count(), 0, 'a rotated token cannot be rotated again');
  const newRow = card.locator(`tr[data-token="${replacement.id}"]`);
  assert.equal(await newRow.locator('.rotation').textContent(), `replaces ${old.id}`);
  assert.equal(await newRow.locator('.badge').textContent(), 'active');
  await screenshot('agents-token-rotated');
  await screenshot('agents-token-rotated', 390);

  const oldAnswer = await proxyChat(agentToken);
  assert.equal(oldAnswer.status, 200, `the old token works during the grace period: ${JSON.stringify(oldAnswer.json)}`);
  const newAnswer = await proxyChat(rotatedToken);
  assert.equal(newAnswer.status, 200, `the new token works: ${JSON.stringify(newAnswer.json)}`);
});

test('paused agent is refused by proxy', async () => {
  await openPage('Agents');
  const card = page.locator('article[data-agent="checkout-bot"]');
  await card.getByRole('button', { name: 'Pause agent checkout-bot' }).click();
  await card.getByRole('button', { name: 'Resume agent checkout-bot' }).waitFor();
  await card.locator('.badge').getByText('paused', { exact: true }).waitFor();
  await screenshot('agents-paused');
  await screenshot('agents-paused', 390);

  const upstreamRequests = openai.requests.length;
  for (const token of [agentToken, rotatedToken]) {
    const answer = await proxyChat(token);
    assert.equal(answer.status, 403);
    assert.equal(answer.json?.error?.code, 'agent_paused');
  }
  assert.equal(openai.requests.length, upstreamRequests, 'the refused requests never reached the upstream');
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

test('audit page lists earlier changes', async () => {
  // Enough changes that the trail spans two pages of 25, the older one holding the changes
  // made through the UI above.
  const [agent] = (await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}/agents`, undefined, 200)).data;
  for (let i = 0; i < 20; i++) {
    await apiExpect(ks, 'PATCH', `/api/v1/agents/${agent.id}`, { rpm_limit: 60 + i }, 200);
  }
  const all = (await apiExpect(ks, 'GET', '/api/v1/audit?limit=1000', undefined, 200)).data;
  assert.ok(all.length > 25, `the trail has ${all.length} entries, more than one page`);
  assert.ok(all.length <= 50, `the trail has ${all.length} entries, at most two pages`);

  await openPage('Audit');
  const chain = page.getByRole('status', { name: 'Audit chain status' });
  await chain.getByText('Chain intact').waitFor();
  assert.match(await chain.textContent(), new RegExp(`\\(${all.length} entries checked`));
  const rows = page.locator('table.audit tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 25);
  await screenshot('audit');
  await screenshot('audit', 390);
  await page.getByRole('button', { name: 'Load more' }).click();
  await page.getByText(`${all.length} entries shown, no older entries`).waitFor();
  assert.equal(await rows.count(), all.length);
  assert.equal(await page.getByRole('button', { name: 'Load more' }).count(), 0);
  const shownSeqs = await rows.evaluateAll((elements) => elements.map((row) => Number(row.dataset.seq)));
  assert.deepEqual(shownSeqs, all.map((entry) => entry.seq), 'every entry once, newest first');

  for (const action of ['credential.write', 'provider.mode_switch', 'agent.create', 'token.mint', 'agent.status', 'concierge.fulfill', 'price.set', 'auth.login']) {
    assert.ok((await page.locator(`tr[data-action="${action}"]`).count()) >= 1, `an entry of ${action} is listed`);
  }
  const byokWrite = all.find((entry) => entry.action === 'credential.write');
  const byokRow = page.locator(`tr[data-seq="${byokWrite.seq}"]`);
  assert.equal(await byokRow.locator('td[data-label="Target"]').textContent(), 'openai');
  assert.equal(await byokRow.locator('td[data-label="Project"]').textContent(), 'web-shop');
  assert.equal(await byokRow.locator('td[data-label="Source address"]').textContent(), byokWrite.source_address);
  assert.equal(await byokRow.locator('td[data-label="Request id"]').textContent(), byokWrite.request_id);
  assert.ok(!(await page.content()).includes(kByokKey), 'the BYOK key is absent from the audit details');

  const filters = page.getByRole('form', { name: 'Audit filters' });
  await filters.getByLabel('Action').fill('token.mint');
  await filters.getByLabel('Project').selectOption({ label: 'web-shop' });
  await filters.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByText('1 entry shown, no older entries').waitFor();
  const minted = page.locator('table.audit tbody tr');
  assert.equal(await minted.count(), 1);
  assert.equal(await minted.locator('td[data-label="Action"]').textContent(), 'token.mint');
  assert.match(await minted.locator('td[data-label="Actor"]').textContent(), /user$/);
  await screenshot('audit-filtered');
  await screenshot('audit-filtered', 390);

  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  await filters.getByLabel('Since (UTC)').fill(tomorrow);
  await filters.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByText('No audit entries match these filters.').waitFor();
  await filters.getByRole('button', { name: 'Clear' }).click();
  await page.getByText('25 entries shown').waitFor();
});

test('pages name controls and fit 390 px', async () => {
  // The checks themselves catch an unnamed control and a too wide element.
  await page.evaluate(() => {
    const probe = document.createElement('div');
    probe.id = 'probe';
    probe.style.width = '1000px';
    probe.innerHTML = '<input type="text"><button type="button"></button>';
    document.body.append(probe);
  });
  assert.equal((await unnamedControls()).length, 2, 'an unlabeled input and an empty button are reported');
  await assert.rejects(assertFitsWidth('the probe'), /the probe at 390 px is \d+ px wide.*past the edge: div\./);
  await page.evaluate(() => document.getElementById('probe').remove());

  for (const label of ['Providers', 'Agents', 'Usage', 'Audit', 'Webhooks', 'Operator']) {
    await openPage(label);
    // Each page is checked once its data has loaded, not on its loading placeholder.
    await page.getByRole('status').filter({ hasText: /^Loading/ }).first().waitFor({ state: 'detached' });
    await assertControlsNamed(label);
    await assertFitsWidth(label);
  }
});

const webhookSecrets = [];

test('webhook created in UI gets test event', async () => {
  await openPage('Webhooks');
  await page.getByText('No webhook endpoints in web-shop yet.').waitFor();
  const hookUrl = `${receiver.url}/hooks/dashboard`;
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  const create = page.getByRole('dialog', { name: 'Add webhook endpoint' });
  await create.getByLabel('Endpoint URL').fill(hookUrl);
  await create.getByLabel('Description (optional)').fill('dashboard receiver');
  await create.getByLabel('agent.paused').check();
  await create.getByLabel('budget.exceeded').check();
  await create.getByRole('button', { name: 'Create endpoint' }).click();

  const createdDialog = page.getByRole('dialog', { name: 'Webhook endpoint created' });
  await createdDialog.getByText('shown only once').waitFor();
  const secret = await createdDialog.getByLabel('Signing secret').inputValue();
  assert.match(secret, /^whsec_[0-9a-f]{64}$/);
  webhookSecrets.push(secret);
  await createdDialog.getByRole('button', { name: 'Done' }).click();
  await createdDialog.waitFor({ state: 'detached' });
  assert.ok(!(await page.content()).includes(secret), 'the secret is gone from the page after Done');

  const [listed] = (await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}/webhooks`, undefined, 200)).data;
  assert.equal(listed.url, hookUrl);
  assert.equal(listed.description, 'dashboard receiver');
  assert.deepEqual(listed.events, ['agent.paused', 'budget.exceeded']);
  assert.equal(listed.status, 'active');
  const card = page.locator(`article[data-webhook="${listed.id}"]`);
  await card.getByText('agent.paused, budget.exceeded').waitFor();
  await card.getByText('No deliveries yet.').waitFor();

  // The test event reaches the endpoint whatever its event filter.
  await card.getByRole('button', { name: `Send a test event to ${hookUrl}` }).click();
  await waitForRequests(receiver, 1);
  const [delivery] = receiver.requests;
  assert.equal(delivery.method, 'POST');
  assert.equal(delivery.path, '/hooks/dashboard');
  assertSigned(delivery, secret);
  const event = JSON.parse(delivery.body);
  assert.equal(event.type, 'webhook.test');
  assert.equal(event.project_id, project.id);

  const delivered = card.locator('tr[data-status="delivered"]');
  await delivered.waitFor();
  assert.equal(await card.locator('tr[data-delivery]').count(), 1);
  assert.equal(await delivered.locator('td[data-label="Event"] code').textContent(), 'webhook.test');
  assert.equal(await delivered.locator('td[data-label="Attempts"]').textContent(), '1');
  assert.equal(await delivered.locator('td[data-label="Last status code"]').textContent(), '200');
  assert.equal(await delivered.locator('td[data-label="Last error"]').textContent(), '—');
  await screenshot('webhooks');
  await screenshot('webhooks', 390);
  await assertControlsNamed('Webhooks with an endpoint');
  await assertFitsWidth('Webhooks with an endpoint');

  await card.getByRole('button', { name: `Disable ${hookUrl}` }).click();
  await card.locator('.badge').getByText('disabled', { exact: true }).waitFor();
  assert.equal(await card.getByRole('button', { name: `Send a test event to ${hookUrl}` }).isDisabled(), true);
  await card.getByRole('button', { name: `Enable ${hookUrl}` }).click();
  await card.locator('.agent-head .badge').getByText('active', { exact: true }).waitFor();

  await card.getByRole('button', { name: `Rotate the signing secret of ${hookUrl}` }).click();
  await page.getByRole('dialog', { name: 'Rotate the signing secret?' }).getByRole('button', { name: 'Rotate secret' }).click();
  const rotated = page.getByRole('dialog', { name: 'Signing secret rotated' });
  const newSecret = await rotated.getByLabel('Signing secret').inputValue();
  assert.match(newSecret, /^whsec_[0-9a-f]{64}$/);
  assert.notEqual(newSecret, secret);
  webhookSecrets.push(newSecret);
  await rotated.getByRole('button', { name: 'Close dialog' }).click();
  await rotated.waitFor({ state: 'detached' });
  assert.ok(!(await page.content()).includes(newSecret), 'the rotated secret is gone from the page after closing');

  await card.getByRole('button', { name: `Send a test event to ${hookUrl}` }).click();
  await waitForRequests(receiver, 2);
  assertSigned(receiver.requests[1], newSecret);
  await card.locator('tr[data-status="delivered"]').nth(1).waitFor();
  assert.equal(await card.locator('tr[data-delivery]').count(), 2);

  await card.getByRole('button', { name: `Delete ${hookUrl}` }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete this webhook endpoint?' });
  await confirm.getByRole('button', { name: 'Delete endpoint' }).click();
  await confirm.waitFor({ state: 'detached' });
  await page.getByText('No webhook endpoints in web-shop yet.').waitFor();
  assert.equal((await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}/webhooks`, undefined, 200)).data.length, 0);
});

test('no secret in browser state', async () => {
  const storage = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  const html = await page.content();
  for (const secret of [ks.adminKey, kByokKey, kPoolKey, kConciergeKey, agentToken, rotatedToken, ...webhookSecrets]) {
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

test('keyboard alone signs in and closes dialog', async () => {
  await page.getByRole('heading', { name: 'Sign in to Keystore' }).waitFor();
  await tabTo('input[name="email"]');
  await page.keyboard.type(kEmail);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'password', 'Tab moves from the email to the password field');
  await page.keyboard.type(kPassword);
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Sign out' }).waitFor();

  await tabTo('nav a[href="/agents"]');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'Agents' }).waitFor();
  await tabTo('.page-head button.primary');
  await page.keyboard.press('Enter');
  const create = page.getByRole('dialog', { name: 'Create agent' });
  await create.waitFor();
  assert.ok(await create.evaluate((dialog) => dialog.contains(document.activeElement)), 'opening the dialog moves focus into it');
  await page.keyboard.press('Escape');
  await create.waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), 'Create agent', 'closing the dialog returns focus to the button that opened it');
});
