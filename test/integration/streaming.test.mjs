// Server-sent events through the proxy: each event reaches the client as soon as the upstream
// writes it, with the same bytes, as text/event-stream without Content-Length and with the
// headers that keep intermediaries from buffering.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';

import { proxyRequest } from '../harness/http.mjs';
import { startStack } from '../harness/stack.mjs';

const kMaxEventDelayMs = 600;

// For each event the mock wrote, the delay until the client had received all bytes up to and
// including that event. Returns [{index, delayMs}] (delayMs is Infinity if never received).
function eventDelays(sseLog, clientChunks) {
  const delays = [];
  let sentTotal = 0;
  for (let index = 0; index < sseLog.length; index += 1) {
    sentTotal += sseLog[index].bytes.length;
    let receivedTotal = 0;
    let receivedAt = Infinity;
    for (const chunk of clientChunks) {
      receivedTotal += chunk.bytes.length;
      if (receivedTotal >= sentTotal) {
        receivedAt = chunk.at;
        break;
      }
    }
    delays.push({ index, delayMs: receivedAt - sseLog[index].at });
  }
  return delays;
}

function assertStreamHeaders(response) {
  assert.match(response.headers['content-type'] ?? '', /^text\/event-stream/, 'content-type is text/event-stream');
  assert.equal(response.headers['content-length'], undefined, 'no Content-Length on a stream');
  assert.match(response.headers['cache-control'] ?? '', /no-cache/, 'cache-control contains no-cache');
  assert.equal(response.headers['x-accel-buffering'], 'no', 'x-accel-buffering is no');
  const encoding = response.headers['content-encoding'];
  assert.ok(encoding === undefined || encoding === 'identity', `the stream is not re-encoded: ${encoding}`);
}

// The events of an OpenAI stream as the client should receive them. The proxy requests usage
// when the client did not, so the upstream adds "usage":null to each chunk and a final
// usage-only chunk, and the proxy removes both again.
function clientVisible(sseLog) {
  const visible = [];
  for (const event of sseLog) {
    const text = event.bytes.toString('utf8');
    const json = text.startsWith('data: {') ? JSON.parse(text.slice(6)) : undefined;
    if (Array.isArray(json?.choices) && json.choices.length === 0 && json.usage) {
      continue;
    }
    visible.push({ at: event.at, bytes: Buffer.from(text.replaceAll(',"usage":null', '')) });
  }
  return visible;
}

function assertTimely(mock, response, label, { usageInjected = false } = {}) {
  const events = usageInjected ? clientVisible(mock.sseLog) : mock.sseLog;
  const sent = Buffer.concat(events.map((event) => event.bytes));
  assert.ok(response.body.equals(sent), `${label}: the client received exactly the bytes the mock sent`);
  for (const { index, delayMs } of eventDelays(events, response.chunks)) {
    assert.ok(
      delayMs < kMaxEventDelayMs,
      `${label}: event ${index} reached the client ${delayMs.toFixed(0)} ms after the mock sent it (limit ${kMaxEventDelayMs} ms)`,
    );
  }
}

describe('SSE streaming', () => {
  let stack;
  let ks;
  let token;

  before(async () => {
    stack = await startStack();
    ks = stack.ks;
    token = stack.project.token;
  });

  after(async () => {
    await stack?.close();
  });

  beforeEach(() => {
    stack.clearMocks();
  });

  const chatStream = {
    model: 'gpt-4o-mini',
    stream: true,
    messages: [{ role: 'user', content: 'count' }],
  };

  for (const variant of [
    { name: 'plain', headers: [] },
    { name: 'Accept-Encoding gzip', headers: ['Accept-Encoding', 'gzip'] },
  ]) {
    test(`openai events relayed unbuffered (${variant.name})`, async () => {
      stack.mocks.openai.setBehavior({ sse: { events: 10, intervalMs: 500 } });
      const response = await proxyRequest(ks, {
        path: '/v1/openai/v1/chat/completions',
        token,
        headers: ['Accept', 'text/event-stream', ...variant.headers],
        json: chatStream,
      });
      assert.equal(response.status, 200, `status is 200: ${response.text.slice(0, 300)}`);
      assert.equal(stack.mocks.openai.sseLog.length, 14, 'the mock sent 14 events (role, 10 content, finish, usage, DONE)');
      assertStreamHeaders(response);
      assertTimely(stack.mocks.openai, response, 'openai', { usageInjected: true });
      assert.ok(!response.text.includes('"usage"'), 'the client stream has no usage member it did not ask for');
    });
  }

  test('keep-alive stream ends with upstream', async () => {
    stack.mocks.openai.setBehavior({ sse: { events: 3, intervalMs: 100 } });
    const response = await proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token,
      json: chatStream,
      keepAlive: true,
      timeoutMs: 20000,
    });
    assert.equal(response.status, 200, `status is 200: ${response.text.slice(0, 300)}`);
    assertTimely(stack.mocks.openai, response, 'openai keep-alive', { usageInjected: true });
    const lastSentAt = stack.mocks.openai.sseLog.at(-1).at;
    const endDelayMs = response.endedAt - lastSentAt;
    assert.ok(
      endDelayMs < kMaxEventDelayMs,
      `the response ended ${endDelayMs.toFixed(0)} ms after the upstream's last event (limit ${kMaxEventDelayMs} ms)`,
    );
  });

  test('anthropic events relayed unbuffered', async () => {
    stack.mocks.anthropic.setBehavior({ sse: { events: 5, intervalMs: 300 } });
    const response = await proxyRequest(ks, {
      path: '/v1/anthropic/v1/messages',
      token,
      headers: ['anthropic-version', '2023-06-01'],
      json: { model: 'claude-sonnet-4-5', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'count' }] },
    });
    assert.equal(response.status, 200, `status is 200: ${response.text.slice(0, 300)}`);
    assertStreamHeaders(response);
    assertTimely(stack.mocks.anthropic, response, 'anthropic');
    assert.match(response.text, /^event: message_start\ndata: /, 'the stream starts with message_start');
    assert.match(response.text, /event: message_stop\ndata: \{"type":"message_stop"\}\n\n$/, 'the stream ends with message_stop');
  });

  test('client hang-up mid-stream leaves proxy serving', async () => {
    stack.mocks.openai.setBehavior({ sse: { events: 10, intervalMs: 200 } });
    const url = new URL(ks.proxyUrl);
    await new Promise((resolve, reject) => {
      const req = http.request({
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: '/v1/openai/v1/chat/completions',
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
      req.end(JSON.stringify(chatStream));
    });

    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.ok(ks.running, 'the keystore process is still running');
    stack.clearMocks();
    const next = await proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token,
      json: { model: 'gpt-4o-mini', messages: [] },
    });
    assert.equal(next.status, 200, `the next request is 200: ${next.text}`);
  });
});
