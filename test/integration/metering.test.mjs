// Metering through the real proxy: usage read from plain and streamed responses (asking the
// upstream for streamed usage and hiding it from the client), usage_missing instead of a
// silent zero, usage kept when the client hangs up, rows priced from the operator's prices,
// rate limits with their headers, budget reservations under concurrency, the overhead header
// and the Prometheus metrics.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';

import { assertKeystoreError, proxyRequest, responseHeaderValues } from '../harness/http.mjs';
import { apiExpect, mintToken, startKeystore, waitForLedger } from '../harness/keystore.mjs';

const kUsage = { prompt_tokens: 12, completion_tokens: 34, total_tokens: 46 };

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// An OpenAI-shaped chat upstream. Streams send `parts` content events `intervalMs` apart and
// the usage chunk only when the request asked for it (and `omitUsage` is off), as OpenAI does.
async function startChatUpstream() {
  const upstream = { requests: [], behavior: {}, url: '', streamsFinished: 0 };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks);
      const body = raw.length > 0 ? JSON.parse(raw.toString('utf8')) : {};
      upstream.requests.push({ headers: req.headers, raw, body });
      const { parts = 3, intervalMs = 0, omitUsage = false } = upstream.behavior;
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model', owned_by: 'system' }] }));
        return;
      }
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'chatcmpl-m', object: 'chat.completion', model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage: kUsage }));
        return;
      }
      const withUsage = body.stream_options?.include_usage === true && !omitUsage;
      if (upstream.behavior.contentLength) {
        // The whole stream in one body with a Content-Length, as some OpenAI-compatible servers
        // send a short stream.
        const events = [];
        for (let i = 0; i < parts; i += 1) {
          events.push(`data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: `part-${i} ` } }], usage: null })}\n\n`);
        }
        if (withUsage) {
          events.push(`data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [], usage: kUsage })}\n\n`);
        }
        events.push('data: [DONE]\n\n');
        const text = events.join('');
        res.writeHead(200, { 'content-type': 'text/event-stream', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (choices, extra = {}) => `data: ${JSON.stringify({ id: 'chatcmpl-m', object: 'chat.completion.chunk', model: 'gpt-4o-mini', choices, ...(body.stream_options?.include_usage ? { usage: null } : {}), ...extra })}\n\n`;
      for (let i = 0; i < parts; i += 1) {
        if (intervalMs > 0) {
          await sleep(intervalMs);
        }
        if (res.destroyed) {
          break;
        }
        res.write(chunk([{ index: 0, delta: { content: `part-${i} ` }, finish_reason: null }]));
      }
      res.write(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]));
      if (withUsage) {
        res.write(`data: ${JSON.stringify({ id: 'chatcmpl-m', object: 'chat.completion.chunk', model: 'gpt-4o-mini', choices: [], usage: kUsage })}\n\n`);
      }
      res.end('data: [DONE]\n\n');
      upstream.streamsFinished += 1;
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

describe('metering', () => {
  let upstream;
  let ks;
  let count = 0;

  before(async () => {
    upstream = await startChatUpstream();
    // Nothing listens on port 1, so anthropic requests fail before reaching any upstream.
    ks = await startKeystore({ upstreams: { openai: upstream.url, anthropic: 'http://127.0.0.1:1' } });
  });

  after(async () => {
    await ks?.close();
    await upstream?.close();
  });

  beforeEach(() => {
    upstream.requests.length = 0;
    upstream.behavior = {};
  });

  // A project with openai in BYOK mode, an agent and a token.
  async function newProject() {
    count += 1;
    const project = await apiExpect(ks, 'POST', '/api/v1/projects', { name: `meter-${count}` }, 201);
    await apiExpect(ks, 'PUT', `/api/v1/projects/${project.id}/providers/openai/key`, { api_key: 'sk-test-METER-0001' }, 200);
    await apiExpect(ks, 'PATCH', `/api/v1/projects/${project.id}/providers/openai`, { mode: 'byok', status: 'enabled' }, 200);
    const agent = await apiExpect(ks, 'POST', `/api/v1/projects/${project.id}/agents`, { name: 'meter' }, 201);
    const { token } = await mintToken(ks, agent.id);
    return { projectId: project.id, agentId: agent.id, token };
  }

  function chat(token, extra = {}) {
    return proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token,
      json: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...extra },
    });
  }

  test('usage off by client still metered', async () => {
    const { projectId, token } = await newProject();
    const response = await chat(token, { stream: true, stream_options: { include_usage: false } });
    assert.equal(response.status, 200, response.text);
    const sent = upstream.requests[0];
    assert.deepEqual(sent.body.stream_options, { include_usage: true }, 'the upstream is asked for usage');
    assert.equal(Number(sent.headers['content-length']), sent.raw.length, 'Content-Length matches the rewritten body');
    assert.ok(!response.text.includes('"usage":{'), `no usage chunk reaches the client: ${response.text}`);
    assert.ok(response.text.endsWith('data: [DONE]\n\n'));

    const [row] = await waitForLedger(ks, projectId, 1);
    assert.equal(row.outcome, 'ok');
    assert.equal(row.usage_reported, true, 'the usage is the provider report, not an estimate');
    assert.equal(row.units.input_tokens, 12);
    assert.equal(row.units.output_tokens, 34);
  });

  test('streamed usage metered and hidden', async () => {
    const { projectId, token } = await newProject();
    const response = await chat(token, { stream: true });
    assert.equal(response.status, 200, response.text);
    const sent = upstream.requests[0];
    assert.deepEqual(sent.body.stream_options, { include_usage: true });
    assert.equal(Number(sent.headers['content-length']), sent.raw.length, 'Content-Length matches the rewritten body');
    assert.ok(response.text.endsWith('data: [DONE]\n\n'));
    assert.ok(!response.text.includes('"usage"'), `no usage reaches the client: ${response.text}`);
    assert.equal(response.text.split('data: ').length - 1, 5, 'three parts, the finish chunk and [DONE]');

    const [row] = await waitForLedger(ks, projectId, 1);
    assert.equal(row.outcome, 'ok');
    assert.equal(row.units.input_tokens, 12);
    assert.equal(row.units.output_tokens, 34);
    assert.equal(row.usage_reported, true);
  });

  test('stream with Content-Length ends intact', async () => {
    const { projectId, token } = await newProject();
    upstream.behavior = { contentLength: true, parts: 2 };
    const response = await chat(token, { stream: true });
    assert.equal(response.status, 200, response.text);
    const expected = [0, 1].map((i) => `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: `part-${i} ` } }] })}\n\n`).join('') + 'data: [DONE]\n\n';
    assert.equal(response.text, expected);
    const [row] = await waitForLedger(ks, projectId, 1);
    assert.equal(row.units.output_tokens, 34);
  });

  test('overhead excludes a slow upload', async () => {
    const { token } = await newProject();
    const payload = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const overhead = await new Promise((resolve, reject) => {
      const req = http.request(new URL('/v1/openai/v1/chat/completions', ks.proxyUrl), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers['x-keystore-overhead-ms']));
      });
      req.on('error', reject);
      req.flushHeaders();
      setTimeout(() => req.end(payload), 700);
    });
    assert.ok(Number(overhead) < 300, `overhead ${overhead} ms leaves out the 700 ms upload`);
  });

  test('model list is one plain request', async () => {
    const { projectId, token } = await newProject();
    const response = await proxyRequest(ks, { method: 'GET', path: '/v1/openai/v1/models', token });
    assert.equal(response.status, 200, response.text);
    const [row] = await waitForLedger(ks, projectId, 1);
    assert.equal(row.outcome, 'ok');
    assert.equal(row.units.requests, 1);
    assert.equal(row.units.output_tokens, 0, 'no tokens estimated for a call that reports none');
    assert.equal(row.units.input_tokens, 0);
  });

  test('stream without usage is usage_missing', async () => {
    const { projectId, token } = await newProject();
    upstream.behavior = { omitUsage: true };
    const response = await chat(token, { stream: true });
    assert.equal(response.status, 200, response.text);
    const [row] = await waitForLedger(ks, projectId, 1);
    assert.equal(row.outcome, 'usage_missing');
    assert.equal(row.usage_reported, false);
    assert.ok(row.units.output_tokens > 0, 'never a silent zero');
    assert.equal(row.units.output_tokens, Math.ceil(response.body.length / 4));
    const metrics = await fetch(`${ks.adminUrl}/metrics`).then((r) => r.text());
    assert.match(metrics, /keystore_usage_missing_total\{provider="openai"\} [1-9]/);
  });

  test('usage is still recorded when the client hangs up mid-stream', async () => {
    const { projectId, token } = await newProject();
    upstream.behavior = { parts: 6, intervalMs: 150 };
    await new Promise((resolve) => {
      const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] });
      const req = http.request(new URL('/v1/openai/v1/chat/completions', ks.proxyUrl), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => resolve());
      req.end(body);
    });
    const rows = await waitForLedger(ks, projectId, 1, { timeoutMs: 5000 });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].outcome, 'client_aborted');
    assert.equal(rows[0].units.input_tokens, 12, 'the usage the provider reported after the hang-up');
    assert.equal(rows[0].units.output_tokens, 34);
    assert.equal(upstream.streamsFinished > 0, true);
  });

  test('BYOK row priced at list price', async () => {
    const { projectId, token } = await newProject();
    await apiExpect(ks, 'POST', '/api/v1/prices', { provider: 'openai', unit: 'input_tokens', usd_per_million: '0.15' }, 201);
    await apiExpect(ks, 'POST', '/api/v1/prices', { provider: 'openai', unit: 'output_tokens', usd_per_million: '0.6' }, 201);
    await sleep(300);
    const response = await chat(token);
    assert.equal(response.status, 200, response.text);
    const overhead = response.headers['x-keystore-overhead-ms'];
    assert.match(overhead ?? '', /^\d+\.\d{3}$/, 'x-keystore-overhead-ms is milliseconds with three decimals');
    assert.ok(Number(overhead) < 1000, `overhead ${overhead} ms`);

    const [row] = await waitForLedger(ks, projectId, 1);
    // 12 * 0.15 + 34 * 0.60 = 1.8 + 20.4 = 22.2 micro-dollars, rounded once to 22.
    assert.equal(row.cost_micros, 22);
    assert.equal(row.billable, false);
    assert.deepEqual(row.prices, { input_tokens: 150000, output_tokens: 600000 });
  });

  test('an agent over its requests-per-minute limit gets 429 with the rate-limit headers', async () => {
    const { projectId, agentId, token } = await newProject();
    await apiExpect(ks, 'PATCH', `/api/v1/agents/${agentId}`, { rpm_limit: 2 }, 200);
    await sleep(300);
    assert.equal((await chat(token)).status, 200);
    assert.equal((await chat(token)).status, 200);
    const limited = await chat(token);
    const body = assertKeystoreError(limited, 429, 'rate_limited');
    assert.equal(body.error.limit_type, 'rpm');
    assert.equal(responseHeaderValues(limited, 'x-ratelimit-limit')[0], '2');
    assert.equal(responseHeaderValues(limited, 'x-ratelimit-remaining')[0], '0');
    const retryAfter = Number(responseHeaderValues(limited, 'retry-after')[0]);
    assert.ok(retryAfter >= 1, `Retry-After ${retryAfter}`);
    assert.ok(retryAfter <= 60, `Retry-After ${retryAfter}`);
    const reset = Number(responseHeaderValues(limited, 'x-ratelimit-reset')[0]);
    assert.ok(reset * 1000 > Date.now(), `X-RateLimit-Reset ${reset} is in the future`);
    assert.ok(reset * 1000 <= Date.now() + 61000, `X-RateLimit-Reset ${reset} is within a minute`);
    assert.equal(upstream.requests.length, 2);
    const rows = await waitForLedger(ks, projectId, 2);
    assert.equal(rows.length, 2, 'the rejected request has no ledger row');
  });

  test('twenty concurrent requests against a limit of five admit exactly five', async () => {
    const { agentId, token } = await newProject();
    await apiExpect(ks, 'PATCH', `/api/v1/agents/${agentId}`, { rpm_limit: 5 }, 200);
    await sleep(300);
    const responses = await Promise.all(Array.from({ length: 20 }, () => chat(token)));
    const statuses = responses.map((response) => response.status);
    assert.equal(statuses.filter((status) => status === 200).length, 5);
    assert.equal(statuses.filter((status) => status === 429).length, 15);
    assert.equal(upstream.requests.length, 5);
  });

  test('concurrent requests cannot together pass a nearly spent budget', async () => {
    const { projectId, token } = await newProject();
    // $0.95 per request first, so one request spends most of the $1.00 budget.
    await apiExpect(ks, 'PATCH', `/api/v1/projects/${projectId}`, { budget_cents: 100 }, 200);
    await apiExpect(ks, 'POST', '/api/v1/prices', { provider: 'openai', model: 'budget-model', unit: 'requests', usd_per_million: '950000' }, 201);
    await sleep(300);
    const first = await chat(token, { model: 'budget-model' });
    assert.equal(first.status, 200, first.text);
    await waitForLedger(ks, projectId, 1);

    // Now $0.04 per request: $0.05 left, so exactly one of 50 concurrent requests fits.
    await apiExpect(ks, 'POST', '/api/v1/prices', { provider: 'openai', model: 'budget-model', unit: 'requests', usd_per_million: '40000' }, 201);
    await sleep(300);
    upstream.requests.length = 0;
    const responses = await Promise.all(Array.from({ length: 50 }, () => chat(token, { model: 'budget-model' })));
    const admitted = responses.filter((response) => response.status === 200);
    const refused = responses.filter((response) => response.status !== 200);
    assert.equal(admitted.length, 1, `statuses: ${responses.map((response) => response.status)}`);
    for (const response of refused) {
      assertKeystoreError(response, 402, 'budget_exceeded');
    }
    assert.equal(upstream.requests.length, 1, 'refused requests never reach the upstream');
    const rows = await waitForLedger(ks, projectId, 2);
    const total = rows.reduce((sum, row) => sum + row.cost_micros, 0);
    // $0.95 and $0.04 per request, plus 12 input and 34 output tokens at the openai prices set
    // above (22 micro-dollars a row): $0.990044 of the $1.00.
    assert.equal(total, 950000 + 40000 + 2 * 22);
  });

  test('tokens-per-minute limit counts reported usage', async () => {
    const { agentId, token } = await newProject();
    // Each call reports 12 + 34 = 46 tokens; a limit of 50 admits the second call (46 used)
    // and refuses the third (92 used).
    await apiExpect(ks, 'PATCH', `/api/v1/agents/${agentId}`, { tpm_limit: 50 }, 200);
    await sleep(300);
    assert.equal((await chat(token)).status, 200);
    await sleep(100);
    assert.equal((await chat(token)).status, 200);
    await sleep(100);
    const limited = await chat(token);
    const body = assertKeystoreError(limited, 429, 'rate_limited');
    assert.equal(body.error.limit_type, 'tpm');
    assert.equal(responseHeaderValues(limited, 'x-ratelimit-limit')[0], '50');
  });

  test('budget warning logged once at the threshold', async () => {
    const { projectId, agentId, token } = await newProject();
    await apiExpect(ks, 'PATCH', `/api/v1/agents/${agentId}`, { budget_cents: 100, budget_warn_percent: 50 }, 200);
    await apiExpect(ks, 'POST', '/api/v1/prices', { provider: 'openai', model: 'warn-model', unit: 'requests', usd_per_million: '300000' }, 201);
    await sleep(300);
    for (let i = 0; i < 3; i += 1) {
      assert.equal((await chat(token, { model: 'warn-model', max_tokens: 1 })).status, 200);
    }
    await waitForLedger(ks, projectId, 3);
    const warnings = ks.stderrText().split('\n').filter((line) => line.includes('"msg":"budget.warning"') && line.includes(agentId));
    assert.equal(warnings.length, 1, `one warning line: ${warnings}`);
    assert.match(warnings[0], /"scope":"agent"/);
  });

  test('reservation released when the upstream is unreachable', async () => {
    const { projectId, token } = await newProject();
    await apiExpect(ks, 'PUT', `/api/v1/projects/${projectId}/providers/anthropic/key`, { api_key: 'sk-ant-test-METER-0001' }, 200);
    await apiExpect(ks, 'PATCH', `/api/v1/projects/${projectId}/providers/anthropic`, { mode: 'byok', status: 'enabled' }, 200);
    // $0.60 a request against a $1.00 budget: a second reservation fits only if the first
    // one was released.
    await apiExpect(ks, 'PATCH', `/api/v1/projects/${projectId}`, { budget_cents: 100 }, 200);
    await apiExpect(ks, 'POST', '/api/v1/prices', { provider: 'anthropic', unit: 'requests', usd_per_million: '600000' }, 201);
    await sleep(300);
    for (let i = 0; i < 3; i += 1) {
      const response = await proxyRequest(ks, {
        path: '/v1/anthropic/v1/messages',
        token,
        headers: { 'anthropic-version': '2023-06-01' },
        json: { model: 'claude-haiku-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
      });
      assertKeystoreError(response, 502, 'upstream_unreachable', `attempt ${i}`);
    }
    const rows = await waitForLedger(ks, projectId, 3);
    assert.deepEqual(rows.map((row) => row.cost_micros), [0, 0, 0]);
  });

  test('the admin listener serves Prometheus metrics without a key', async () => {
    const response = await fetch(`${ks.adminUrl}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.match(text, /# TYPE keystore_proxy_requests_total counter/);
    assert.match(text, /keystore_proxy_requests_total\{provider="openai",mode="byok",outcome="ok"\} [1-9]\d*/);
    assert.match(text, /keystore_rate_limit_rejections_total\{provider="openai",limit_type="rpm"\} [1-9]/);
    assert.match(text, /keystore_budget_rejections_total\{scope="project"\} 49/);
    assert.match(text, /keystore_proxy_overhead_seconds_bucket\{provider="openai",le="\+Inf"\} [1-9]/);
    assert.ok(!text.includes('sk-test-METER'), 'no key in the metrics');
  });
});
