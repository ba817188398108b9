// The usage ledger holds exactly one row per proxied request, also when the upstream fails or
// the client hangs up. A row carries the request's ids, provider, method, path, status and
// sizes. A request the proxy rejected before forwarding gets no row.

import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { rawHeaderValues } from '../mocks/recorder.mjs';
import { proxyRequest } from '../harness/http.mjs';
import { mintToken, waitForLedger } from '../harness/keystore.mjs';
import { startStack } from '../harness/stack.mjs';

function lastRequestId(mock) {
  const record = mock.requests.at(-1);
  assert.ok(record, `${mock.name} mock received a request`);
  const ids = rawHeaderValues(record, 'x-request-id');
  assert.equal(ids.length, 1, `${mock.name} mock received exactly one x-request-id`);
  return ids[0];
}

// Opens a streaming request, reads the first chunk and destroys the connection.
function hangUpAfterFirstChunk(ks, token, path, body) {
  const url = new URL(ks.proxyUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path,
      agent: false,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    req.on('response', (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (error) => {
      if (!req.destroyed) {
        reject(error);
      }
    });
    req.end(JSON.stringify(body));
  });
}

describe('usage ledger', () => {
  let stack;
  let ks;
  let project;
  // request id -> the row expected for it
  const expected = new Map();
  let rows = [];

  before(async () => {
    stack = await startStack();
    ks = stack.ks;
    project = stack.project;
    const { openai, anthropic, resend } = stack.mocks;
    const token = project.token;

    const chatBody = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const chat = await proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token,
      headers: ['Content-Type', 'application/json'],
      body: chatBody,
    });
    assert.equal(chat.status, 200, `chat is 200: ${chat.text}`);
    expected.set(lastRequestId(openai), {
      provider: 'openai', method: 'POST', pathPart: 'chat/completions', upstreamStatus: 200,
      bytesIn: Buffer.byteLength(chatBody), bytesOut: chat.body.length, success: true,
    });

    const messageBody = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    const message = await proxyRequest(ks, {
      path: '/v1/anthropic/v1/messages',
      token,
      headers: ['Content-Type', 'application/json'],
      body: messageBody,
    });
    assert.equal(message.status, 200, `message is 200: ${message.text}`);
    expected.set(lastRequestId(anthropic), {
      provider: 'anthropic', method: 'POST', pathPart: 'messages', upstreamStatus: 200,
      bytesIn: Buffer.byteLength(messageBody), bytesOut: message.body.length, success: true,
    });

    const emailBody = JSON.stringify({ from: 'a@example.test', to: 'b@example.test', subject: 's', text: 't' });
    const email = await proxyRequest(ks, {
      path: '/v1/resend/emails',
      token,
      headers: ['Content-Type', 'application/json'],
      body: emailBody,
    });
    assert.equal(email.status, 200, `email is 200: ${email.text}`);
    expected.set(lastRequestId(resend), {
      provider: 'resend', method: 'POST', pathPart: 'emails', upstreamStatus: 200,
      bytesIn: Buffer.byteLength(emailBody), bytesOut: email.body.length, success: true,
    });

    const models = await proxyRequest(ks, { method: 'GET', path: '/v1/openai/v1/models', token });
    assert.equal(models.status, 200, `models is 200: ${models.text}`);
    expected.set(lastRequestId(openai), {
      provider: 'openai', method: 'GET', pathPart: 'models', upstreamStatus: 200,
      bytesIn: 0, bytesOut: models.body.length, success: true,
    });

    anthropic.setBehavior({ status: 429 });
    const limited = await proxyRequest(ks, { path: '/v1/anthropic/v1/messages', token, body: messageBody });
    assert.equal(limited.status, 429, `upstream 429 is relayed: ${limited.text}`);
    expected.set(lastRequestId(anthropic), {
      provider: 'anthropic', method: 'POST', pathPart: 'messages', upstreamStatus: 429, success: false,
    });
    anthropic.setBehavior({});

    openai.setBehavior({ garbage: true });
    const garbage = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token, body: chatBody });
    assert.equal(garbage.status, 502, `garbage answer is 502: ${garbage.text}`);
    expected.set(lastRequestId(openai), { provider: 'openai', method: 'POST', pathPart: 'chat/completions', success: false });

    openai.setBehavior({ sse: { events: 10, intervalMs: 100 } });
    await hangUpAfterFirstChunk(ks, token, '/v1/openai/v1/chat/completions', {
      model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }],
    });
    expected.set(lastRequestId(openai), { provider: 'openai', method: 'POST', pathPart: 'chat/completions' });
    openai.setBehavior({});

    // Rejected before forwarding: these must not add rows.
    const readOnly = await mintToken(ks, project.agentId, { scopes: ['provider:openai:read'] });
    const secondToken = await mintToken(ks, project.agentId);
    const rejected = [
      await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', body: chatBody }),
      await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token: `ks_${randomBytes(32).toString('hex')}`, body: chatBody }),
      await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token: readOnly.token, body: chatBody }),
      await proxyRequest(ks, { path: '/v1/openai/v1/%2e%2e/x', token, body: chatBody }),
      await proxyRequest(ks, {
        path: '/v1/openai/v1/chat/completions',
        headers: ['Authorization', `Bearer ${token}`, 'Authorization', `Bearer ${secondToken.token}`],
        body: chatBody,
      }),
    ];
    for (const response of rejected) {
      assert.ok(response.status >= 400, `a rejected request has a 4xx status: ${response.status}`);
      assert.ok(response.status < 500, `a rejected request has a 4xx status: ${response.status}`);
    }

    rows = await waitForLedger(ks, project.projectId, expected.size, { settleMs: 700 });
  });

  after(async () => {
    await stack?.close();
  });

  test('one row per proxied request', () => {
    assert.equal(rows.length, expected.size, `ledger has ${expected.size} rows: ${JSON.stringify(rows, null, 1)}`);
    const ids = rows.map((row) => row.request_id);
    assert.equal(new Set(ids).size, ids.length, 'request ids are unique');
    for (const requestId of expected.keys()) {
      assert.ok(ids.includes(requestId), `a row has the request id the upstream received (${requestId})`);
    }
  });

  test('rows carry request identity', () => {
    for (const row of rows) {
      const where = `row ${row.request_id}`;
      assert.equal(row.project_id, project.projectId, `${where}: project_id`);
      assert.equal(row.agent_id, project.agentId, `${where}: agent_id`);
      assert.equal(row.token_id, project.tokenId, `${where}: token_id`);
      assert.equal(row.mode, 'byok', `${where}: mode`);
    }
  });

  test('rows carry request details', () => {
    for (const [requestId, want] of expected) {
      const row = rows.find((item) => item.request_id === requestId);
      if (row === undefined) {
        assert.fail(`no row for request ${requestId}`);
      }
      const where = `row for ${want.provider} ${want.method} ${want.pathPart}`;
      assert.equal(row.provider, want.provider, `${where}: provider`);
      assert.equal(row.method, want.method, `${where}: method`);
      assert.ok(String(row.path).includes(want.pathPart), `${where}: path contains ${want.pathPart}, is ${row.path}`);
      if (want.upstreamStatus !== undefined) {
        assert.equal(row.upstream_status, want.upstreamStatus, `${where}: upstream_status`);
      }
      if (want.bytesIn !== undefined) {
        assert.equal(row.bytes_in, want.bytesIn, `${where}: bytes_in is the request body size`);
      }
      if (want.bytesOut !== undefined) {
        assert.equal(row.bytes_out, want.bytesOut, `${where}: bytes_out is the response body size`);
      }
      assert.equal(typeof row.latency_ms, 'number', `${where}: latency_ms is a number`);
      assert.ok(row.latency_ms >= 0, `${where}: latency_ms is not negative`);
      assert.equal(typeof row.outcome, 'string', `${where}: outcome is a string`);
      assert.ok(row.outcome.length > 0, `${where}: outcome is not empty`);
    }
  });

  test('failed requests have distinct outcome', () => {
    const outcomeOf = (predicate) => {
      const entry = [...expected].find(([, want]) => predicate(want));
      return rows.find((row) => row.request_id === entry?.[0])?.outcome;
    };
    const success = outcomeOf((want) => want.success === true);
    const upstreamFailure = outcomeOf((want) => want.success === false && want.upstreamStatus === undefined);
    assert.ok(success, 'a successful request has an outcome');
    assert.ok(upstreamFailure, 'the garbage-answer request has an outcome');
    assert.notEqual(upstreamFailure, success, 'an upstream failure is not recorded with the success outcome');
  });
});

// Rows of requests served at once by several I/O threads reach the ledger through each
// thread's own buffer. Each request's body has its own size, so a row that took another row's
// fields would show a wrong bytes_in.
describe('usage ledger under concurrent requests', () => {
  let stack;

  before(async () => {
    stack = await startStack({ keystore: { extraArgs: ['--threads', '3', '--ledger-flush-ms', '20'] } });
  });

  after(async () => {
    await stack?.close();
  });

  test('concurrent requests get one row each', async () => {
    const { ks, project } = stack;
    const total = 240;
    const bodies = Array.from({ length: total }, (_, i) =>
      JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(i + 1) }] }));
    const responses = await Promise.all(bodies.map((body) => proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token: project.token,
      headers: ['Content-Type', 'application/json'],
      body,
    })));

    const bytesInById = new Map();
    responses.forEach((response, i) => {
      assert.equal(response.status, 200, `request ${i} is 200: ${response.text}`);
      const id = response.headers['x-request-id'];
      assert.ok(id, `request ${i} has an x-request-id`);
      bytesInById.set(id, Buffer.byteLength(bodies[i]));
    });
    assert.equal(bytesInById.size, total, 'every response has its own request id');

    const deadline = Date.now() + 10000;
    let rows = [];
    while (rows.length < total && Date.now() < deadline) {
      const listed = await ks.api('GET', `/api/v1/projects/${project.projectId}/ledger?limit=1000`);
      assert.equal(listed.status, 200, `GET ledger returned ${listed.status}: ${listed.text}`);
      rows = listed.json.data;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(rows.length, total, `the ledger has ${total} rows`);
    for (const row of rows) {
      assert.ok(bytesInById.has(row.request_id), `row ${row.request_id} belongs to a response`);
      assert.equal(row.bytes_in, bytesInById.get(row.request_id), `bytes_in of ${row.request_id}`);
      assert.equal(row.upstream_status, 200, `upstream_status of ${row.request_id}`);
    }
    assert.equal(new Set(rows.map((row) => row.request_id)).size, total, 'no row is stored twice');
  });
});
