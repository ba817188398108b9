// The official `@anthropic-ai/sdk` npm SDK through the proxy, holding only the agent token:
// messages.create with and without `stream: true`, the messages.stream helper, and Keystore
// errors as SDK errors. The SDK sends its key as `Authorization: Bearer`; the proxy must
// replace it with `x-api-key: <provider key>`.

import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, beforeEach, describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';

import { kInputTokens, kMessageReply, kOutputTokens } from '../mocks/anthropic.mjs';
import { rawHeaderValues } from '../mocks/recorder.mjs';
import { assertNoToken, assertSingleCredential } from '../harness/upstream_checks.mjs';
import { kAnthropicKey, kAnthropicPoolKey } from '../harness/secrets.mjs';
import { startStack } from '../harness/stack.mjs';
import { addPoolCredential, assertOneLedgerRow, enableMarketplace, provision } from '../harness/keystore.mjs';
import { assertEveryRequestClean } from '../harness/upstream_checks.mjs';

const kRequest = {
  model: 'claude-sonnet-4-5',
  max_tokens: 64,
  messages: [{ role: 'user', content: 'Say hello' }],
};

// The mock sends its whole stream at once, so the SDK's loop must end as soon as the proxy
// ends the response.
const kMaxStreamMs = 5000;

describe('anthropic SDK through the proxy', () => {
  let stack;
  let client;
  let token;

  before(async () => {
    stack = await startStack();
    token = stack.project.token;
    client = new Anthropic({
      apiKey: token,
      baseURL: `${stack.ks.proxyUrl}/v1/anthropic`,
      maxRetries: 0,
      timeout: 30000,
    });
  });

  after(async () => {
    await stack?.close();
  });

  beforeEach(() => {
    stack.clearMocks();
  });

  function assertUpstreamSawOneRequest() {
    const { requests } = stack.mocks.anthropic;
    assert.equal(requests.length, 1, 'the anthropic mock received exactly one request');
    assert.equal(new URL(requests[0].url, 'http://mock').pathname, '/v1/messages', 'upstream path is /v1/messages');
    assertSingleCredential(requests[0], 'x-api-key', kAnthropicKey);
    assertNoToken(requests[0], token);
    assert.equal(rawHeaderValues(requests[0], 'anthropic-version').length, 1, 'anthropic-version is forwarded once');
  }

  test('message returns mock reply', async () => {
    const message = await client.messages.create(kRequest);
    assert.equal(message.type, 'message', 'type is message');
    assert.equal(message.content[0].type, 'text', 'first block is text');
    assert.equal(message.content[0].text, kMessageReply, 'text is the mock reply');
    assert.equal(message.stop_reason, 'end_turn', 'stop_reason is end_turn');
    assert.equal(message.usage.input_tokens, kInputTokens, 'input_tokens is the mock value');
    assert.equal(message.usage.output_tokens, kOutputTokens, 'output_tokens is the mock value');
    assertUpstreamSawOneRequest();
  });

  test('streamed message equals mock content', async () => {
    const stream = await client.messages.create({ ...kRequest, stream: true });
    const types = [];
    let text = '';
    const startedAt = performance.now();
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        text += event.delta.text;
      }
    }
    const elapsedMs = performance.now() - startedAt;
    assert.ok(elapsedMs < kMaxStreamMs, `the stream ended within ${kMaxStreamMs} ms of its start, took ${elapsedMs.toFixed(0)} ms`);
    assert.equal(text, kMessageReply, 'streamed text equals the mock content');
    assert.equal(types[0], 'message_start', 'the first event is message_start');
    assert.equal(types.at(-1), 'message_stop', 'the last event is message_stop');
    assert.ok(types.includes('message_delta'), 'a message_delta event arrives');
    assertUpstreamSawOneRequest();
  });

  test('stream helper yields final text', async () => {
    const startedAt = performance.now();
    const stream = client.messages.stream(kRequest);
    const finalText = await stream.finalText();
    const elapsedMs = performance.now() - startedAt;
    assert.ok(elapsedMs < kMaxStreamMs, `the stream ended within ${kMaxStreamMs} ms of its start, took ${elapsedMs.toFixed(0)} ms`);
    const finalMessage = await stream.finalMessage();
    assert.equal(finalText, kMessageReply, 'finalText equals the mock content');
    assert.equal(finalMessage.usage.output_tokens, kOutputTokens, 'usage from message_delta is applied');
    assertUpstreamSawOneRequest();
  });

  test('token via authToken works', async () => {
    const bearerClient = new Anthropic({
      authToken: token,
      baseURL: `${stack.ks.proxyUrl}/v1/anthropic`,
      maxRetries: 0,
    });
    const message = await bearerClient.messages.create(kRequest);
    assert.equal(message.content[0].text, kMessageReply, 'text is the mock reply');
    assertUpstreamSawOneRequest();
  });

  test('scope denial raises PermissionDeniedError', async () => {
    const created = await stack.ks.cli([
      'token', 'create', '--agent', stack.project.agentId, '--scope', 'provider:openai:*', '--json',
    ]);
    assert.equal(created.code, 0, `token create exits 0; stderr: ${created.stderr}`);
    const openaiOnly = new Anthropic({
      apiKey: JSON.parse(created.stdout).token,
      baseURL: `${stack.ks.proxyUrl}/v1/anthropic`,
      maxRetries: 0,
    });
    await assert.rejects(openaiOnly.messages.create(kRequest), (error) => {
      assert.ok(error instanceof Anthropic.PermissionDeniedError, `error is a PermissionDeniedError: ${error}`);
      assert.equal(error.status, 403, 'status is 403');
      assert.equal(error.error?.error?.code, 'scope_denied', 'the error body carries the Keystore code');
      assert.equal(error.error?.error?.type, 'keystore_error', 'the error body carries the Keystore type');
      return true;
    });
    assert.equal(stack.mocks.anthropic.requests.length, 0, 'the upstream received no request');
  });
});

// A second project uses a dedicated pool credential, which the proxy prefers to the shared one.
describe('anthropic SDK in marketplace mode', () => {
  let stack;
  let dedicated;
  let market;

  before(async () => {
    stack = await startStack();
    market = await provision(stack.ks, { project: 'proj-market', agent: 'agent-market' });
    await addPoolCredential(stack.ks, 'anthropic', 'sk-ant-test-SHARED-0003', { scope: 'shared' });
    dedicated = await addPoolCredential(stack.ks, 'anthropic', kAnthropicPoolKey, {
      scope: 'dedicated',
      project: market.projectId,
    });
    await enableMarketplace(stack.ks, market.projectId, 'anthropic');
    stack.mocks.anthropic.setExpectedCredential(kAnthropicPoolKey);
  });

  after(async () => {
    await stack?.close();
  });

  beforeEach(() => {
    stack.clearMocks();
  });

  test('streamed message uses dedicated key', async () => {
    const client = new Anthropic({
      apiKey: market.token,
      baseURL: `${stack.ks.proxyUrl}/v1/anthropic`,
      maxRetries: 0,
      timeout: 30000,
    });
    const stream = await client.messages.create({ ...kRequest, stream: true });
    let text = '';
    for await (const event of stream) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        text += event.delta.text;
      }
    }
    assert.equal(text, kMessageReply, 'streamed text equals the mock content');
    assert.equal(stack.mocks.anthropic.requests.length, 1, 'the anthropic mock received exactly one request');
    assertEveryRequestClean(stack.mocks.anthropic.requests, 'x-api-key', kAnthropicPoolKey, market.token);
    await assertOneLedgerRow(stack.ks, market.projectId, {
      provider: 'anthropic',
      mode: 'marketplace',
      upstreamStatus: 200,
      credentialId: dedicated.id,
    });
  });
});
