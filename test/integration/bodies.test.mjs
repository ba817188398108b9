// Request bodies through the proxy. A 12 MB body sent with Content-Length, chunked or with
// Expect: 100-continue arrives byte for byte with the key injected. A body over
// --max-request-bytes is rejected with 413 before it reaches the upstream. Malformed JSON
// neither crashes the proxy nor gets altered on the way.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';

import { rawHeaderValues } from '../mocks/recorder.mjs';
import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import { kAnthropicKey } from '../harness/secrets.mjs';
import { startStack } from '../harness/stack.mjs';

const kMaxRequestBytes = 16 * 1024 * 1024;
const kMessagesPath = '/v1/anthropic/v1/messages';
const kChatPath = '/v1/openai/v1/chat/completions';
const kChat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

// A JSON messages request of about `size` bytes.
function largeMessageBody(size) {
  const filler = randomBytes(Math.ceil((size * 3) / 4)).toString('base64').slice(0, size);
  return Buffer.from(JSON.stringify({
    model: 'claude-sonnet-4-5',
    max_tokens: 16,
    messages: [{ role: 'user', content: filler }],
  }));
}

describe('request bodies', () => {
  let stack;
  let ks;
  let token;

  before(async () => {
    stack = await startStack({ keystore: { extraArgs: ['--max-request-bytes', String(kMaxRequestBytes)] } });
    ks = stack.ks;
    token = stack.project.token;
  });

  after(async () => {
    await stack?.close();
  });

  beforeEach(() => {
    stack.clearMocks();
  });

  const largeVariants = [
    { name: 'Content-Length', options: {} },
    { name: 'chunked', options: { chunked: true, chunkSize: 64 * 1024 } },
    { name: 'Expect 100-continue', options: { expectContinue: true } },
  ];
  for (const variant of largeVariants) {
    test(`12 MB body with ${variant.name} arrives intact`, async () => {
      const body = largeMessageBody(12 * 1000 * 1000);
      const response = await proxyRequest(ks, {
        path: kMessagesPath,
        token,
        headers: ['Content-Type', 'application/json', 'anthropic-version', '2023-06-01'],
        body,
        ...variant.options,
      });
      assert.equal(response.status, 200, `status is 200: ${response.text.slice(0, 500)}`);
      assert.equal(stack.mocks.anthropic.requests.length, 1, 'anthropic mock received one request');
      const received = stack.mocks.anthropic.requests[0];
      assert.deepEqual(rawHeaderValues(received, 'x-api-key'), [kAnthropicKey], 'upstream receives x-api-key once');
      assert.equal(received.body.length, body.length, 'upstream body length equals the client body length');
      assert.equal(sha256(received.body), sha256(body), 'upstream body SHA-256 equals the client body SHA-256');
    });
  }

  const malformedBodies = [
    { name: 'lone surrogate escape', body: Buffer.from('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"\\ud800"}]}') },
    {
      name: 'invalid UTF-8 bytes',
      body: Buffer.concat([
        Buffer.from('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}]}'),
      ]),
    },
    { name: 'escaped NUL', body: Buffer.from('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a\\u0000b"}]}') },
    {
      name: 'raw NUL byte',
      body: Buffer.concat([
        Buffer.from('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a'),
        Buffer.from([0x00]),
        Buffer.from('b"}]}'),
      ]),
    },
    { name: 'truncated JSON', body: Buffer.from('{"model":"gpt-4o-mini","messages":[{"role":') },
    { name: '64-deep array', body: Buffer.from(`{"model":"gpt-4o-mini","messages":[],"x":${'['.repeat(64)}${']'.repeat(64)}}`) },
    { name: '100000-deep array', body: Buffer.from(`{"model":"gpt-4o-mini","messages":[],"x":${'['.repeat(100000)}${']'.repeat(100000)}}`) },
  ];
  for (const { name, body } of malformedBodies) {
    test(`malformed body (${name}) handled`, async () => {
      const response = await proxyRequest(ks, {
        path: kChatPath,
        token,
        headers: ['Content-Type', 'application/json'],
        body,
      });
      assert.ok(
        response.status === 200 || response.status === 400,
        `status is 200 (forwarded) or 400 (rejected): ${response.status} ${response.text.slice(0, 300)}`,
      );
      if (stack.mocks.openai.requests.length > 0) {
        assert.equal(stack.mocks.openai.requests.length, 1, 'forwarded once');
        assert.ok(stack.mocks.openai.requests[0].body.equals(body), 'a forwarded body is byte for byte the client body');
      } else {
        assertKeystoreError(response, 400, 'invalid_request', 'a body the proxy rejects');
      }
      assert.ok(ks.running, 'the keystore process is still running');

      stack.clearMocks();
      const next = await proxyRequest(ks, { path: kChatPath, token, json: kChat });
      assert.equal(next.status, 200, `the next request is 200: ${next.text}`);
    });
  }

  test('HTTP/1.0 request with Expect 100-continue gets no interim response', async () => {
    // HTTP/1.0 has no 1xx responses; such a client takes "100 Continue" as the final response.
    const body = JSON.stringify(kChat);
    const { hostname, port } = new URL(ks.proxyUrl);
    const raw = await new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () => {
        socket.write(`POST ${kChatPath} HTTP/1.0\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n${body}`);
      });
      const chunks = [];
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.on('error', reject);
      socket.setTimeout(10000, () => socket.destroy(new Error('no answer within 10 s')));
    });
    assert.match(raw, /^HTTP\/1\.[01] 200 /, `the first line is the final answer: ${raw.slice(0, 80)}`);
    assert.doesNotMatch(raw, /100 Continue/);
    assert.equal(stack.mocks.openai.requests.length, 1);
  });

  test('header over 64 KiB is 400 naming the limit', async () => {
    // 70,000 bytes of one field, above the proxy's 65,536-byte header limit.
    const filler = 'a'.repeat(70000);
    const { hostname, port } = new URL(ks.proxyUrl);
    const raw = await new Promise((resolve, reject) => {
      const chunks = [];
      const socket = net.connect(Number(port), hostname, () => {
        socket.write(`POST ${kChatPath} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\n` +
          `X-Filler: ${filler}\r\nContent-Length: 2\r\n\r\n{}`);
      });
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
      // The proxy may close before it has read every byte sent, which resets the connection
      // after its response arrived.
      socket.on('error', (error) => (chunks.length > 0 ? resolve(Buffer.concat(chunks).toString('latin1')) : reject(error)));
      socket.setTimeout(10000, () => socket.destroy(new Error('no response within 10 s')));
    });
    assert.match(raw, /^HTTP\/1\.1 400 Bad Request\r\n/);
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
    assert.equal(body.error.code, 'invalid_request');
    assert.equal(body.error.message, 'the request header is larger than the limit of 64 KiB');
    assert.equal(stack.mocks.openai.requests.length, 0, 'upstream received 0 requests');
  });

  test('chunked body over limit is 413', async () => {
    const body = largeMessageBody(kMaxRequestBytes + 1024 * 1024);
    const response = await proxyRequest(ks, {
      path: kMessagesPath,
      token,
      headers: ['Content-Type', 'application/json'],
      body,
      chunked: true,
      chunkSize: 256 * 1024,
    });
    assertKeystoreError(response, 413, 'payload_too_large');
    assert.equal(stack.mocks.anthropic.requests.length, 0, 'upstream received 0 complete requests');
  });

  test('body over limit with Content-Length is 413', async () => {
    const body = largeMessageBody(kMaxRequestBytes + 1024 * 1024);
    const response = await proxyRequest(ks, {
      path: kMessagesPath,
      token,
      headers: ['Content-Type', 'application/json'],
      body,
    });
    assertKeystoreError(response, 413, 'payload_too_large');
    assert.equal(stack.mocks.anthropic.requests.length, 0, 'upstream received 0 requests');
    assert.equal(stack.mocks.anthropic.connections, 0, 'upstream accepted 0 connections');
  });
});
