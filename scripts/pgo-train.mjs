// Training run for profile-guided optimization (scripts/build-release.sh): drives a keystore
// binary through the proxy's common paths, so that the compiler learns which branches and
// functions are hot. It reuses the test harness and mock upstreams, which need only Node.js.
//
// Usage: KEYSTORE_BIN=path/to/keystore node scripts/pgo-train.mjs [--requests N]
// Exits non-zero when any request gets an unexpected status, times out, or the server does not
// stop cleanly (a killed server writes no profile), so the release build stops instead of using
// a profile of a broken binary. The release script runs it once more as a check of the result.

import assert from 'node:assert/strict';
import http from 'node:http';
import { parseArgs } from 'node:util';

import { startStack } from '../test/harness/stack.mjs';

const { values: options } = parseArgs({
  options: { requests: { type: 'string', default: '20000' } },
});
const kRequests = Number.parseInt(options.requests, 10);
assert.ok(kRequests > 0, '--requests must be a positive number');
// As many connections as an agent fleet keeps open to one instance, more than the I/O threads.
const kConnections = 16;
// Limits for one request and for the whole run, so that a stalled response fails the build
// instead of blocking it.
const kRequestTimeoutMs = 30_000;
const kRunTimeoutMs = 10 * 60_000;

// Returns the request kinds of the run: each one's share of the requests and how to send it.
function requestKinds(token) {
  const bearer = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say ok.' }] };
  const message = {
    model: 'claude-sonnet-4-5',
    max_tokens: 16,
    messages: [{ role: 'user', content: 'Say ok.' }],
  };
  return [
    { share: 60, path: '/v1/openai/v1/chat/completions', headers: bearer, body: chat, status: 200 },
    {
      share: 10,
      path: '/v1/openai/v1/chat/completions',
      headers: bearer,
      body: { ...chat, stream: true, stream_options: { include_usage: true } },
      status: 200,
    },
    {
      share: 10,
      path: '/v1/anthropic/v1/messages',
      headers: { 'x-api-key': token, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: message,
      status: 200,
    },
    {
      share: 5,
      path: '/v1/anthropic/v1/messages',
      headers: { 'x-api-key': token, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: { ...message, stream: true },
      status: 200,
    },
    {
      share: 10,
      path: '/v1/resend/emails',
      headers: bearer,
      body: { from: 'a@example.com', to: 'b@example.com', subject: 'hi', text: 'hello' },
      status: 200,
    },
    // Rejections: a token that does not exist, and a provider the catalog does not know.
    {
      share: 3,
      path: '/v1/openai/v1/chat/completions',
      headers: { authorization: `Bearer ks_${'0'.repeat(64)}`, 'content-type': 'application/json' },
      body: chat,
      status: 401,
    },
    { share: 2, path: '/v1/nowhere/v1/x', headers: bearer, body: chat, status: 404 },
  ];
}

function send(agent, proxyUrl, kind) {
  const url = new URL(proxyUrl);
  const body = Buffer.from(JSON.stringify(kind.body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: kind.path,
        headers: { ...kind.headers, 'content-length': body.length },
        signal: AbortSignal.timeout(kRequestTimeoutMs),
      },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          if (res.statusCode === kind.status) {
            resolve();
          } else {
            reject(new Error(`POST ${kind.path} returned ${res.statusCode}, expected ${kind.status}`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const runTimer = setTimeout(() => {
  console.error(`pgo-train: the run did not finish within ${kRunTimeoutMs / 1000} s`);
  process.exit(1);
}, kRunTimeoutMs);
runTimer.unref();

const stack = await startStack({ keystore: { logLevel: 'warn' } });
try {
  const agent = new http.Agent({ keepAlive: true, maxSockets: kConnections });
  const plan = [];
  for (const kind of requestKinds(stack.project.token)) {
    for (let i = 0; i < kind.share; ++i) {
      plan.push(kind);
    }
  }
  let next = 0;
  const worker = async () => {
    while (next < kRequests) {
      const index = next++;
      await send(agent, stack.ks.proxyUrl, plan[index % plan.length]);
      if (index % 5000 === 4999) {
        // The mocks record every request, and the run reads none of the records.
        stack.clearMocks();
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: kConnections }, worker));
  agent.destroy();
  const seconds = (performance.now() - started) / 1000;
  console.log(`pgo-train: ${kRequests} requests in ${seconds.toFixed(1)} s`);
  // The instrumented binary writes its profile when it exits, which a kill prevents.
  const exit = await stack.ks.stop();
  if (exit.code !== 0 || exit.signal !== null) {
    throw new Error(`keystore did not stop cleanly (code ${exit.code}, signal ${exit.signal})`);
  }
} finally {
  await stack.close();
}
