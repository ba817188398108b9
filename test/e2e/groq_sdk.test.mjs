// The official `groq-sdk` npm SDK through the proxy, holding only the agent token. Groq is a
// concierge-tier provider: BYOK works at once, marketplace only after the operator fulfilled
// the project's concierge request. The SDK's default base URL is https://api.groq.com and its
// paths start with /openai/v1, so the agent sets `baseURL` to `<proxy>/v1/groq`. The SDK sends
// the key as `Authorization: Bearer`.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import Groq from 'groq-sdk';

import { kGroqReply, kGroqUsage, startMock } from '../mocks/groq.mjs';
import {
  assertOneLedgerRow,
  configureByok,
  fulfillConcierge,
  provision,
  startKeystore,
} from '../harness/keystore.mjs';
import { kGroqKey, kGroqPoolKey } from '../harness/secrets.mjs';
import { assertEveryRequestClean } from '../harness/upstream_checks.mjs';

const kModel = 'llama-3.3-70b-versatile';
const kMessages = [{ role: 'user', content: 'Say hello' }];

describe('groq SDK through the proxy', () => {
  let mock;
  let ks;

  before(async () => {
    mock = await startMock();
    ks = await startKeystore({ upstreams: { groq: mock.url } });
  });

  after(async () => {
    await ks?.close();
    await mock?.close();
  });

  beforeEach(() => {
    mock.clear();
    mock.setBehavior({});
  });

  function clientFor(token) {
    return new Groq({ apiKey: token, baseURL: `${ks.proxyUrl}/v1/groq`, maxRetries: 0, timeout: 30000 });
  }

  function assertOneChatRequest() {
    assert.equal(mock.requests.length, 1, 'the groq mock received exactly one request');
    const path = new URL(mock.requests[0].url, 'http://mock').pathname;
    assert.equal(path, '/openai/v1/chat/completions', 'upstream path keeps the /openai/v1 prefix');
  }

  test('byok chat completion uses project key', async () => {
    const project = await provision(ks, { project: 'groq-byok', agent: 'groq-byok-agent' });
    await configureByok(ks, project.projectId, 'groq', kGroqKey);
    mock.setExpectedCredential(kGroqKey);

    const completion = await clientFor(project.token).chat.completions.create({ model: kModel, messages: kMessages });

    assert.equal(completion.choices[0].message.content, kGroqReply, 'content is the mock reply');
    assert.deepEqual(completion.usage, kGroqUsage, 'usage is the mock usage');
    assertOneChatRequest();
    assertEveryRequestClean(mock.requests, 'authorization', `Bearer ${kGroqKey}`, project.token);
    const sent = JSON.parse(mock.requests[0].body.toString('utf8'));
    assert.equal(sent.model, kModel, 'upstream body carries the model');
    await assertOneLedgerRow(ks, project.projectId, {
      provider: 'groq',
      mode: 'byok',
      upstreamStatus: 200,
      credentialId: /^cred_/,
    });
  });

  test('byok stream reports x_groq usage', async () => {
    const project = await provision(ks, { project: 'groq-stream', agent: 'groq-stream-agent' });
    await configureByok(ks, project.projectId, 'groq', kGroqKey);
    mock.setExpectedCredential(kGroqKey);

    const stream = await clientFor(project.token).chat.completions.create({
      model: kModel,
      messages: kMessages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    let chunks = 0;
    let xGroqUsage;
    let usage;
    for await (const chunk of stream) {
      chunks += 1;
      content += chunk.choices[0]?.delta?.content ?? '';
      xGroqUsage = chunk.x_groq?.usage ?? xGroqUsage;
      usage = chunk.usage ?? usage;
    }

    assert.equal(content, kGroqReply, 'streamed content equals the mock content');
    assert.equal(chunks, mock.sseLog.length - 1, 'the SDK saw every chunk the mock sent before [DONE]');
    assert.deepEqual(xGroqUsage, kGroqUsage, 'x_groq.usage of the finishing chunk arrives');
    assert.deepEqual(usage, kGroqUsage, 'the include_usage chunk arrives');
    assertOneChatRequest();
    assertEveryRequestClean(mock.requests, 'authorization', `Bearer ${kGroqKey}`, project.token);
    await assertOneLedgerRow(ks, project.projectId, {
      provider: 'groq',
      mode: 'byok',
      upstreamStatus: 200,
      credentialId: /^cred_/,
    });
  });

  test('marketplace refused before concierge', async () => {
    const project = await provision(ks, { project: 'groq-early', agent: 'groq-early-agent' });
    const response = await ks.api('PATCH', `/api/v1/projects/${project.projectId}/providers/groq`, {
      mode: 'marketplace',
      status: 'enabled',
    });
    assert.equal(response.status, 409, `marketplace mode is refused: ${response.text}`);
    assert.equal(response.json?.error?.code, 'conflict', 'error code is conflict');
    assert.match(response.json?.error?.message ?? '', /concierge/, 'the message names the concierge tier');
    assert.equal(mock.requests.length, 0, 'the upstream received no request');
  });

  test('concierge marketplace uses dedicated key', async () => {
    const project = await provision(ks, { project: 'groq-concierge', agent: 'groq-concierge-agent' });
    const fulfilled = await fulfillConcierge(ks, project.projectId, 'groq', kGroqPoolKey);
    mock.setExpectedCredential(kGroqPoolKey);

    const completion = await clientFor(project.token).chat.completions.create({ model: kModel, messages: kMessages });

    assert.equal(completion.choices[0].message.content, kGroqReply, 'content is the mock reply');
    assertOneChatRequest();
    assertEveryRequestClean(mock.requests, 'authorization', `Bearer ${kGroqPoolKey}`, project.token);
    await assertOneLedgerRow(ks, project.projectId, {
      provider: 'groq',
      mode: 'marketplace',
      upstreamStatus: 200,
      credentialId: fulfilled.credential_id,
    });
  });

  test('invalid token raises AuthenticationError', async () => {
    await assert.rejects(
      clientFor(`ks_${'2'.repeat(64)}`).chat.completions.create({ model: kModel, messages: kMessages }),
      (error) => {
        assert.ok(error instanceof Groq.AuthenticationError, `error is an AuthenticationError: ${error}`);
        assert.equal(error.status, 401, 'status is 401');
        return true;
      },
    );
    assert.equal(mock.requests.length, 0, 'the upstream received no request');
  });
});
