// Two `keystore serve` instances on one data directory (one SQLite database), as a small
// deployment behind a load balancer would run them. A revocation, expiry or agent pause made
// through one instance must refuse the next request on the other within a second, because
// each instance polls the database's change counter.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import { mintToken, startKeystore } from '../harness/keystore.mjs';
import { startStack } from '../harness/stack.mjs';

const kChat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

function chat(ks, token) {
  return proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token, json: kChat });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('two instances on one database', () => {
  let stack;
  let first;
  let second;

  before(async () => {
    stack = await startStack();
    first = stack.ks;
    second = await startKeystore({
      dataDir: first.dataDir,
      upstreams: { openai: stack.mocks.openai.url },
    });
  });

  after(async () => {
    await second?.close();
    await stack?.close();
  });

  test('revocation reaches other instance', async () => {
    const token = await mintToken(first, stack.project.agentId);
    await sleep(1000);  // a new token reaches the other instance with its next poll
    const warm = await chat(second, token.token);
    assert.equal(warm.status, 200, `the second instance admits the new token: ${warm.text}`);

    stack.clearMocks();
    const revoked = await first.api('POST', `/api/v1/tokens/${token.id}/revoke`);
    assert.equal(revoked.status, 200, `revoke through the first instance: ${revoked.text}`);
    await sleep(1000);
    const after = await chat(second, token.token);
    assertKeystoreError(after, 401, 'token_revoked', 'second instance after revoke');
    assert.equal(stack.mocks.openai.requests.length, 0, 'no request reached the upstream after the revoke');
  });

  test('expiry set to now reaches other instance', async () => {
    const token = await mintToken(first, stack.project.agentId);
    await sleep(1000);
    assert.equal((await chat(second, token.token)).status, 200, 'the token works before the change');

    stack.clearMocks();
    const patched = await first.api('PATCH', `/api/v1/tokens/${token.id}`, { expires_at: 'now' });
    assert.equal(patched.status, 200, `expiry set through the first instance: ${patched.text}`);
    await sleep(1000);
    assertKeystoreError(await chat(second, token.token), 401, 'token_expired', 'second instance after expiry');
    assert.equal(stack.mocks.openai.requests.length, 0, 'no request reached the upstream after the expiry');
  });

  test('agent pause reaches other instance', async () => {
    const token = await mintToken(first, stack.project.agentId);
    await sleep(1000);
    assert.equal((await chat(second, token.token)).status, 200, 'the token works before the pause');

    stack.clearMocks();
    const paused = await first.api('PATCH', `/api/v1/agents/${stack.project.agentId}`, { status: 'paused' });
    assert.equal(paused.status, 200, `pause through the first instance: ${paused.text}`);
    await sleep(1000);
    assertKeystoreError(await chat(second, token.token), 403, 'agent_paused', 'second instance after pause');
    assert.equal(stack.mocks.openai.requests.length, 0, 'no request reached the upstream after the pause');

    const resumed = await first.api('PATCH', `/api/v1/agents/${stack.project.agentId}`, { status: 'active' });
    assert.equal(resumed.status, 200, `resume through the first instance: ${resumed.text}`);
  });

  test('key replacement and mode switch reach other instance', async () => {
    const token = await mintToken(first, stack.project.agentId);
    await sleep(1000);
    assert.equal((await chat(second, token.token)).status, 200, 'the token works before the change');

    // A replaced key: the other instance sends the new one with its next request.
    const replaced = 'sk-test-OPENAI-REPLACED-0002';
    stack.mocks.openai.setExpectedCredential(undefined);
    stack.clearMocks();
    const put = await first.api('PUT', `/api/v1/projects/${stack.project.projectId}/providers/openai/key`, { api_key: replaced });
    assert.equal(put.status, 200, `key replaced through the first instance: ${put.text}`);
    await sleep(1000);
    assert.equal((await chat(second, token.token)).status, 200);
    assert.deepEqual(stack.mocks.openai.requests.map((request) => request.headers.authorization), [`Bearer ${replaced}`]);

    // A switch to marketplace mode with an empty pool: the other instance stops using the key.
    stack.clearMocks();
    const patched = await first.api('PATCH', `/api/v1/projects/${stack.project.projectId}/providers/openai`, { mode: 'marketplace' });
    assert.equal(patched.status, 200, `mode switched through the first instance: ${patched.text}`);
    await sleep(1000);
    assertKeystoreError(await chat(second, token.token), 503, 'no_capacity', 'second instance after the switch');
    assert.equal(stack.mocks.openai.requests.length, 0, 'the replaced key is not used in marketplace mode');
  });
});
