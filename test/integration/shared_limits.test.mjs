// Two `keystore serve` instances on one database and one Redis: rate limits and budgets hold
// for both together, because every admission is decided by one atomic script in Redis.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertKeystoreError, proxyRequest, responseHeaderValues } from '../harness/http.mjs';
import { apiExpect, mintToken, startKeystore, waitForLedger } from '../harness/keystore.mjs';
import { startRedis } from '../harness/redis.mjs';
import { startStack } from '../harness/stack.mjs';

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('limits shared through Redis', () => {
  let redis;
  let stack;
  let first;
  let second;
  let upstream;
  let count = 0;

  before(async () => {
    redis = await startRedis();
    const env = { KEYSTORE_REDIS: redis.url };
    stack = await startStack({ keystore: { env }, provision: false });
    first = stack.ks;
    upstream = stack.mocks.openai;
    second = await startKeystore({ dataDir: first.dataDir, env, upstreams: { openai: upstream.url } });
  });

  after(async () => {
    await second?.close();
    await stack?.close();
    await redis?.close();
  });

  async function newProject() {
    count += 1;
    const project = await apiExpect(first, 'POST', '/api/v1/projects', { name: `shared-${count}` }, 201);
    await apiExpect(first, 'PUT', `/api/v1/projects/${project.id}/providers/openai/key`, { api_key: 'sk-test-OPENAI-0001' }, 200);
    await apiExpect(first, 'PATCH', `/api/v1/projects/${project.id}/providers/openai`, { mode: 'byok', status: 'enabled' }, 200);
    const agent = await apiExpect(first, 'POST', `/api/v1/projects/${project.id}/agents`, { name: 'shared' }, 201);
    const { token } = await mintToken(first, agent.id);
    return { projectId: project.id, agentId: agent.id, token };
  }

  function chat(ks, token, extra = {}) {
    return proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token,
      json: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...extra },
    });
  }

  test('requests-per-minute limit of five admits exactly five of twenty across two instances', async () => {
    const { agentId, token } = await newProject();
    await apiExpect(first, 'PATCH', `/api/v1/agents/${agentId}`, { rpm_limit: 5 }, 200);
    await sleep(1200);  // the second instance picks the change up with its next poll
    upstream.clear();
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => chat(i % 2 === 0 ? first : second, token)));
    const statuses = responses.map((response) => response.status);
    assert.equal(statuses.filter((status) => status === 200).length, 5, `statuses: ${statuses}`);
    for (const response of responses.filter((response) => response.status !== 200)) {
      const body = assertKeystoreError(response, 429, 'rate_limited');
      assert.equal(body.error.limit_type, 'rpm');
      assert.equal(responseHeaderValues(response, 'x-ratelimit-limit')[0], '5');
      assert.equal(responseHeaderValues(response, 'x-ratelimit-remaining')[0], '0');
    }
    assert.equal(upstream.requests.length, 5, 'rejected requests never reach the upstream');
  });

  test('concurrent requests on two instances cannot together pass a nearly spent budget', async () => {
    const { projectId, token } = await newProject();
    await apiExpect(first, 'PATCH', `/api/v1/projects/${projectId}`, { budget_cents: 100 }, 200);
    await apiExpect(first, 'POST', '/api/v1/prices', { provider: 'openai', model: 'shared-model', unit: 'requests', usd_per_million: '950000' }, 201);
    await sleep(1200);
    const spent = await chat(first, token, { model: 'shared-model' });
    assert.equal(spent.status, 200, spent.text);
    await waitForLedger(first, projectId, 1);

    // $0.04 worst case each with $0.05 left: one of twenty fits, whichever instance it hits.
    await apiExpect(first, 'POST', '/api/v1/prices', { provider: 'openai', model: 'shared-model', unit: 'requests', usd_per_million: '40000' }, 201);
    await sleep(1200);
    upstream.clear();
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => chat(i % 2 === 0 ? first : second, token, { model: 'shared-model' })));
    const admitted = responses.filter((response) => response.status === 200);
    assert.equal(admitted.length, 1, `statuses: ${responses.map((response) => response.status)}`);
    for (const response of responses.filter((response) => response.status !== 200)) {
      assertKeystoreError(response, 402, 'budget_exceeded');
    }
    assert.equal(upstream.requests.length, 1, 'refused requests never reach the upstream');
    const rows = await waitForLedger(first, projectId, 2);
    const total = rows.reduce((sum, row) => sum + row.cost_micros, 0);
    // $0.95 and $0.04 (no token prices are set): within the $1.00 cap.
    assert.equal(total, 950000 + 40000);
  });

  test('without Redis a request is refused with limits_unavailable and never forwarded', async () => {
    const { agentId, projectId, token } = await newProject();
    await apiExpect(first, 'PATCH', `/api/v1/agents/${agentId}`, { rpm_limit: 100 }, 200);
    await sleep(1200);
    assert.equal((await chat(second, token)).status, 200);
    await redis.close();
    upstream.clear();
    const refused = await chat(second, token);
    assertKeystoreError(refused, 503, 'limits_unavailable');
    assert.doesNotMatch(refused.text, /redis|127\.0\.0\.1/i, 'the client does not learn where the limit store lives');
    assert.equal(upstream.requests.length, 0);
    const rows = await waitForLedger(first, projectId, 1);
    assert.equal(rows.length, 1, 'the refused request has no ledger row');
  });
});
