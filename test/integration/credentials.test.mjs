// Provider keys through the admin API: write-only storage, masked reads, masked values rejected
// on write, and a replaced key used from the next request on.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { rawHeaderValues } from '../mocks/recorder.mjs';
import { proxyRequest } from '../harness/http.mjs';
import { provision, startKeystore } from '../harness/keystore.mjs';
import { kOpenAiKey } from '../harness/secrets.mjs';

const kReplacementKey = 'sk-test-OPENAI-0002';
const kChat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

describe('provider keys through the admin API', () => {
  let mock;
  let ks;
  let project;

  before(async () => {
    // No expected credential: these tests read which key the upstream received.
    mock = await startOpenAi();
    ks = await startKeystore({ upstreams: { openai: mock.url } });
    project = await provision(ks, { keys: { openai: kOpenAiKey } });
  });

  after(async () => {
    await ks?.close();
    await mock?.close();
  });

  async function upstreamCredential() {
    mock.clear();
    const response = await proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token: project.token,
      json: kChat,
    });
    assert.equal(response.status, 200, `proxied request is 200: ${response.text}`);
    assert.equal(mock.requests.length, 1, 'upstream received one request');
    return rawHeaderValues(mock.requests[0], 'authorization');
  }

  test('provider reads show masked key', async () => {
    const list = await ks.api('GET', `/api/v1/projects/${project.projectId}/providers`);
    assert.equal(list.status, 200, `GET providers is 200: ${list.text}`);
    assert.ok(!list.text.includes(kOpenAiKey), 'GET providers does not contain the key');
    const rows = Array.isArray(list.json) ? list.json : list.json?.data;
    assert.ok(Array.isArray(rows), `GET providers returns an array or {data: [...]}: ${list.text}`);
    const openai = rows.find((row) => row.provider === 'openai');
    assert.ok(openai, 'GET providers has an openai entry');
    assert.equal(typeof openai.key, 'string', `openai key is a string: ${openai.key}`);
    assert.ok(openai.key.includes('…'), `openai key is masked: ${openai.key}`);

    const single = await ks.api('GET', `/api/v1/projects/${project.projectId}/providers/openai`);
    assert.equal(single.status, 200, `GET providers/openai is 200: ${single.text}`);
    assert.ok(!single.text.includes(kOpenAiKey), 'GET providers/openai does not contain the key');
    assert.ok(single.text.includes('0001'), 'GET providers/openai shows the last 4 characters');
  });

  test('masked value rejected by PATCH', async () => {
    for (const masked of ['sk-test-…0001', 'sk-****0001', '…']) {
      const response = await ks.api('PATCH', `/api/v1/projects/${project.projectId}/providers/openai`, {
        api_key: masked,
      });
      assert.equal(response.status, 400, `PATCH with ${masked} is 400: ${response.text}`);
      assert.equal(response.json?.error?.type, 'keystore_error', 'error type is keystore_error');
    }
    const credential = await upstreamCredential();
    assert.deepEqual(credential, [`Bearer ${kOpenAiKey}`], 'upstream still receives the original key');
  });

  test('masked value rejected by PUT', async () => {
    const response = await ks.api('PUT', `/api/v1/projects/${project.projectId}/providers/openai/key`, {
      api_key: 'sk-test-…0001',
    });
    assert.equal(response.status, 400, `PUT with a masked value is 400: ${response.text}`);
    const credential = await upstreamCredential();
    assert.deepEqual(credential, [`Bearer ${kOpenAiKey}`], 'upstream still receives the original key');
  });

  test('PATCH label keeps key', async () => {
    const response = await ks.api('PATCH', `/api/v1/projects/${project.projectId}/providers/openai`, {
      label: 'production',
    });
    assert.equal(response.status, 200, `PATCH label is 200: ${response.text}`);
    assert.ok(!response.text.includes(kOpenAiKey), 'PATCH answer does not contain the key');
    const credential = await upstreamCredential();
    assert.deepEqual(credential, [`Bearer ${kOpenAiKey}`], 'upstream still receives the original key');
  });

  test('replaced key used by next request', async () => {
    const put = await ks.api('PUT', `/api/v1/projects/${project.projectId}/providers/openai/key`, {
      api_key: kReplacementKey,
    });
    assert.ok(put.status === 200 || put.status === 204, `PUT key is 200 or 204: ${put.status} ${put.text}`);
    assert.ok(!put.text.includes(kReplacementKey), 'PUT answer does not contain the new key');
    assert.deepEqual(await upstreamCredential(), [`Bearer ${kReplacementKey}`], 'upstream receives the new key');

    const post = await ks.api('POST', `/api/v1/projects/${project.projectId}/providers/openai/key`, {
      api_key: kOpenAiKey,
    });
    assert.ok(post.status === 200 || post.status === 201 || post.status === 204, `POST key succeeds: ${post.status} ${post.text}`);
    assert.deepEqual(await upstreamCredential(), [`Bearer ${kOpenAiKey}`], 'upstream receives the key set by POST');

    const patch = await ks.api('PATCH', `/api/v1/projects/${project.projectId}/providers/openai`, {
      api_key: kReplacementKey,
    });
    assert.equal(patch.status, 200, `PATCH api_key is 200: ${patch.text}`);
    assert.ok(!patch.text.includes(kReplacementKey), 'PATCH answer does not contain the new key');
    assert.deepEqual(await upstreamCredential(), [`Bearer ${kReplacementKey}`], 'upstream receives the key set by PATCH');
  });

  test('missing key is 409 byok_key_missing', async () => {
    mock.clear();
    const response = await proxyRequest(ks, {
      path: '/v1/anthropic/v1/messages',
      token: project.token,
      json: { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [] },
    });
    assert.equal(response.status, 409, `status is 409: ${response.text}`);
    const code = response.json()?.error?.code;
    assert.ok(
      code === 'byok_key_missing' || code === 'provider_not_configured',
      `code is byok_key_missing or provider_not_configured: ${response.text}`,
    );
  });
});
