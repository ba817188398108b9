// Webhooks through the real binary. A Node receiver on 127.0.0.1 checks signed deliveries,
// retries with growing gaps and a pending delivery that survives kill -9. Other tests cover
// the SSRF rule for private URLs and the events raised by management changes, by proxy
// traffic over a budget or a rate limit, and by marketplace circuits.

import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import { addPoolCredential, apiExpect, enableMarketplace, makeTempDir, mintToken, startKeystore } from '../harness/keystore.mjs';
import { startMock } from '../mocks/openai.mjs';

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// A webhook receiver that records every request and responds with the next status of
// `statuses` (then 200).
async function startReceiver() {
  const receiver = { requests: [], statuses: [], url: '' };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      receiver.requests.push({ at: Date.now(), path: req.url, headers: req.headers, body });
      const status = receiver.statuses.length > 0 ? receiver.statuses.shift() : 200;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'receiver failure with private details');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${server.address().port}`;
  receiver.close = () => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return receiver;
}

// Waits until `predicate()` holds, checking every 25 ms, or fails after `timeoutMs`.
async function waitFor(predicate, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) {
      assert.fail(`timed out waiting for ${what}`);
    }
    await sleep(25);
  }
}

// The requests the receiver recorded on `hookPath`.
function received(receiver, hookPath) {
  return receiver.requests.filter((request) => request.path === hookPath);
}

// Verifies Keystore-Signature the way a receiver should, and returns its timestamp.
function verifySignature(request, secret) {
  const header = request.headers['keystore-signature'] ?? '';
  const parts = Object.fromEntries(header.split(',').map((part) => part.split('=')));
  assert.match(parts.t ?? '', /^\d+$/, `signature has t=<unix seconds>: ${header}`);
  assert.match(parts.v1 ?? '', /^[0-9a-f]{64}$/, `signature has v1=<64 hex>: ${header}`);
  const expected = createHmac('sha256', secret).update(`${parts.t}.${request.body}`).digest();
  assert.ok(timingSafeEqual(Buffer.from(parts.v1, 'hex'), expected), 'the HMAC matches the body');
  return Number(parts.t);
}

async function createProject(ks, name) {
  return apiExpect(ks, 'POST', '/api/v1/projects', { name }, 201);
}

async function createWebhook(ks, projectId, url, extra = {}) {
  const created = await apiExpect(ks, 'POST', `/api/v1/projects/${projectId}/webhooks`, { url, ...extra }, 201);
  assert.match(created.secret ?? '', /^whsec_[0-9a-f]{64}$/);
  return created;
}

async function deliveries(ks, webhookId) {
  return (await apiExpect(ks, 'GET', `/api/v1/webhooks/${webhookId}/deliveries`, undefined, 200)).data;
}

describe('webhooks', () => {
  let receiver;
  let upstream;
  let ks;

  before(async () => {
    receiver = await startReceiver();
    upstream = await startMock();
    ks = await startKeystore({
      upstreams: { openai: upstream.url },
      extraArgs: ['--allow-private-webhooks', '--webhook-retry-base', '200ms'],
    });
  });

  after(async () => {
    await ks?.close();
    await receiver?.close();
    await upstream?.close();
  });

  test('test delivery is signed and fresh', async () => {
    const project = await createProject(ks, 'hooks-signed');
    const webhook = await createWebhook(ks, project.id, `${receiver.url}/signed`);
    const queued = await apiExpect(ks, 'POST', `/api/v1/webhooks/${webhook.id}/test`, undefined, 202);

    await waitFor(() => received(receiver, '/signed').length === 1, 'the test delivery');
    const [request] = received(receiver, '/signed');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['keystore-event'], 'webhook.test');
    assert.equal(request.headers['keystore-delivery'], queued.delivery_id);
    const timestamp = verifySignature(request, webhook.secret);
    assert.ok(Math.abs(Date.now() / 1000 - timestamp) <= 300, `timestamp ${timestamp} is within 5 minutes`);
    // The secret with its last character changed. Always writing '0' would leave a secret
    // that ends in '0' unchanged, and the check would fail by chance.
    const last = webhook.secret.endsWith('0') ? '1' : '0';
    assert.throws(() => verifySignature(request, `${webhook.secret.slice(0, -1)}${last}`));

    const body = JSON.parse(request.body);
    assert.deepEqual(Object.keys(body).sort(), ['created_at', 'data', 'id', 'project_id', 'type']);
    assert.equal(body.id, queued.event_id);
    assert.equal(body.type, 'webhook.test');
    assert.equal(body.project_id, project.id);
    assert.deepEqual(body.data, { endpoint_id: webhook.id });

    let rows = [];
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      rows = await deliveries(ks, webhook.id);
      if (rows[0]?.status === 'delivered') {
        break;
      }
      await sleep(50);
    }
    assert.equal(rows.length, 1);
    assert.equal(rows[0].status, 'delivered');
    assert.equal(rows[0].attempts, 1);
    assert.equal(rows[0].last_status_code, 200);
    assert.ok(!JSON.stringify(rows).includes(webhook.secret), 'the delivery log holds no secret');
    assert.ok(!ks.stderrText().includes(webhook.secret), 'the server log holds no secret');
  });

  test('failed attempts retried with growing gaps', async () => {
    const project = await createProject(ks, 'hooks-retry');
    const webhook = await createWebhook(ks, project.id, `${receiver.url}/retry`);
    receiver.statuses.push(500, 500);
    await apiExpect(ks, 'POST', `/api/v1/webhooks/${webhook.id}/test`, undefined, 202);

    await waitFor(() => received(receiver, '/retry').length === 3, 'three attempts');
    const attempts = received(receiver, '/retry');
    const deliveryIds = new Set(attempts.map((request) => request.headers['keystore-delivery']));
    assert.equal(deliveryIds.size, 1, 'every attempt is the same delivery');
    const eventIds = new Set(attempts.map((request) => JSON.parse(request.body).id));
    assert.equal(eventIds.size, 1, 'every attempt carries the same event id');
    const firstGap = attempts[1].at - attempts[0].at;
    const secondGap = attempts[2].at - attempts[1].at;
    assert.ok(firstGap >= 140, `first retry waited about 200 ms, not ${firstGap} ms`);
    assert.ok(secondGap > firstGap, `gaps grow: ${firstGap} ms then ${secondGap} ms`);

    await sleep(200);
    const [row] = await deliveries(ks, webhook.id);
    assert.equal(row.status, 'delivered');
    assert.equal(row.attempts, 3);
    assert.equal(row.last_status_code, 200);
    assert.ok(!JSON.stringify(row).includes('private details'), 'no response body in the log');
  });

  test('pausing an agent delivers agent.paused', async () => {
    const project = await createProject(ks, 'hooks-agent');
    await createWebhook(ks, project.id, `${receiver.url}/agent`, { events: ['agent.paused'] });
    const agent = await apiExpect(ks, 'POST', `/api/v1/projects/${project.id}/agents`, { name: 'worker' }, 201);
    await apiExpect(ks, 'PATCH', `/api/v1/agents/${agent.id}`, { status: 'paused' }, 200);

    await waitFor(() => received(receiver, '/agent').length === 1, 'the agent.paused delivery');
    await sleep(300);
    const requests = received(receiver, '/agent');
    assert.equal(requests.length, 1, 'agent.created is filtered out');
    const body = JSON.parse(requests[0].body);
    assert.equal(body.type, 'agent.paused');
    assert.equal(body.project_id, project.id);
    assert.equal(body.data.agent_id, agent.id);
  });

  test('traffic over the budget delivers budget.exceeded', async () => {
    const project = await createProject(ks, 'hooks-budget');
    await createWebhook(ks, project.id, `${receiver.url}/budget`, { events: ['budget.exceeded'] });
    await apiExpect(ks, 'PUT', `/api/v1/projects/${project.id}/providers/openai/key`, { api_key: 'sk-test-HOOKS-0001' }, 200);
    await apiExpect(ks, 'PATCH', `/api/v1/projects/${project.id}/providers/openai`, { mode: 'byok', status: 'enabled' }, 200);
    const agent = await apiExpect(ks, 'POST', `/api/v1/projects/${project.id}/agents`, { name: 'spender' }, 201);
    const { token } = await mintToken(ks, agent.id);
    // $1.00 a request against a $1.00 project budget: the first request spends all of it.
    await apiExpect(ks, 'PATCH', `/api/v1/projects/${project.id}`, { budget_cents: 100 }, 200);
    await apiExpect(ks, 'POST', '/api/v1/prices', { provider: 'openai', model: 'hook-model', unit: 'requests', usd_per_million: '1000000' }, 201);
    await sleep(300);

    const chat = () => proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token,
      json: { model: 'hook-model', messages: [{ role: 'user', content: 'hi' }] },
    });
    assert.equal((await chat()).status, 200);
    assertKeystoreError(await chat(), 402, 'budget_exceeded');

    await waitFor(() => received(receiver, '/budget').length === 1, 'the budget.exceeded delivery');
    const body = JSON.parse(received(receiver, '/budget')[0].body);
    assert.equal(body.type, 'budget.exceeded');
    assert.equal(body.project_id, project.id);
    assert.equal(body.data.scope, 'project');
    assert.equal(body.data.agent_id, agent.id);
    assert.equal(body.data.provider, 'openai');
    assert.ok(!received(receiver, '/budget')[0].body.includes(token), 'no agent token in the event');
  });

  test('rate limiting delivers one rate_limited a minute', async () => {
    const project = await createProject(ks, 'hooks-rate');
    await createWebhook(ks, project.id, `${receiver.url}/rate`, { events: ['rate_limited'] });
    await apiExpect(ks, 'PUT', `/api/v1/projects/${project.id}/providers/openai/key`, { api_key: 'sk-test-HOOKS-0002' }, 200);
    await apiExpect(ks, 'PATCH', `/api/v1/projects/${project.id}/providers/openai`, { mode: 'byok', status: 'enabled' }, 200);
    const agent = await apiExpect(ks, 'POST', `/api/v1/projects/${project.id}/agents`, { name: 'limited', rpm_limit: 1 }, 201);
    const { token } = await mintToken(ks, agent.id);

    const models = () => proxyRequest(ks, { method: 'GET', path: '/v1/openai/v1/models', token });
    assert.equal((await models()).status, 200);
    for (let i = 0; i < 3; i += 1) {
      assertKeystoreError(await models(), 429, 'rate_limited');
    }

    await waitFor(() => received(receiver, '/rate').length === 1, 'the rate_limited delivery');
    await sleep(500);
    const requests = received(receiver, '/rate');
    assert.equal(requests.length, 1, 'three rejections within a minute raise one event');
    const body = JSON.parse(requests[0].body);
    assert.equal(body.type, 'rate_limited');
    assert.equal(body.data.agent_id, agent.id);
    assert.equal(body.data.provider, 'openai');
    assert.equal(body.data.limit_type, 'rpm');
  });

  test('CLI manages webhooks and prints the secret once', async () => {
    const project = await createProject(ks, 'hooks-cli');
    const created = await ks.cli(['webhook', 'create', '--project', project.id, '--url', `${receiver.url}/cli`, '--event', 'agent.created']);
    assert.equal(created.code, 0, created.stderr);
    const secret = /whsec_[0-9a-f]{64}/.exec(created.stdout)?.[0];
    assert.ok(secret, `create prints the secret: ${created.stdout}`);
    const id = /whk_[0-9a-f]{24}/.exec(created.stdout)?.[0];

    const listed = await ks.cli(['webhook', 'list', '--project', project.id]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.stdout.includes(id));
    assert.ok(listed.stdout.includes('agent.created'));
    assert.ok(!listed.stdout.includes('whsec_'));

    const tested = await ks.cli(['webhook', 'test', id]);
    assert.equal(tested.code, 0, tested.stderr);
    await waitFor(() => received(receiver, '/cli').length === 1, 'the CLI test delivery');
    const log = await ks.cli(['webhook', 'deliveries', id, '--json']);
    assert.equal(log.code, 0, log.stderr);
    assert.equal(JSON.parse(log.stdout).data[0].event_type, 'webhook.test');

    const updated = await ks.cli(['webhook', 'update', id, '--status', 'disabled']);
    assert.equal(updated.code, 0, updated.stderr);
    assert.ok(updated.stdout.includes('disabled'));
    const empty = await ks.cli(['webhook', 'update', id]);
    assert.equal(empty.code, 2);
    const missing = await ks.cli(['webhook', 'get', 'whk_000000000000000000000000']);
    assert.equal(missing.code, 1);
    const removed = await ks.cli(['webhook', 'delete', id]);
    assert.equal(removed.code, 0, removed.stderr);
  });
});

// An OpenAI-shaped upstream that rejects every key in `rejected` with 401 and serves the rest.
async function startPoolUpstream() {
  const upstream = { rejected: new Set(), url: '' };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const key = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (upstream.rejected.has(key)) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'invalid key', type: 'invalid_request_error' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'chatcmpl-w', object: 'chat.completion', model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.url = `http://127.0.0.1:${server.address().port}`;
  upstream.close = () => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return upstream;
}

describe('webhooks for marketplace circuits', () => {
  test('dedicated credential circuit opens and closes', async () => {
    const receiver = await startReceiver();
    const upstream = await startPoolUpstream();
    const ks = await startKeystore({
      upstreams: { openai: upstream.url },
      extraArgs: ['--allow-private-webhooks', '--circuit-failures', '1', '--circuit-cooldown', '1s'],
    });
    try {
      const project = await createProject(ks, 'hooks-circuit');
      await createWebhook(ks, project.id, `${receiver.url}/circuit`, { events: ['provider.circuit_opened', 'provider.circuit_closed'] });
      const agent = await apiExpect(ks, 'POST', `/api/v1/projects/${project.id}/agents`, { name: 'worker' }, 201);
      const { token } = await mintToken(ks, agent.id);
      const flaky = await addPoolCredential(ks, 'openai', 'sk-test-HOOK-FLAKY-01', { project: project.id, scope: 'dedicated' });
      const steady = await addPoolCredential(ks, 'openai', 'sk-test-HOOK-STEADY-02', { project: project.id, scope: 'dedicated' });
      await enableMarketplace(ks, project.id, 'openai');
      upstream.rejected.add('sk-test-HOOK-FLAKY-01');

      const chat = () => proxyRequest(ks, {
        path: '/v1/openai/v1/chat/completions',
        token,
        json: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
      });
      for (let i = 0; i < 3; i += 1) {
        assert.equal((await chat()).status, 200);
      }
      await waitFor(() => received(receiver, '/circuit').length === 1, 'the circuit_opened delivery');
      const opened = JSON.parse(received(receiver, '/circuit')[0].body);
      assert.equal(opened.type, 'provider.circuit_opened');
      assert.equal(opened.project_id, project.id);
      assert.deepEqual(opened.data, { provider: 'openai', credential_id: flaky.id, scope: 'dedicated' });

      // After the cool-down a successful probe closes the circuit.
      upstream.rejected.clear();
      await sleep(1200);
      await apiExpect(ks, 'POST', `/api/v1/pools/credentials/${steady.id}/disable`, undefined, 200);
      assert.equal((await chat()).status, 200);
      await waitFor(() => received(receiver, '/circuit').length === 2, 'the circuit_closed delivery');
      const closed = JSON.parse(received(receiver, '/circuit')[1].body);
      assert.equal(closed.type, 'provider.circuit_closed');
      assert.equal(closed.data.credential_id, flaky.id);
    } finally {
      await ks.close();
      await upstream.close();
      await receiver.close();
    }
  });
});

describe('webhooks across a crash', () => {
  test('pending delivery is sent after kill -9 and restart', async () => {
    const receiver = await startReceiver();
    const root = await makeTempDir();
    const dataDir = path.join(root, 'data');
    const args = ['--allow-private-webhooks', '--webhook-retry-base', '1s'];
    let ks = await startKeystore({ dataDir, extraArgs: args });
    try {
      const project = await createProject(ks, 'hooks-crash');
      const webhook = await createWebhook(ks, project.id, `${receiver.url}/crash`);
      receiver.statuses.push(503);
      const queued = await apiExpect(ks, 'POST', `/api/v1/webhooks/${webhook.id}/test`, undefined, 202);
      await waitFor(() => received(receiver, '/crash').length === 1, 'the first attempt');

      process.kill(ks.pid, 'SIGKILL');
      await ks.stop();
      ks = await startKeystore({ dataDir, extraArgs: args });

      await waitFor(() => received(receiver, '/crash').length === 2, 'the attempt after the restart');
      const retried = received(receiver, '/crash')[1];
      assert.equal(retried.headers['keystore-delivery'], queued.delivery_id);
      verifySignature(retried, webhook.secret);
      await sleep(200);
      const [row] = await deliveries(ks, webhook.id);
      assert.equal(row.status, 'delivered');
      assert.equal(row.attempts, 2);
    } finally {
      await ks.close();
      await receiver.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('webhooks without --allow-private-webhooks', () => {
  let ks;

  before(async () => {
    ks = await startKeystore();
  });

  after(async () => {
    await ks?.close();
  });

  test('loopback URLs are rejected', async () => {
    const project = await createProject(ks, 'hooks-ssrf');
    for (const url of ['http://127.0.0.1:9/hook', 'http://localhost:9/hook', 'http://[::1]:9/hook', 'http://[::ffff:127.0.0.1]:9/hook']) {
      const response = await ks.api('POST', `/api/v1/projects/${project.id}/webhooks`, { url });
      assert.equal(response.status, 400, `${url}: ${response.text}`);
      assert.equal(response.json?.error?.code, 'invalid_request', url);
      assert.match(response.json?.error?.message ?? '', /--allow-private-webhooks/, url);
    }
    const listed = await apiExpect(ks, 'GET', `/api/v1/projects/${project.id}/webhooks`, undefined, 200);
    assert.deepEqual(listed.data, []);
  });
});
