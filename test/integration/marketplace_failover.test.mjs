// Marketplace credential selection against a pool upstream that judges each key on its own:
// failover on 401 and 429 before any byte reached the client, no replay of requests the
// upstream may have acted on, circuits that open and close again, per-credential rate limits,
// and 503 no_capacity when no credential is usable.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';

import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import {
  addPoolCredential,
  apiExpect,
  enableMarketplace,
  mintToken,
  startKeystore,
  waitForLedger,
} from '../harness/keystore.mjs';

const kChat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
const kCooldownMs = 1000;

// An OpenAI-shaped upstream where each key has its own response: `status` (default 200),
// `reset` (close the connection after reading the request) or `echo` (put the key in the body).
async function startPoolUpstream() {
  const upstream = {
    requests: [],
    keys: new Map(),
    url: '',
    setKey(key, behavior) {
      upstream.keys.set(key, behavior);
    },
    countFor(key) {
      return upstream.requests.filter((request) => request.key === key).length;
    },
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const auth = req.headers.authorization ?? '';
      const key = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      upstream.requests.push({ key, requestId: req.headers['x-request-id'], authorization: req.headers.authorization });
      const behavior = upstream.keys.get(key);
      if (behavior === undefined) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } }));
        return;
      }
      if (behavior.reset) {
        req.socket.destroy();
        return;
      }
      const status = behavior.status ?? 200;
      const body = status === 200
        ? { id: 'chatcmpl-pool', object: 'chat.completion', model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: behavior.echo ? `served by ${behavior.name} with ${key}` : `served by ${behavior.name}` }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } }
        : { error: { message: `mock status ${status}`, type: status === 429 ? 'rate_limit_exceeded' : 'server_error' } };
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
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

describe('marketplace credential pool', () => {
  let upstream;
  let ks;
  let projectCount = 0;

  before(async () => {
    upstream = await startPoolUpstream();
    ks = await startKeystore({
      upstreams: { openai: upstream.url },
      extraArgs: ['--circuit-failures', '2', '--circuit-cooldown', '1s'],
    });
  });

  after(async () => {
    await ks?.close();
    await upstream?.close();
  });

  beforeEach(() => {
    upstream.requests.length = 0;
    upstream.keys.clear();
  });

  // A new project in marketplace mode for openai with an agent and a token, so each test has
  // its own ledger.
  async function newProject() {
    projectCount += 1;
    const project = await apiExpect(ks, 'POST', '/api/v1/projects', { name: `pool-${projectCount}` }, 201);
    const agent = await apiExpect(ks, 'POST', `/api/v1/projects/${project.id}/agents`, { name: 'worker' }, 201);
    const { token } = await mintToken(ks, agent.id);
    return { projectId: project.id, token };
  }

  async function disableAll(ids) {
    for (const id of ids) {
      await apiExpect(ks, 'POST', `/api/v1/pools/credentials/${id}/disable`, undefined, 200);
    }
  }

  test('key echoed after failover is redacted', async () => {
    // The redactor must search for the key of the credential that served the request, not
    // the one that was rejected first.
    const { projectId, token } = await newProject();
    const rejected = await addPoolCredential(ks, 'openai', 'sk-test-POOL-REFUSED-11', { project: projectId, scope: 'dedicated' });
    const echoing = await addPoolCredential(ks, 'openai', 'sk-test-POOL-ECHOING-12', { project: projectId, scope: 'dedicated' });
    await enableMarketplace(ks, projectId, 'openai');
    upstream.setKey('sk-test-POOL-ECHOING-12', { name: 'echoing', echo: true });
    // sk-test-POOL-REFUSED-11 is unknown upstream: 401.

    for (let round = 0; round < 3; ++round) {
      const response = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token, json: kChat });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.json().choices[0].message.content, `served by echoing with ${'*'.repeat('sk-test-POOL-ECHOING-12'.length)}`);
      assert.ok(!response.text.includes('sk-test-POOL-'), response.text);
    }
    assert.ok(upstream.countFor('sk-test-POOL-REFUSED-11') >= 1, 'the rejected credential was tried, so a failover happened');
    assert.equal(upstream.countFor('sk-test-POOL-ECHOING-12'), 3);
    await disableAll([rejected.id, echoing.id]);
  });

  test('a refused or throttled credential hands the request to the next one', async () => {
    const { projectId, token } = await newProject();
    const refused = await addPoolCredential(ks, 'openai', 'sk-test-POOL-REFUSED-01', { project: projectId, scope: 'dedicated' });
    const throttled = await addPoolCredential(ks, 'openai', 'sk-test-POOL-THROTTLED-02', { project: projectId, scope: 'dedicated' });
    const good = await addPoolCredential(ks, 'openai', 'sk-test-POOL-GOOD-03', { project: projectId, scope: 'dedicated' });
    await enableMarketplace(ks, projectId, 'openai');
    upstream.setKey('sk-test-POOL-THROTTLED-02', { status: 429, name: 'throttled' });
    upstream.setKey('sk-test-POOL-GOOD-03', { name: 'good' });
    // sk-test-POOL-REFUSED-01 is unknown upstream: 401.

    const response = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token, json: kChat });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.json().choices[0].message.content, 'served by good');
    // Each credential was tried at most once, and the last one responded.
    assert.ok(upstream.requests.length >= 1, JSON.stringify(upstream.requests));
    assert.ok(upstream.requests.length <= 3, JSON.stringify(upstream.requests));
    assert.equal(upstream.countFor('sk-test-POOL-GOOD-03'), 1);
    for (const request of upstream.requests) {
      assert.match(request.authorization, /^Bearer sk-test-POOL-[A-Z]+-0\d$/);
      assert.equal(request.requestId, upstream.requests[0].requestId, 'every attempt carries the same request id');
    }

    const rows = await waitForLedger(ks, projectId, 1);
    assert.equal(rows.length, 1, 'one ledger row for the request, whatever the attempts');
    assert.equal(rows[0].mode, 'marketplace');
    assert.equal(rows[0].credential_id, good.id);
    assert.equal(rows[0].upstream_status, 200);
    assert.notEqual(refused.id, throttled.id);
  });

  test('failing credential circuit opens and recovers', async () => {
    const { projectId, token } = await newProject();
    const flaky = await addPoolCredential(ks, 'openai', 'sk-test-POOL-FLAKY-04', { project: projectId, scope: 'dedicated' });
    const steady = await addPoolCredential(ks, 'openai', 'sk-test-POOL-STEADY-05', { project: projectId, scope: 'dedicated' });
    await enableMarketplace(ks, projectId, 'openai');
    upstream.setKey('sk-test-POOL-STEADY-05', { name: 'steady' });

    for (let i = 0; i < 6; i += 1) {
      const response = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token, json: kChat });
      assert.equal(response.status, 200, `request ${i}: ${response.text}`);
    }
    // Two failures open the circuit (--circuit-failures 2); after that the flaky key is skipped.
    assert.equal(upstream.countFor('sk-test-POOL-FLAKY-04'), 2);
    assert.equal(upstream.countFor('sk-test-POOL-STEADY-05'), 6);

    const pools = await apiExpect(ks, 'GET', '/api/v1/pools?provider=openai', undefined, 200);
    const entry = pools.data.find((item) => item.id === flaky.id);
    assert.equal(entry?.health?.state, 'open', JSON.stringify(entry));

    // After the cool-down one request probes the repaired key and closes the circuit.
    upstream.setKey('sk-test-POOL-FLAKY-04', { name: 'flaky' });
    await new Promise((resolve) => setTimeout(resolve, kCooldownMs + 200));
    await disableAll([steady.id]);
    const probe = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token, json: kChat });
    assert.equal(probe.status, 200, probe.text);
    assert.equal(probe.json().choices[0].message.content, 'served by flaky');
    const after = await apiExpect(ks, 'GET', '/api/v1/pools?provider=openai', undefined, 200);
    assert.equal(after.data.find((item) => item.id === flaky.id)?.health?.state, 'closed');
  });

  test('5xx answers and resets after the body was sent are returned, never replayed', async () => {
    const { projectId, token } = await newProject();
    await addPoolCredential(ks, 'openai', 'sk-test-POOL-FAILING-06', { project: projectId, scope: 'dedicated' });
    await addPoolCredential(ks, 'openai', 'sk-test-POOL-RESETS-07', { project: projectId, scope: 'dedicated' });
    await enableMarketplace(ks, projectId, 'openai');
    upstream.setKey('sk-test-POOL-FAILING-06', { status: 502, name: 'failing' });
    upstream.setKey('sk-test-POOL-RESETS-07', { reset: true, name: 'resets' });

    const first = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token, json: kChat });
    const second = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token, json: kChat });
    assert.equal(upstream.requests.length, 2, 'each request reached the upstream exactly once');
    const statuses = [first.status, second.status].sort();
    assert.deepEqual(statuses, [502, 502]);
    const reset = [first, second].find((response) => response.text.includes('keystore_error'));
    assertKeystoreError(reset, 502, 'upstream_unreachable');

    const rows = await waitForLedger(ks, projectId, 2);
    assert.equal(rows.length, 2);
    assert.deepEqual(rows.map((row) => row.outcome).sort(), ['upstream_error', 'upstream_unreachable']);
  });

  test('when every credential throttles, the last answer is relayed as it came', async () => {
    const { projectId, token } = await newProject();
    await addPoolCredential(ks, 'openai', 'sk-test-POOL-BUSY-08', { project: projectId, scope: 'dedicated' });
    await addPoolCredential(ks, 'openai', 'sk-test-POOL-BUSY-09', { project: projectId, scope: 'dedicated' });
    await enableMarketplace(ks, projectId, 'openai');
    upstream.setKey('sk-test-POOL-BUSY-08', { status: 429, name: 'busy-8' });
    upstream.setKey('sk-test-POOL-BUSY-09', { status: 429, name: 'busy-9' });

    const response = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token, json: kChat });
    assert.equal(response.status, 429, response.text);
    assert.equal(response.json().error.type, 'rate_limit_exceeded');
    assert.equal(upstream.requests.length, 2);
    const rows = await waitForLedger(ks, projectId, 1);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].upstream_status, 429);
  });

  test('rate-limited credential skipped, then no_capacity', async () => {
    const { projectId, token } = await newProject();
    const limited = await addPoolCredential(ks, 'openai', 'sk-test-POOL-LIMITED-10', { project: projectId, scope: 'dedicated', rpmLimit: 2 });
    await enableMarketplace(ks, projectId, 'openai');
    upstream.setKey('sk-test-POOL-LIMITED-10', { name: 'limited' });

    for (let i = 0; i < 2; i += 1) {
      const response = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token, json: kChat });
      assert.equal(response.status, 200, response.text);
    }
    const refused = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token, json: kChat });
    const body = assertKeystoreError(refused, 503, 'no_capacity');
    assert.ok(!JSON.stringify(body).includes('sk-test-POOL'), 'the error names no key');
    assert.equal(upstream.requests.length, 2);

    await disableAll([limited.id]);
    const disabled = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token, json: kChat });
    assertKeystoreError(disabled, 503, 'no_capacity');
    assert.equal(upstream.requests.length, 2, 'no upstream request without a usable credential');
    const rows = await waitForLedger(ks, projectId, 2);
    assert.equal(rows.length, 2, 'refused requests write no ledger row');
  });

  test('dedicated credentials of one project never serve another', async () => {
    const owner = await newProject();
    const other = await newProject();
    await addPoolCredential(ks, 'openai', 'sk-test-POOL-OWNED-11', { project: owner.projectId, scope: 'dedicated' });
    await enableMarketplace(ks, other.projectId, 'openai');
    upstream.setKey('sk-test-POOL-OWNED-11', { name: 'owned' });

    const response = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token: other.token, json: kChat });
    assertKeystoreError(response, 503, 'no_capacity');
    assert.equal(upstream.requests.length, 0);
  });
});
