// An independent recount of the ledger. Randomized traffic (OpenAI and Anthropic, plain and
// streamed, Resend emails, client hang-ups, upstream errors, four agents in two projects, both
// modes) runs against upstreams that log every usage figure they send. Afterwards every
// ledger row, and the totals per project, agent and provider, must equal what the logs and
// the price table give, to the micro-dollar.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { addPoolCredential, apiExpect, mintToken, startKeystore } from '../harness/keystore.mjs';

const kRequests = 160;
const kConcurrency = 8;
// micro-dollars per million units, as set through the price API below
const kPrices = {
  openai: { input_tokens: 150000, cached_input_tokens: 75000, output_tokens: 600000 },
  anthropic: { input_tokens: 3000000, output_tokens: 15000000 },
  resend: { emails: 400000000 },
};

// A deterministic generator, so a failure can be replayed.
function generator(seed) {
  let state = seed >>> 0;
  return (n) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % n;
  };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// One upstream per provider. `emitted` maps a request id to the units the upstream reported.
async function startUpstream(provider, emitted, random) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      const id = req.headers['x-request-id'];
      const plan = provider === 'resend' ? body.subject : body.messages?.[0]?.content;
      if (plan === 'error') {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'mock failure', type: 'server_error' } }));
        return;
      }
      if (provider === 'resend') {
        emitted.set(id, { provider, units: { emails: 1, requests: 1 } });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: `email-${id}` }));
        return;
      }
      const input = 1 + random(5000);
      const cached = provider === 'openai' ? random(input) : 0;
      const output = 1 + random(2000);
      const units = provider === 'openai'
        ? { input_tokens: input - cached, cached_input_tokens: cached, output_tokens: output, requests: 1 }
        : { input_tokens: input, output_tokens: output, requests: 1 };
      if (!body.stream) {
        emitted.set(id, { provider, units });
        res.writeHead(200, { 'content-type': 'application/json' });
        const usage = provider === 'openai'
          ? { prompt_tokens: input, completion_tokens: output, total_tokens: input + output, prompt_tokens_details: { cached_tokens: cached } }
          : { input_tokens: input, output_tokens: output };
        res.end(JSON.stringify({ id, model: body.model, usage, choices: [], content: [] }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const parts = 4;
      if (provider === 'anthropic') {
        res.write(`event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { id, model: body.model, usage: { input_tokens: input, output_tokens: 1 } } })}\n\n`);
      }
      for (let i = 0; i < parts; i += 1) {
        await sleep(30);
        res.write(provider === 'openai'
          ? `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', model: body.model, choices: [{ index: 0, delta: { content: `p${i}` } }], usage: null })}\n\n`
          : `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: `p${i}` } })}\n\n`);
      }
      if (provider === 'openai') {
        if (body.stream_options?.include_usage) {
          emitted.set(id, { provider, units });
          res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', model: body.model, choices: [], usage: { prompt_tokens: input, completion_tokens: output, total_tokens: input + output, prompt_tokens_details: { cached_tokens: cached } } })}\n\n`);
        }
        res.end('data: [DONE]\n\n');
      } else {
        emitted.set(id, { provider, units });
        res.write(`event: message_delta\ndata: ${JSON.stringify({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: output } })}\n\n`);
        res.end(`event: message_stop\ndata: {"type":"message_stop"}\n\n`);
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

// Sends one request; with `abortAfterFirstChunk` the client hangs up once the first bytes
// arrive. Resolves the response's request id.
function send(ks, { path, token, body, headers = {}, abortAfterFirstChunk = false }) {
  const payload = JSON.stringify(body);
  return new Promise((resolve) => {
    const req = http.request(new URL(path, ks.proxyUrl), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
    }, (res) => {
      const id = res.headers['x-request-id'];
      if (abortAfterFirstChunk) {
        res.once('data', () => {
          req.destroy();
          resolve(id);
        });
        return;
      }
      res.resume();
      res.on('end', () => resolve(id));
    });
    req.on('error', () => resolve(undefined));
    req.end(payload);
  });
}

function expectedCost(provider, units) {
  let total = 0n;
  for (const [unit, price] of Object.entries(kPrices[provider])) {
    total += BigInt(units[unit] ?? 0) * BigInt(price);
  }
  return Number((total + 500000n) / 1000000n);
}

describe('ledger recount', () => {
  const emitted = new Map();
  const random = generator(20261204);
  const upstreams = {};
  let ks;

  before(async () => {
    for (const provider of ['openai', 'anthropic', 'resend']) {
      upstreams[provider] = await startUpstream(provider, emitted, random);
    }
    ks = await startKeystore({ upstreams: Object.fromEntries(Object.entries(upstreams).map(([id, up]) => [id, up.url])) });
  });

  after(async () => {
    await ks?.close();
    await Promise.all(Object.values(upstreams).map((up) => up.close()));
  });

  test('ledger totals equal the upstreams own usage logs to the micro-dollar', async () => {
    for (const [provider, prices] of Object.entries(kPrices)) {
      for (const [unit, micros] of Object.entries(prices)) {
        const usd = (micros / 1e6).toString();
        await apiExpect(ks, 'POST', '/api/v1/prices', { provider, unit, usd_per_million: usd }, 201);
      }
    }
    await addPoolCredential(ks, 'openai', 'sk-test-RECOUNT-POOL');
    const agents = [];
    for (const [index, mode] of ['byok', 'marketplace'].entries()) {
      const project = await apiExpect(ks, 'POST', '/api/v1/projects', { name: `recount-${mode}` }, 201);
      await apiExpect(ks, 'PUT', `/api/v1/projects/${project.id}/providers/openai/key`, { api_key: `sk-test-RECOUNT-${index}` }, 200);
      await apiExpect(ks, 'PATCH', `/api/v1/projects/${project.id}/providers/openai`, { mode, status: 'enabled' }, 200);
      for (const provider of ['anthropic', 'resend']) {
        await apiExpect(ks, 'PUT', `/api/v1/projects/${project.id}/providers/${provider}/key`, { api_key: `key-RECOUNT-${provider}-${index}` }, 200);
        await apiExpect(ks, 'PATCH', `/api/v1/projects/${project.id}/providers/${provider}`, { mode: 'byok', status: 'enabled' }, 200);
      }
      for (const name of ['alpha', 'beta']) {
        const agent = await apiExpect(ks, 'POST', `/api/v1/projects/${project.id}/agents`, { name }, 201);
        const { token } = await mintToken(ks, agent.id);
        agents.push({ projectId: project.id, agentId: agent.id, token });
      }
    }
    await sleep(300);

    const plans = Array.from({ length: kRequests }, () => {
      const provider = ['openai', 'openai', 'anthropic', 'resend'][random(4)];
      const kind = ['plain', 'plain', 'stream', 'stream', 'abort', 'error'][random(6)];
      return { agent: agents[random(agents.length)], provider, kind: provider === 'resend' && kind !== 'error' ? 'plain' : kind };
    });
    const sentIds = [];
    for (let start = 0; start < plans.length; start += kConcurrency) {
      const batch = plans.slice(start, start + kConcurrency).map(({ agent, provider, kind }) => {
        const plan = kind === 'error' ? 'error' : 'ok';
        if (provider === 'resend') {
          return send(ks, { path: '/v1/resend/emails', token: agent.token, body: { from: 'a@x.test', to: 'b@y.test', subject: plan, text: 't' } });
        }
        const stream = kind === 'stream' || kind === 'abort';
        const body = provider === 'openai'
          ? { model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: plan }] }
          : { model: 'claude-haiku-4-5', max_tokens: 4096, stream, messages: [{ role: 'user', content: plan }] };
        const headers = provider === 'anthropic' ? { 'anthropic-version': '2023-06-01' } : {};
        return send(ks, { path: provider === 'openai' ? '/v1/openai/v1/chat/completions' : '/v1/anthropic/v1/messages', token: agent.token, body, headers, abortAfterFirstChunk: kind === 'abort' });
      });
      sentIds.push(...(await Promise.all(batch)));
    }
    assert.equal(sentIds.filter((id) => id === undefined).length, 0, 'every request got an answer');

    // Rows of aborted streams arrive once the proxy has read the rest of the response.
    const rows = new Map();
    const deadline = Date.now() + 10000;
    while (Date.now() < deadline) {
      for (const { projectId } of agents) {
        const page = await apiExpect(ks, 'GET', `/api/v1/projects/${projectId}/ledger?limit=1000`, undefined, 200);
        for (const row of page.data) {
          rows.set(row.request_id, row);
        }
      }
      if (rows.size >= kRequests) {
        break;
      }
      await sleep(200);
    }
    assert.equal(rows.size, kRequests, 'one ledger row per request');

    const totals = (entries) => {
      const sums = new Map();
      for (const { key, cost, units } of entries) {
        const sum = sums.get(key) ?? { cost: 0, input: 0, output: 0 };
        sum.cost += cost;
        sum.input += units.input_tokens ?? 0;
        sum.output += units.output_tokens ?? 0;
        sums.set(key, sum);
      }
      return Object.fromEntries([...sums.entries()].sort());
    };
    const fromLedger = [];
    const fromLogs = [];
    for (const row of rows.values()) {
      const key = `${row.project_id}/${row.agent_id}/${row.provider}`;
      fromLedger.push({ key, cost: row.cost_micros, units: row.units });
      const log = emitted.get(row.request_id);
      const units = row.upstream_status === 200 && log ? log.units : {};
      const cost = log && row.upstream_status === 200 ? expectedCost(log.provider, log.units) : 0;
      fromLogs.push({ key, cost, units });
      assert.equal(row.cost_micros, cost, `row ${row.request_id} (${row.provider}, ${row.outcome}) costs what its usage log gives`);
      if (log && row.upstream_status === 200) {
        assert.equal(row.units.input_tokens, units.input_tokens ?? 0, `row ${row.request_id} input tokens`);
        assert.equal(row.units.output_tokens, units.output_tokens ?? 0, `row ${row.request_id} output tokens`);
        assert.equal(row.billable, row.mode === 'marketplace');
      }
    }
    assert.deepEqual(totals(fromLedger), totals(fromLogs));
    const outcomes = new Set([...rows.values()].map((row) => row.outcome));
    for (const outcome of ['ok', 'upstream_error', 'client_aborted']) {
      assert.ok(outcomes.has(outcome), `the traffic included ${outcome} rows: ${[...outcomes]}`);
    }
  });
});
