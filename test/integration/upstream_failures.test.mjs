// Upstream failures seen through the proxy. A closed port, a reset connection and a response
// that is not HTTP become 502 with a stable code. Upstream error statuses are relayed as the
// provider sent them, also one sent before the upstream read the body. The proxy keeps serving
// afterwards.

import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';

import { startMock as startAnthropic } from '../mocks/anthropic.mjs';
import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import { makeTempDir, provision, startKeystore } from '../harness/keystore.mjs';
import { startHeadResponder } from '../harness/raw_upstream.mjs';
import { kAllProviderKeys, kAnthropicKey, kOpenAiKey } from '../harness/secrets.mjs';
import { makeTestCertificates } from '../harness/tls.mjs';

const kChatPath = '/v1/openai/v1/chat/completions';
const kChat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

// A loopback port that nothing listens on: bound once, then closed.
async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('upstream failures', () => {
  let openai;
  let anthropic;
  let ks;
  let project;

  before(async () => {
    openai = await startOpenAi({ expectedCredential: kOpenAiKey });
    anthropic = await startAnthropic({ expectedCredential: kAnthropicKey });
    ks = await startKeystore({
      upstreams: {
        openai: openai.url,
        anthropic: anthropic.url,
        resend: `http://127.0.0.1:${await closedPort()}`,
      },
    });
    project = await provision(ks, { keys: kAllProviderKeys });
  });

  after(async () => {
    await ks?.close();
    await openai?.close();
    await anthropic?.close();
  });

  beforeEach(() => {
    openai.clear();
    openai.setBehavior({});
    anthropic.clear();
    anthropic.setBehavior({});
  });

  async function assertStillServing() {
    assert.ok(ks.running, 'the keystore process is still running');
    openai.setBehavior({});
    const next = await proxyRequest(ks, { path: kChatPath, token: project.token, json: kChat });
    assert.equal(next.status, 200, `the next request is 200: ${next.text}`);
  }

  for (const status of [400, 429, 500, 503]) {
    test(`upstream status ${status} relayed`, async () => {
      anthropic.setBehavior({ status });
      const response = await proxyRequest(ks, {
        path: '/v1/anthropic/v1/messages',
        token: project.token,
        json: { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [] },
      });
      assert.equal(response.status, status, `status ${status} is relayed: ${response.text}`);
      const body = response.json();
      assert.equal(body.type, 'error', 'the body is the provider error body');
      assert.equal(body.error?.message, `mock status ${status}`, 'the provider error message is relayed unchanged');
      assert.equal(anthropic.requests.length, 1, 'the upstream received one request');
    });
  }

  test('upstream 401 relayed without key', async () => {
    await ks.api('PUT', `/api/v1/projects/${project.projectId}/providers/openai/key`, {
      api_key: 'sk-test-OPENAI-WRONG',
    });
    try {
      const response = await proxyRequest(ks, { path: kChatPath, token: project.token, json: kChat });
      assert.equal(response.status, 401, `the upstream 401 is relayed: ${response.text}`);
      assert.ok(!response.text.includes('sk-test-OPENAI-WRONG'), 'the answer does not contain the key');
      assert.equal(response.json()?.error?.code, 'invalid_api_key', 'the provider error body is relayed');
    } finally {
      const restore = await ks.api('PUT', `/api/v1/projects/${project.projectId}/providers/openai/key`, {
        api_key: kOpenAiKey,
      });
      assert.ok(restore.status < 300, `restoring the key succeeds: ${restore.status} ${restore.text}`);
    }
  });

  test('closed upstream port is 502 upstream_unreachable', async () => {
    const response = await proxyRequest(ks, {
      path: '/v1/resend/emails',
      token: project.token,
      json: { from: 'a@example.test', to: 'b@example.test', subject: 's', text: 't' },
    });
    assertKeystoreError(response, 502, 'upstream_unreachable');
    await assertStillServing();
  });

  test('garbage answer is 502 upstream_invalid_response', async () => {
    openai.setBehavior({ garbage: true });
    const response = await proxyRequest(ks, { path: kChatPath, token: project.token, json: kChat });
    assertKeystoreError(response, 502, 'upstream_invalid_response');
    assert.equal(openai.requests.length, 1, 'the upstream received the request once, without a retry');
    await assertStillServing();
  });

  test('reset connection is 502', async () => {
    openai.setBehavior({ reset: true });
    const response = await proxyRequest(ks, { path: kChatPath, token: project.token, json: kChat });
    assert.equal(response.status, 502, `status is 502: ${response.text}`);
    const code = response.json()?.error?.code;
    assert.ok(
      code === 'upstream_unreachable' || code === 'upstream_invalid_response',
      `code is upstream_unreachable or upstream_invalid_response: ${response.text}`,
    );
    await assertStillServing();
  });

});

// An upstream that responds with 413 as soon as it has read a request head, and closes without
// reading the body, as a server may for an upload above its limit. Closing with unread data
// resets the connection, so the proxy's write of the body fails. With `secure`, it speaks TLS.
async function startEarlyResponseUpstream({ secure } = {}) {
  const body = JSON.stringify({ error: { message: 'request entity too large', type: 'invalid_request_error' } });
  const upstream = await startHeadResponder((head, socket) => {
    socket.write(
      'HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  }, { secure });
  return { ...upstream, body };
}

for (const secure of [false, true]) {
  describe(`early upstream response over ${secure ? 'TLS' : 'plain'} upstream`, () => {
    let certDir;
    let upstream;
    let ks;
    let project;

    before(async () => {
      let certificates;
      const extraArgs = [];
      if (secure) {
        certDir = await makeTempDir('keystore-early-tls-');
        certificates = makeTestCertificates(certDir);
        extraArgs.push('--upstream-ca-file', certificates.caFile);
      }
      upstream = await startEarlyResponseUpstream({ secure: certificates });
      ks = await startKeystore({ upstreams: { openai: upstream.url }, extraArgs });
      project = await provision(ks, { keys: { openai: kOpenAiKey } });
    });

    after(async () => {
      await ks?.close();
      await upstream?.close();
      if (certDir) {
        await rm(certDir, { recursive: true, force: true });
      }
    });

    test('413 before the body is read is relayed', async () => {
      // 24 MB: more than the loopback socket buffers take, so the upstream closes mid-upload.
      const content = 'x'.repeat(24 * 1024 * 1024);
      const response = await proxyRequest(ks, {
        path: kChatPath,
        token: project.token,
        json: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] },
      });
      assert.equal(response.status, 413, `the upstream's status is relayed: ${response.text.slice(0, 300)}`);
      assert.equal(response.text, upstream.body, "the upstream's body is relayed unchanged");
      assert.equal(upstream.heads.length, 1, 'the upstream received one request head, without a retry');
      const authorization = upstream.heads[0]
        .split('\r\n')
        .filter((line) => line.toLowerCase().startsWith('authorization:'));
      assert.deepEqual(authorization, [`Authorization: Bearer ${kOpenAiKey}`], 'one injected credential');
      assert.equal(upstream.heads[0].includes(project.token), false, 'no agent token reaches the upstream');
      assert.ok(ks.running, 'the keystore process is still running');
    });
  });
}
