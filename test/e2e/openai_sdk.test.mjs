// The official `openai` npm SDK through the proxy, holding only the agent token: chat
// completions with and without streaming, embeddings, and Keystore errors as SDK errors.

import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, beforeEach, describe, test } from 'node:test';

import OpenAI from 'openai';

import { kChatReply, kEmbedding, kUsage } from '../mocks/openai.mjs';
import { assertNoToken, assertSingleCredential } from '../harness/upstream_checks.mjs';
import { kOpenAiKey, kOpenAiPoolKey } from '../harness/secrets.mjs';
import { startStack } from '../harness/stack.mjs';
import { addPoolCredential, assertOneLedgerRow, enableMarketplace, provision, waitForLedger } from '../harness/keystore.mjs';
import { assertEveryRequestClean } from '../harness/upstream_checks.mjs';

// The mock sends its whole stream at once, so the SDK's loop must end as soon as the proxy
// ends the response.
const kMaxStreamMs = 5000;

describe('openai SDK through the proxy', () => {
  let stack;
  let client;
  let token;

  before(async () => {
    stack = await startStack();
    token = stack.project.token;
    client = new OpenAI({
      apiKey: token,
      baseURL: `${stack.ks.proxyUrl}/v1/openai/v1`,
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

  function assertUpstreamSawOneRequest(path) {
    const { requests } = stack.mocks.openai;
    assert.equal(requests.length, 1, 'the openai mock received exactly one request');
    assert.equal(new URL(requests[0].url, 'http://mock').pathname, path, `upstream path is ${path}`);
    assertSingleCredential(requests[0], 'authorization', `Bearer ${kOpenAiKey}`);
    assertNoToken(requests[0], token);
  }

  test('chat completion returns mock reply', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say hello' }],
    });
    assert.equal(completion.object, 'chat.completion', 'object is chat.completion');
    assert.equal(completion.choices[0].message.content, kChatReply, 'content is the mock reply');
    assert.equal(completion.choices[0].finish_reason, 'stop', 'finish_reason is stop');
    assert.deepEqual(completion.usage, kUsage, 'usage is the mock usage');
    assertUpstreamSawOneRequest('/v1/chat/completions');
    const sent = JSON.parse(stack.mocks.openai.requests[0].body.toString('utf8'));
    assert.equal(sent.model, 'gpt-4o-mini', 'upstream body carries the model');
  });

  test('streamed chat equals mock content', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say hello' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    let chunks = 0;
    let usage;
    const startedAt = performance.now();
    for await (const chunk of stream) {
      chunks += 1;
      assert.equal(chunk.object, 'chat.completion.chunk', 'each chunk is a chat.completion.chunk');
      content += chunk.choices[0]?.delta?.content ?? '';
      usage = chunk.usage ?? usage;
    }
    const elapsedMs = performance.now() - startedAt;
    assert.ok(elapsedMs < kMaxStreamMs, `the stream ended within ${kMaxStreamMs} ms of its start, took ${elapsedMs.toFixed(0)} ms`);
    assert.equal(content, kChatReply, 'streamed content equals the mock content');
    assert.equal(chunks, stack.mocks.openai.sseLog.length - 1, 'the SDK saw every chunk the mock sent before [DONE]');
    assert.deepEqual(usage, kUsage, 'the final usage chunk arrives');
    assertUpstreamSawOneRequest('/v1/chat/completions');
  });

  test('embeddings return mock vector', async () => {
    const result = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
    assert.equal(result.data.length, 1, 'one embedding');
    assert.deepEqual(result.data[0].embedding, kEmbedding, 'the embedding equals the mock vector');
    assertUpstreamSawOneRequest('/v1/embeddings');
  });

  test('invalid token raises AuthenticationError', async () => {
    const stranger = new OpenAI({
      apiKey: `ks_${'0'.repeat(64)}`,
      baseURL: `${stack.ks.proxyUrl}/v1/openai/v1`,
      maxRetries: 0,
    });
    await assert.rejects(
      stranger.chat.completions.create({ model: 'gpt-4o-mini', messages: [] }),
      (error) => {
        assert.ok(error instanceof OpenAI.AuthenticationError, `error is an AuthenticationError: ${error}`);
        assert.equal(error.status, 401, 'status is 401');
        assert.equal(error.code, 'invalid_token', 'the SDK reads the Keystore error code');
        assert.equal(error.type, 'keystore_error', 'the SDK reads the Keystore error type');
        return true;
      },
    );
    assert.equal(stack.mocks.openai.requests.length, 0, 'the upstream received no request');
  });
});

// A second project uses the operator's shared pool while the stack's project keeps its own key.
describe('openai SDK in marketplace mode', () => {
  let stack;
  let pooled;
  let market;

  before(async () => {
    stack = await startStack();
    pooled = await addPoolCredential(stack.ks, 'openai', kOpenAiPoolKey, { scope: 'shared' });
    market = await provision(stack.ks, { project: 'proj-market', agent: 'agent-market' });
    await enableMarketplace(stack.ks, market.projectId, 'openai');
  });

  after(async () => {
    await stack?.close();
  });

  beforeEach(() => {
    stack.clearMocks();
  });

  function clientFor(token) {
    return new OpenAI({ apiKey: token, baseURL: `${stack.ks.proxyUrl}/v1/openai/v1`, maxRetries: 0, timeout: 30000 });
  }

  test('chat completion uses shared pool key', async () => {
    stack.mocks.openai.setExpectedCredential(kOpenAiPoolKey);
    const completion = await clientFor(market.token).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say hello' }],
    });
    assert.equal(completion.choices[0].message.content, kChatReply, 'content is the mock reply');
    assert.equal(stack.mocks.openai.requests.length, 1, 'the openai mock received exactly one request');
    assertEveryRequestClean(stack.mocks.openai.requests, 'authorization', `Bearer ${kOpenAiPoolKey}`, market.token);
    await assertOneLedgerRow(stack.ks, market.projectId, {
      provider: 'openai',
      mode: 'marketplace',
      upstreamStatus: 200,
      credentialId: pooled.id,
    });
  });

  test('byok project keeps its own key', async () => {
    stack.mocks.openai.setExpectedCredential(kOpenAiKey);
    const result = await clientFor(stack.project.token).embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
    assert.deepEqual(result.data[0].embedding, kEmbedding, 'the embedding equals the mock vector');
    assertEveryRequestClean(stack.mocks.openai.requests, 'authorization', `Bearer ${kOpenAiKey}`, stack.project.token);
  });

  // Runs last because the rejected key stays in the installation's pool.
  test('pool key answering 401 is replaced', async () => {
    const rejected = await addPoolCredential(stack.ks, 'openai', 'sk-test-OPENAI-REVOKED-0003', { scope: 'shared' });
    const project = await provision(stack.ks, { project: 'proj-retry', agent: 'agent-retry' });
    await enableMarketplace(stack.ks, project.projectId, 'openai');
    stack.mocks.openai.setExpectedCredential(kOpenAiPoolKey);

    // The least recently used key goes first, so the new, never used key is tried on the first
    // request. Whether it is tried again on the second depends on when its failure counted as use.
    for (let i = 0; i < 2; i += 1) {
      const completion = await clientFor(project.token).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Say hello' }],
      });
      assert.equal(completion.choices[0].message.content, kChatReply, 'content is the mock reply');
    }
    const keys = stack.mocks.openai.requests.map((record) => record.headers.authorization);
    const rejectedTries = keys.filter((key) => key === 'Bearer sk-test-OPENAI-REVOKED-0003').length;
    assert.ok(rejectedTries >= 1, 'the rejected key was tried');
    assert.equal(keys.length, 2 + rejectedTries, 'every request rejected with 401 was sent once more');
    assert.equal(keys.at(-1), `Bearer ${kOpenAiPoolKey}`, 'the last request used the working key');
    keys.forEach((key, i) => {
      if (key !== `Bearer ${kOpenAiPoolKey}`) {
        assert.equal(keys[i + 1], `Bearer ${kOpenAiPoolKey}`, 'a 401 is followed by a request with the other key');
      }
    });
    const rows = await waitForLedger(stack.ks, project.projectId, 2);
    assert.equal(rows.length, 2, `one ledger row per client request: ${JSON.stringify(rows)}`);
    for (const row of rows) {
      assert.equal(row.upstream_status, 200, 'the ledger row has the relayed status 200');
      assert.equal(row.credential_id, pooled.id, 'the ledger row names the key that answered');
      assert.notEqual(row.credential_id, rejected.id, 'the ledger row does not name the rejected key');
    }
  });
});
