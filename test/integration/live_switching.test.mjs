// Live changes under load: 50 concurrent clients, half of them streaming, while the project's
// OpenAI mode is switched 20 times between BYOK and Marketplace and its BYOK key is replaced 5
// times. No request may fail, every upstream request carries exactly one credential that had
// been stored before the request arrived, and each ledger row records the mode actually used.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { addPoolCredential, apiExpect, mintToken, startKeystore, waitForLedger } from '../harness/keystore.mjs';

const kClients = 50;
const kModeSwitches = 20;
const kKeyReplacements = 5;
const kStreamEvents = 4;
const kEventIntervalMs = 15;
const kPoolKeys = ['sk-test-SWITCH-POOL-A', 'sk-test-SWITCH-POOL-B'];

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// An OpenAI-shaped upstream that accepts any key in `known` (keys are added before they are
// stored in Keystore and never removed, so in-flight requests may finish on an old key) and
// records every credential header it saw.
async function startSwitchUpstream() {
  const upstream = { known: new Set(kPoolKeys), requests: [], url: '' };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      const authorizations = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i].toLowerCase();
        if (['authorization', 'x-api-key', 'api-key'].includes(name)) {
          authorizations.push(req.rawHeaders[i + 1]);
        }
      }
      const key = authorizations.length === 1 && authorizations[0].startsWith('Bearer ') ? authorizations[0].slice(7) : '';
      upstream.requests.push({ authorizations, key, requestId: req.headers['x-request-id'], at: Date.now() });
      if (!upstream.known.has(key)) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'Incorrect API key provided', type: 'invalid_request_error' } }));
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (let i = 0; i < kStreamEvents; i += 1) {
          res.write(`data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: `part-${i}` } }] })}\n\n`);
          await sleep(kEventIntervalMs);
        }
        res.end('data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' } }] }));
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

// One request through the proxy on a keep-alive agent; resolves {status, requestId, body}.
function send(ks, agent, token, stream) {
  const payload = JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: 'hi' }] });
  return new Promise((resolve) => {
    const url = new URL('/v1/openai/v1/chat/completions', ks.proxyUrl);
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, requestId: res.headers['x-request-id'], body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (error) => resolve({ status: 0, error: error.message }));
    });
    req.on('error', (error) => resolve({ status: 0, error: error.message }));
    req.end(payload);
  });
}

// Every ledger row of a project, newest first, reading pages of 1000 backwards in time. Rows
// that share the millisecond at a page boundary are fetched with a one-millisecond window.
async function allLedgerRows(ks, projectId) {
  const byId = new Map();
  let until = '';
  for (;;) {
    const page = await apiExpect(ks, 'GET', `/api/v1/projects/${projectId}/ledger?limit=1000${until}`, undefined, 200);
    for (const row of page.data) {
      byId.set(row.request_id, row);
    }
    if (page.data.length < 1000) {
      return [...byId.values()];
    }
    const boundary = page.data[page.data.length - 1].time;
    const next = new Date(new Date(boundary).getTime() + 1).toISOString();
    const same = await apiExpect(ks, 'GET', `/api/v1/projects/${projectId}/ledger?limit=1000&since=${boundary}&until=${next}`, undefined, 200);
    for (const row of same.data) {
      byId.set(row.request_id, row);
    }
    until = `&until=${boundary}`;
  }
}

describe('live mode and key changes under load', () => {
  let upstream;
  let ks;

  before(async () => {
    upstream = await startSwitchUpstream();
    ks = await startKeystore({ upstreams: { openai: upstream.url } });
  });

  after(async () => {
    await ks?.close();
    await upstream?.close();
  });

  test('switching modes and replacing keys fails no request and uses only stored credentials', async () => {
    const project = await apiExpect(ks, 'POST', '/api/v1/projects', { name: 'switching' }, 201);
    const agent = await apiExpect(ks, 'POST', `/api/v1/projects/${project.id}/agents`, { name: 'load' }, 201);
    const { token } = await mintToken(ks, agent.id);
    const poolIds = new Set();
    for (const key of kPoolKeys) {
      poolIds.add((await addPoolCredential(ks, 'openai', key, { scope: 'dedicated', project: project.id })).id);
    }
    const byokKeys = ['sk-test-SWITCH-BYOK-0'];
    upstream.known.add(byokKeys[0]);
    await apiExpect(ks, 'PUT', `/api/v1/projects/${project.id}/providers/openai/key`, { api_key: byokKeys[0] }, 200);
    await apiExpect(ks, 'PATCH', `/api/v1/projects/${project.id}/providers/openai`, { mode: 'byok', status: 'enabled' }, 200);

    let running = true;
    const results = [];
    const clients = Array.from({ length: kClients }, async (_, index) => {
      const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const stream = index % 2 === 0;
      while (running) {
        results.push({ stream, ...(await send(ks, httpAgent, token, stream)) });
      }
      httpAgent.destroy();
    });

    // 20 mode switches, with a key replacement after every fourth one.
    let mode = 'byok';
    for (let i = 0; i < kModeSwitches; i += 1) {
      await sleep(60);
      mode = mode === 'byok' ? 'marketplace' : 'byok';
      await apiExpect(ks, 'PATCH', `/api/v1/projects/${project.id}/providers/openai`, { mode }, 200);
      if (i % 4 === 3) {
        const next = `sk-test-SWITCH-BYOK-${byokKeys.length}`;
        upstream.known.add(next);
        byokKeys.push(next);
        await apiExpect(ks, 'PUT', `/api/v1/projects/${project.id}/providers/openai/key`, { api_key: next }, 200);
      }
    }
    await sleep(100);
    running = false;
    await Promise.all(clients);

    assert.equal(byokKeys.length, kKeyReplacements + 1);
    const failed = results.filter((result) => result.status !== 200);
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${results.length} requests failed`);
    assert.ok(results.length >= 200, `enough traffic to overlap the changes: ${results.length} requests`);
    for (const result of results.filter((item) => item.stream)) {
      assert.ok(result.body.endsWith('data: [DONE]\n\n'), 'every stream ends complete');
    }

    // Exactly one credential per upstream request, and only keys stored in Keystore.
    const stored = new Set([...kPoolKeys, ...byokKeys]);
    for (const request of upstream.requests) {
      assert.equal(request.authorizations.length, 1, `one credential header: ${JSON.stringify(request.authorizations)}`);
      assert.ok(stored.has(request.key), 'the credential is one that was stored');
    }
    assert.equal(upstream.requests.length, results.length, 'one upstream request per client request');

    // Each ledger row names the mode and credential that the upstream actually saw.
    let rows = [];
    const deadline = Date.now() + 5000;
    do {
      rows = await allLedgerRows(ks, project.id);
      if (rows.length >= results.length) {
        break;
      }
      await sleep(100);
    } while (Date.now() < deadline);
    const byRequest = new Map(rows.map((row) => [row.request_id, row]));
    const seen = new Map(upstream.requests.map((request) => [request.requestId, request.key]));
    assert.equal(byRequest.size, results.length, 'one ledger row per request');
    for (const result of results) {
      const row = byRequest.get(result.requestId);
      assert.ok(row, `ledger row for ${result.requestId}`);
      const key = seen.get(result.requestId);
      const expected = kPoolKeys.includes(key) ? 'marketplace' : 'byok';
      assert.equal(row.mode, expected, `request ${result.requestId} used ${expected}`);
      if (expected === 'marketplace') {
        assert.ok(poolIds.has(row.credential_id), 'a marketplace row names a pool credential');
      }
    }
    const modes = new Set(rows.map((row) => row.mode));
    assert.deepEqual([...modes].sort(), ['byok', 'marketplace'], 'both modes served traffic');

    // An even number of switches ends in BYOK mode: the next request uses the newest key.
    assert.equal(mode, 'byok');
    const last = await send(ks, new http.Agent(), token, false);
    assert.equal(last.status, 200);
    assert.equal(upstream.requests[upstream.requests.length - 1].key, byokKeys[byokKeys.length - 1]);
  });
});
