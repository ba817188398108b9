// Credential sources never mix: a key stored for one project serves only that project, BYOK
// mode never falls back to the marketplace pool (nor the reverse), and a POST that reached the
// upstream is never replayed, so a send is never duplicated.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { startMock as startAnthropic } from '../mocks/anthropic.mjs';
import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { startMock as startResend } from '../mocks/resend.mjs';
import { startMock as startTwilio } from '../mocks/twilio.mjs';
import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import { addPoolCredential, apiExpect, mintToken, startKeystore, waitForLedger } from '../harness/keystore.mjs';

const kChat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
const kPoolKey = 'sk-test-POOL-0003';
const kKeyA = 'sk-test-BYOK-A-0001';
const kKeyB = 'sk-test-BYOK-B';
const kEmail = { from: 'a@x.test', to: 'b@y.test', subject: 's', text: 't' };
const kTwilio = { account_sid: 'AC11111111111111111111111111111111', auth_token: 'tw_test_token_0001' };
const kPlaceholderSid = 'AC00000000000000000000000000000000';

describe('credential sources stay apart', () => {
  let mocks;
  let ks;
  let projects;

  async function newProject(name) {
    const project = await apiExpect(ks, 'POST', '/api/v1/projects', { name }, 201);
    const agent = await apiExpect(ks, 'POST', `/api/v1/projects/${project.id}/agents`, { name: 'worker' }, 201);
    const { token } = await mintToken(ks, agent.id);
    return { id: project.id, token };
  }

  function enable(projectId, provider, mode) {
    return apiExpect(ks, 'PATCH', `/api/v1/projects/${projectId}/providers/${provider}`, { mode, status: 'enabled' }, 200);
  }

  before(async () => {
    mocks = {
      openai: await startOpenAi(),
      anthropic: await startAnthropic(),
      resend: await startResend(),
      twilio: await startTwilio(),
    };
    ks = await startKeystore({
      upstreams: Object.fromEntries(Object.entries(mocks).map(([id, mock]) => [id, mock.url])),
    });
    await addPoolCredential(ks, 'openai', kPoolKey);
    projects = {
      a: await newProject('tenant-a'),
      b: await newProject('tenant-b'),
      empty: await newProject('tenant-empty'),
    };
    await apiExpect(ks, 'PUT', `/api/v1/projects/${projects.a.id}/providers/openai/key`, { api_key: kKeyA }, 200);
    await enable(projects.a.id, 'openai', 'byok');
  });

  after(async () => {
    await ks?.close();
    await Promise.all(Object.values(mocks ?? {}).map((mock) => mock.close()));
  });

  beforeEach(() => {
    for (const mock of Object.values(mocks)) {
      mock.clear();
      mock.setBehavior({});
      mock.setExpectedCredential(undefined);
    }
  });

  test('a key stored for project B serves only project B, in BYOK mode', async () => {
    await apiExpect(ks, 'POST', `/api/v1/projects/${projects.b.id}/providers/openai/key`, { api_key: kKeyB }, 200);
    await enable(projects.b.id, 'openai', 'byok');
    const response = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token: projects.b.token, json: kChat });
    assert.equal(response.status, 200, response.text);
    assert.equal(mocks.openai.requests.length, 1);
    assert.equal(mocks.openai.requests[0].headers.authorization, `Bearer ${kKeyB}`);

    const listedB = await apiExpect(ks, 'GET', `/api/v1/projects/${projects.b.id}/providers/openai`, undefined, 200);
    const listedA = await apiExpect(ks, 'GET', `/api/v1/projects/${projects.a.id}/providers/openai`, undefined, 200);
    assert.notEqual(listedB.key_fingerprint, listedA.key_fingerprint, 'A keeps its own key');
    const rows = await waitForLedger(ks, projects.b.id, 1);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].mode, 'byok');
  });

  test('BYOK mode without a key is byok_key_missing, never the pool or another project', async () => {
    await enable(projects.empty.id, 'openai', 'byok');
    const response = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token: projects.empty.token, json: kChat });
    const body = assertKeystoreError(response, 409, 'byok_key_missing');
    assert.ok(!JSON.stringify(body).includes(kPoolKey), 'the error names no pool key');
    assert.ok(!JSON.stringify(body).includes(kKeyA), 'the error names no other project key');
    assert.equal(mocks.openai.requests.length, 0, 'no request reached the upstream');
    const rows = await waitForLedger(ks, projects.empty.id, 0, { timeoutMs: 300 });
    assert.equal(rows.length, 0, 'no ledger row, and no marketplace row');
  });

  test('marketplace mode with no pool credential is no_capacity, never the stored BYOK key', async () => {
    await apiExpect(ks, 'PUT', `/api/v1/projects/${projects.empty.id}/providers/anthropic/key`, { api_key: 'sk-ant-test-BYOK-0009' }, 200);
    await enable(projects.empty.id, 'anthropic', 'marketplace');
    const response = await proxyRequest(ks, {
      path: '/v1/anthropic/v1/messages',
      token: projects.empty.token,
      headers: { 'anthropic-version': '2023-06-01' },
      json: { model: 'claude-3-5-haiku-latest', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
    });
    assertKeystoreError(response, 503, 'no_capacity');
    assert.equal(mocks.anthropic.requests.length, 0);
  });

  test('a provider enabled in neither mode is provider_not_configured and the token stays home', async () => {
    const response = await proxyRequest(ks, {
      path: '/v1/anthropic/v1/messages',
      token: projects.b.token,
      headers: { 'x-api-key': projects.b.token, 'anthropic-version': '2023-06-01' },
      json: { model: 'claude-3-5-haiku-latest', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
    });
    assertKeystoreError(response, 409, 'provider_not_configured');
    assert.equal(mocks.anthropic.requests.length, 0);
    assert.equal(mocks.anthropic.connections, 0);
  });

  for (const variant of [{ name: '502 after recording the send', behavior: { status: 502 } }, { name: 'connection closed after the body', behavior: { reset: true } }]) {
    test(`an email POST is sent once when the upstream answers with ${variant.name}`, async () => {
      const project = await newProject(`mail-${variant.behavior.reset ? 'reset' : 'status'}`);
      await apiExpect(ks, 'PUT', `/api/v1/projects/${project.id}/providers/resend/key`, { api_key: 're_test_ONCE_0001' }, 200);
      await enable(project.id, 'resend', 'byok');
      mocks.resend.setBehavior(variant.behavior);

      const plain = await proxyRequest(ks, { path: '/v1/resend/emails', token: project.token, json: kEmail });
      assert.equal(plain.status, 502, plain.text);
      assert.equal(mocks.resend.requests.length, 1, 'the send was not replayed');

      const keyed = await proxyRequest(ks, { path: '/v1/resend/emails', token: project.token, json: kEmail, headers: { 'Idempotency-Key': 'idem-001' } });
      assert.equal(keyed.status, 502, keyed.text);
      assert.equal(mocks.resend.requests.length, 2);
      assert.equal(mocks.resend.requests[1].headers['idempotency-key'], 'idem-001', 'the idempotency key passes unchanged');

      const rows = await waitForLedger(ks, project.id, 2);
      assert.equal(rows.length, 2, 'one ledger row per request, never one per attempt');
    });
  }

  test('a Twilio message POST that failed upstream is not replayed', async () => {
    const project = await newProject('sms-once');
    await apiExpect(ks, 'PUT', `/api/v1/projects/${project.id}/providers/twilio/key`, { credential: kTwilio }, 200);
    await enable(project.id, 'twilio', 'byok');
    mocks.twilio.setBehavior({ status: 502 });
    const response = await proxyRequest(ks, {
      path: `/v1/twilio/2010-04-01/Accounts/${kPlaceholderSid}/Messages.json`,
      token: undefined,
      headers: {
        authorization: `Basic ${Buffer.from(`${kPlaceholderSid}:${project.token}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'To=%2B15550001111&From=%2B15550002222&Body=hi',
    });
    assert.equal(response.status, 502, response.text);
    assert.equal(mocks.twilio.requests.length, 1);
    assert.equal(mocks.twilio.requests[0].url, `/2010-04-01/Accounts/${kTwilio.account_sid}/Messages.json`);
    const rows = await waitForLedger(ks, project.id, 1);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].outcome, 'upstream_error');
  });
});
