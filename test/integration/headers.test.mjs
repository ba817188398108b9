// Header handling of the proxy: client credentials and hop-by-hop headers dropped, the provider
// key injected exactly once, ambiguous credentials rejected, and credential-bearing and
// hop-by-hop response headers dropped with any echo of the key redacted.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { rawHeaderValues } from '../mocks/recorder.mjs';
import { assertKeystoreError, proxyRequest, responseHeaderValues } from '../harness/http.mjs';
import { mintToken } from '../harness/keystore.mjs';
import { findSecrets, kAllProviderKeys, kAnthropicKey, kOpenAiKey } from '../harness/secrets.mjs';
import { startStack, upstreamConnectionCount, upstreamRequestCount } from '../harness/stack.mjs';

const kChatPath = '/v1/openai/v1/chat/completions';
const kChat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
const kMessagesPath = '/v1/anthropic/v1/messages';
const kMessage = { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };

// Everything of a recorded upstream request that could carry a token: URL, raw headers, body.
function recordedText(record) {
  return [record.url, ...record.rawHeaders, record.body.toString('latin1')].join('\n');
}

describe('proxy header handling', () => {
  let stack;
  let ks;
  let token;
  let secondToken;

  before(async () => {
    stack = await startStack();
    ks = stack.ks;
    token = stack.project.token;
    secondToken = (await mintToken(ks, stack.project.agentId)).token;
  });

  after(async () => {
    await stack?.close();
  });

  beforeEach(() => {
    stack.clearMocks();
  });

  function assertNoUpstreamTraffic(context) {
    assert.equal(upstreamRequestCount(stack.mocks), 0, `${context}: upstreams received 0 requests`);
    assert.equal(upstreamConnectionCount(stack.mocks), 0, `${context}: upstreams accepted 0 connections`);
  }

  test('injected key replaces client credentials', async () => {
    const response = await proxyRequest(ks, {
      path: kMessagesPath,
      headers: [
        'Authorization', `Bearer ${token}`,
        'x-api-key', token,
        'api-key', token,
        'Cookie', `session=abc; ks=${token}`,
        'Proxy-Authorization', 'Basic dXNlcjpwYXNz',
        'anthropic-version', '2023-06-01',
      ],
      json: kMessage,
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.anthropic.requests.length, 1, 'anthropic mock received one request');

    const received = stack.mocks.anthropic.requests[0];
    assert.deepEqual(rawHeaderValues(received, 'x-api-key'), [kAnthropicKey], 'upstream sees exactly one x-api-key, the provider key');
    assert.deepEqual(rawHeaderValues(received, 'authorization'), [], 'upstream sees no Authorization');
    assert.deepEqual(rawHeaderValues(received, 'api-key'), [], 'upstream sees no api-key');
    assert.deepEqual(rawHeaderValues(received, 'cookie'), [], 'upstream sees no Cookie');
    assert.deepEqual(rawHeaderValues(received, 'proxy-authorization'), [], 'upstream sees no Proxy-Authorization');
    assert.deepEqual(rawHeaderValues(received, 'anthropic-version'), ['2023-06-01'], 'anthropic-version is forwarded');
    assert.ok(!recordedText(received).includes(token), 'the agent token appears nowhere in the upstream request');
    assert.ok(!recordedText(received).includes(token.slice(3)), 'the token hex appears nowhere in the upstream request');
  });

  test('openai key injected exactly once', async () => {
    const response = await proxyRequest(ks, { path: kChatPath, token, json: kChat });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.openai.requests.length, 1, 'openai mock received one request');

    const received = stack.mocks.openai.requests[0];
    assert.deepEqual(rawHeaderValues(received, 'authorization'), [`Bearer ${kOpenAiKey}`], 'exactly one Authorization: Bearer <key>');
    assert.deepEqual(rawHeaderValues(received, 'x-api-key'), [], 'no x-api-key for openai');
    assert.deepEqual(rawHeaderValues(received, 'host'), [new URL(stack.mocks.openai.url).host], 'Host is the upstream');
    const requestIds = rawHeaderValues(received, 'x-request-id');
    assert.equal(requestIds.length, 1, 'upstream sees exactly one x-request-id');
    assert.ok(requestIds[0].length > 0, 'x-request-id is not empty');
    assert.ok(!recordedText(received).includes(token), 'the agent token appears nowhere in the upstream request');
  });

  test('two Authorization headers are ambiguous', async () => {
    const response = await proxyRequest(ks, {
      path: kChatPath,
      headers: ['Authorization', `Bearer ${token}`, 'Authorization', `Bearer ${secondToken}`],
      json: kChat,
    });
    const body = assertKeystoreError(response, 400, 'ambiguous_credentials');
    assert.ok(!JSON.stringify(body).includes(token), 'error body does not contain the first token');
    assert.ok(!JSON.stringify(body).includes(secondToken), 'error body does not contain the second token');
    assertNoUpstreamTraffic('two Authorization headers');
  });

  test('comma-joined Authorization is ambiguous', async () => {
    const response = await proxyRequest(ks, {
      path: kChatPath,
      headers: ['Authorization', `Bearer ${token}, Bearer ${secondToken}`],
      json: kChat,
    });
    assertKeystoreError(response, 400, 'ambiguous_credentials');
    assertNoUpstreamTraffic('comma-joined Authorization');
  });

  test('Authorization and x-api-key differing are ambiguous', async () => {
    const response = await proxyRequest(ks, {
      path: kMessagesPath,
      headers: ['Authorization', `Bearer ${token}`, 'x-api-key', secondToken],
      json: kMessage,
    });
    assertKeystoreError(response, 400, 'ambiguous_credentials');
    assertNoUpstreamTraffic('Authorization and x-api-key with different tokens');
  });

  test('hop-by-hop request headers dropped', async () => {
    const response = await proxyRequest(ks, {
      path: kChatPath,
      token,
      headers: [
        'Connection', 'keep-alive, X-Hop-Custom',
        'X-Hop-Custom', 'dropped',
        'Keep-Alive', 'timeout=5',
        'Proxy-Connection', 'keep-alive',
        'X-Client-Trace', 'kept',
      ],
      json: kChat,
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    const received = stack.mocks.openai.requests[0];
    assert.ok(received, 'openai mock received the request');
    assert.deepEqual(rawHeaderValues(received, 'x-hop-custom'), [], 'a header named in Connection is dropped');
    assert.deepEqual(rawHeaderValues(received, 'keep-alive'), [], 'Keep-Alive is dropped');
    assert.deepEqual(rawHeaderValues(received, 'proxy-connection'), [], 'Proxy-Connection is dropped');
    assert.deepEqual(rawHeaderValues(received, 'x-client-trace'), ['kept'], 'an end-to-end header is forwarded');
  });

  for (const provider of ['openai', 'anthropic']) {
    test(`${provider} key echo redacted from answer`, async () => {
      stack.mocks[provider].setBehavior({
        echoCredential: true,
        responseHeaders: ['Connection', 'X-Resp-Hop', 'X-Resp-Hop', 'dropped', 'X-Upstream-Trace', 'kept'],
      });
      const response = provider === 'openai'
        ? await proxyRequest(ks, { path: kChatPath, token, json: kChat })
        : await proxyRequest(ks, { path: kMessagesPath, token, json: kMessage });
      assert.equal(response.status, 200, `status is 200: ${response.text}`);
      assert.equal(stack.mocks[provider].requests.length, 1, 'the mock received the request and echoed the key');

      const headerText = response.rawHeaders.join('\n');
      assert.deepEqual(findSecrets(headerText, kAllProviderKeys), [], 'no form of any key in the response headers');
      assert.deepEqual(findSecrets(response.body, kAllProviderKeys), [], 'no form of any key in the response body');
      assert.deepEqual(responseHeaderValues(response, 'x-api-key'), [], 'x-api-key response header dropped');
      assert.deepEqual(responseHeaderValues(response, 'authorization'), [], 'Authorization response header dropped');
      assert.deepEqual(responseHeaderValues(response, 'api-key'), [], 'api-key response header dropped');
      assert.deepEqual(responseHeaderValues(response, 'x-resp-hop'), [], 'a response header named in Connection is dropped');
      assert.deepEqual(responseHeaderValues(response, 'x-upstream-trace'), ['kept'], 'an end-to-end response header is relayed');
      for (const cookie of responseHeaderValues(response, 'set-cookie')) {
        assert.deepEqual(findSecrets(cookie, kAllProviderKeys), [], `Set-Cookie carries no key: ${cookie}`);
      }
    });
  }

  test('upstream redirect relayed, not followed', async () => {
    const stranger = await startOpenAi();
    try {
      stack.mocks.openai.setBehavior({ redirect: `${stranger.url}/v1/chat/completions` });
      const response = await proxyRequest(ks, { path: kChatPath, token, json: kChat });
      assert.equal(response.status, 302, `status 302 is relayed: ${response.text}`);
      assert.deepEqual(
        responseHeaderValues(response, 'location'),
        [`${stranger.url}/v1/chat/completions`],
        'Location is relayed',
      );
      assert.equal(stack.mocks.openai.requests.length, 1, 'the configured upstream received one request');
      assert.equal(stranger.connections, 0, 'the redirect target accepted 0 connections');
    } finally {
      await stranger.close();
    }
  });
});
