// Agent token checks at the proxy: missing, unknown, expired, revoked and deleted tokens,
// paused agents and scopes. Every rejected request must end before an upstream connection.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';

import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import { cliJson, mintToken } from '../harness/keystore.mjs';
import { startStack, upstreamConnectionCount, upstreamRequestCount } from '../harness/stack.mjs';

const kChatPath = '/v1/openai/v1/chat/completions';
const kChat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
const kMessagesPath = '/v1/anthropic/v1/messages';
const kMessage = { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('agent tokens at the proxy', () => {
  let stack;
  let ks;

  before(async () => {
    stack = await startStack();
    ks = stack.ks;
  });

  after(async () => {
    await stack?.close();
  });

  beforeEach(() => {
    stack.clearMocks();
  });

  function chat(token, extra = {}) {
    return proxyRequest(ks, { path: kChatPath, token, json: kChat, ...extra });
  }

  function assertNoUpstreamTraffic(context) {
    assert.equal(upstreamRequestCount(stack.mocks), 0, `${context}: upstreams received 0 requests`);
    assert.equal(upstreamConnectionCount(stack.mocks), 0, `${context}: upstreams accepted 0 connections`);
  }

  async function newAgent(name) {
    return cliJson(ks, ['agent', 'create', name, '--project', stack.project.projectId]);
  }

  test('valid token reaches upstream', async () => {
    const response = await chat(stack.project.token);
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.openai.requests.length, 1, 'openai mock received one request');
  });

  test('missing token is 401 missing_token', async () => {
    const response = await chat(undefined);
    assertKeystoreError(response, 401, 'missing_token');
    assertNoUpstreamTraffic('missing token');
  });

  test('unknown token is 401 invalid_token', async () => {
    const unknown = `ks_${randomBytes(32).toString('hex')}`;
    const response = await chat(unknown);
    assertKeystoreError(response, 401, 'invalid_token');
    assert.ok(!response.text.includes(unknown), 'error body does not contain the token');
    assertNoUpstreamTraffic('unknown token');
  });

  test('malformed token is 401 invalid_token', async () => {
    for (const malformed of ['ks_abc', 'not-a-token', `ks_${'G'.repeat(64)}`]) {
      const response = await chat(malformed);
      assertKeystoreError(response, 401, 'invalid_token', `token ${malformed}`);
    }
    assertNoUpstreamTraffic('malformed tokens');
  });

  test('expired token is 401 token_expired', async () => {
    const agent = await newAgent('expiring');
    const token = await mintToken(ks, agent.id, { expiresIn: '1s' });
    await sleep(1500);

    const response = await chat(token.token);
    assertKeystoreError(response, 401, 'token_expired');
    assert.ok(!response.text.includes(token.token), 'error body does not contain the token');
    assert.ok(!response.text.includes(token.token.slice(3)), 'error body does not contain the token hex');
    assertNoUpstreamTraffic('expired token');
  });

  test('revoked token rejected on next request', async () => {
    const agent = await newAgent('revoking');
    const token = await mintToken(ks, agent.id);
    const before = await chat(token.token);
    assert.equal(before.status, 200, `request before revocation is 200: ${before.text}`);

    const revoke = await ks.cli(['token', 'revoke', token.id]);
    assert.equal(revoke.code, 0, `token revoke exits 0; stderr: ${revoke.stderr}`);
    stack.clearMocks();

    const response = await chat(token.token);
    assertKeystoreError(response, 401, 'token_revoked');
    assert.ok(!response.text.includes(token.token), 'error body does not contain the token');
    assertNoUpstreamTraffic('revoked token');
  });

  test('revoke through API rejected on next request', async () => {
    const agent = await newAgent('revoking-api');
    const token = await mintToken(ks, agent.id);
    assert.equal((await chat(token.token)).status, 200, 'request before revocation is 200');

    const revoke = await ks.api('POST', `/api/v1/tokens/${token.id}/revoke`);
    assert.ok(revoke.status === 200 || revoke.status === 204, `POST revoke succeeds: ${revoke.status} ${revoke.text}`);
    stack.clearMocks();

    assertKeystoreError(await chat(token.token), 401, 'token_revoked');
    assertNoUpstreamTraffic('token revoked through the API');
  });

  test('expiry set to now rejected on next request', async () => {
    const agent = await newAgent('expire-now');
    const token = await mintToken(ks, agent.id);
    assert.equal((await chat(token.token)).status, 200, 'request before the expiry change is 200');

    const patch = await ks.api('PATCH', `/api/v1/tokens/${token.id}`, {
      expires_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    });
    assert.equal(patch.status, 200, `PATCH expires_at is 200: ${patch.text}`);
    await sleep(1100);
    stack.clearMocks();

    assertKeystoreError(await chat(token.token), 401, 'token_expired');
    assertNoUpstreamTraffic('token expired by PATCH');
  });

  test('deleted token rejected on next request', async () => {
    const agent = await newAgent('deleting');
    const token = await mintToken(ks, agent.id);
    assert.equal((await chat(token.token)).status, 200, 'request before deletion is 200');

    const deletion = await ks.api('DELETE', `/api/v1/tokens/${token.id}`);
    assert.ok(deletion.status === 200 || deletion.status === 204, `DELETE succeeds: ${deletion.status} ${deletion.text}`);
    stack.clearMocks();

    const response = await chat(token.token);
    assert.equal(response.status, 401, `status is 401: ${response.text}`);
    const code = response.json()?.error?.code;
    assert.ok(code === 'invalid_token' || code === 'token_revoked', `code is invalid_token or token_revoked: ${response.text}`);
    assertNoUpstreamTraffic('deleted token');
  });

  test('token minted through API with expiry works', async () => {
    const agent = await newAgent('api-minted');
    const minted = await ks.api('POST', `/api/v1/agents/${agent.id}/tokens`, {
      scopes: ['provider:openai:*'],
      expires_in: '1h',
    });
    assert.ok(minted.status === 200 || minted.status === 201, `POST tokens succeeds: ${minted.status} ${minted.text}`);
    assert.match(minted.json?.token ?? '', /^ks_[0-9a-f]{64}$/, 'answer carries the token once');
    const response = await chat(minted.json.token);
    assert.equal(response.status, 200, `request with the API-minted token is 200: ${response.text}`);
  });

  test('paused agent is 403 agent_paused', async () => {
    const agent = await newAgent('pausing');
    const token = await mintToken(ks, agent.id);
    const pause = await ks.api('PATCH', `/api/v1/agents/${agent.id}`, { status: 'paused' });
    assert.equal(pause.status, 200, `PATCH status paused is 200: ${pause.text}`);
    stack.clearMocks();

    assertKeystoreError(await chat(token.token), 403, 'agent_paused');
    assertNoUpstreamTraffic('paused agent');

    const resume = await ks.api('PATCH', `/api/v1/agents/${agent.id}`, { status: 'active' });
    assert.equal(resume.status, 200, `PATCH status active is 200: ${resume.text}`);
    const response = await chat(token.token);
    assert.equal(response.status, 200, `request after resuming is 200: ${response.text}`);
  });

  test('other provider scope is 403 scope_denied', async () => {
    const agent = await newAgent('anthropic-only');
    const token = await mintToken(ks, agent.id, { scopes: ['provider:anthropic:*'] });

    assertKeystoreError(await chat(token.token), 403, 'scope_denied', 'anthropic scope calling openai');
    assertNoUpstreamTraffic('anthropic scope calling openai');

    const allowed = await proxyRequest(ks, { path: kMessagesPath, token: token.token, json: kMessage });
    assert.equal(allowed.status, 200, `anthropic scope calling anthropic is 200: ${allowed.text}`);
  });

  test('read scope denies POST', async () => {
    const agent = await newAgent('read-only');
    const token = await mintToken(ks, agent.id, { scopes: ['provider:openai:read'] });

    assertKeystoreError(await chat(token.token), 403, 'scope_denied', 'read scope calling POST');
    assertNoUpstreamTraffic('read scope calling POST');

    const list = await proxyRequest(ks, { method: 'GET', path: '/v1/openai/v1/models', token: token.token });
    assert.equal(list.status, 200, `read scope calling GET is 200: ${list.text}`);
  });

  test('write scope denies GET', async () => {
    const agent = await newAgent('write-only');
    const token = await mintToken(ks, agent.id, { scopes: ['provider:openai:write'] });

    const list = await proxyRequest(ks, { method: 'GET', path: '/v1/openai/v1/models', token: token.token });
    assertKeystoreError(list, 403, 'scope_denied', 'write scope calling GET');
    assertNoUpstreamTraffic('write scope calling GET');

    const response = await chat(token.token);
    assert.equal(response.status, 200, `write scope calling POST is 200: ${response.text}`);
  });

  test('token in x-api-key accepted for anthropic', async () => {
    const response = await proxyRequest(ks, {
      path: kMessagesPath,
      headers: ['x-api-key', stack.project.token, 'anthropic-version', '2023-06-01'],
      json: kMessage,
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.anthropic.requests.length, 1, 'anthropic mock received one request');
  });
});
