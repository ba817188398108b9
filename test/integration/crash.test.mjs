// Ledger durability across a crash: `keystore serve` is killed with SIGKILL under load and
// restarted on the same data directory. With the default group commit (50 ms), every request
// that completed more than one commit window before the kill has its row; with
// --ledger-sync strict, every completed request has one. No row is ever duplicated.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { apiExpect, mintToken, startKeystore } from '../harness/keystore.mjs';

const kClients = 16;
const kLoadMs = 1500;
// The default commit window plus the time a commit itself takes on a loaded machine.
const kLossWindowMs = 250;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function send(ks, agent, token) {
  const payload = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  return new Promise((resolve) => {
    const req = http.request(new URL('/v1/openai/v1/chat/completions', ks.proxyUrl), {
      method: 'POST',
      agent,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, requestId: res.headers['x-request-id'], at: Date.now() }));
      res.on('error', () => resolve({ status: 0 }));
    });
    req.on('error', () => resolve({ status: 0 }));
    req.end(payload);
  });
}

// Runs kClients keep-alive clients until the server is killed after kLoadMs; returns the
// completed requests and the time of the kill.
async function loadThenKill(ks, token) {
  let running = true;
  const completed = [];
  const clients = Array.from({ length: kClients }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    while (running) {
      const result = await send(ks, agent, token);
      if (result.status === 200) {
        completed.push(result);
      } else {
        break;
      }
    }
    agent.destroy();
  });
  await sleep(kLoadMs);
  const killedAt = Date.now();
  process.kill(ks.pid, 'SIGKILL');
  running = false;
  await Promise.all(clients);
  return { completed, killedAt };
}

async function ledgerIds(ks, projectId) {
  const ids = [];
  let until = '';
  for (;;) {
    const page = await apiExpect(ks, 'GET', `/api/v1/projects/${projectId}/ledger?limit=1000${until}`, undefined, 200);
    ids.push(...page.data.map((row) => row.request_id));
    if (page.data.length < 1000) {
      return ids;
    }
    const boundary = page.data[page.data.length - 1].time;
    const next = new Date(new Date(boundary).getTime() + 1).toISOString();
    // Rows of the boundary millisecond that the page did not hold. Pages below start strictly
    // earlier, so a request id seen twice is a duplicate row.
    const onPage = new Set(page.data.filter((row) => row.time === boundary).map((row) => row.request_id));
    const same = await apiExpect(ks, 'GET', `/api/v1/projects/${projectId}/ledger?limit=1000&since=${boundary}&until=${next}`, undefined, 200);
    ids.push(...same.data.map((row) => row.request_id).filter((id) => !onPage.has(id)));
    until = `&until=${boundary}`;
  }
}

describe('ledger after a crash', () => {
  let mock;
  const servers = [];

  before(async () => {
    mock = await startOpenAi();
  });

  after(async () => {
    // The first server owns the temporary data directory, so it is closed last.
    for (const server of servers.reverse()) {
      await server.close();
    }
    await mock?.close();
  });

  for (const mode of ['batch', 'strict']) {
    test(`kill -9 under load loses no row outside the commit window (${mode})`, async () => {
      const extraArgs = mode === 'strict' ? ['--ledger-sync', 'strict'] : [];
      const first = await startKeystore({ upstreams: { openai: mock.url }, extraArgs });
      servers.push(first);
      const project = await apiExpect(first, 'POST', '/api/v1/projects', { name: `crash-${mode}` }, 201);
      await apiExpect(first, 'PUT', `/api/v1/projects/${project.id}/providers/openai/key`, { api_key: 'sk-test-OPENAI-0001' }, 200);
      await apiExpect(first, 'PATCH', `/api/v1/projects/${project.id}/providers/openai`, { mode: 'byok', status: 'enabled' }, 200);
      const agent = await apiExpect(first, 'POST', `/api/v1/projects/${project.id}/agents`, { name: 'load' }, 201);
      const { token } = await mintToken(first, agent.id);

      const { completed, killedAt } = await loadThenKill(first, token);
      assert.ok(completed.length >= 100, `enough traffic before the kill: ${completed.length}`);

      const second = await startKeystore({ dataDir: first.dataDir, upstreams: { openai: mock.url }, extraArgs });
      servers.push(second);
      const ids = await ledgerIds(second, project.id);
      assert.equal(new Set(ids).size, ids.length, 'no ledger row is duplicated');
      const stored = new Set(ids);
      const mustHave = mode === 'strict' ? completed : completed.filter((result) => result.at < killedAt - kLossWindowMs);
      const missing = mustHave.filter((result) => !stored.has(result.requestId));
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${mustHave.length} completed requests have no row`);
      await second.stop();
    });
  }
});
