// HTTPS upstreams: the proxy sends the upstream's own host name as Host and as TLS server name
// whatever the client sent, verifies the certificate against --upstream-ca-file, and fails with
// 502 upstream_unreachable when the certificate is not signed by that CA.

import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, beforeEach, describe, test } from 'node:test';

import { startMock as startAnthropic } from '../mocks/anthropic.mjs';
import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { rawHeaderValues } from '../mocks/recorder.mjs';
import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import { makeTempDir, provision, startKeystore } from '../harness/keystore.mjs';
import { kAnthropicKey, kOpenAiKey } from '../harness/secrets.mjs';
import { makeTestCertificates } from '../harness/tls.mjs';

const kChatPath = '/v1/openai/v1/chat/completions';
const kChat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

describe('TLS upstreams', () => {
  let certDir;
  let trusted;
  let untrusted;
  let ks;
  let project;

  before(async () => {
    certDir = await makeTempDir('keystore-tls-');
    const certificates = makeTestCertificates(certDir);
    trusted = await startOpenAi({
      tls: { key: certificates.key, cert: certificates.cert },
      expectedCredential: kOpenAiKey,
    });
    untrusted = await startAnthropic({
      tls: { key: certificates.rogueKey, cert: certificates.rogueCert },
      expectedCredential: kAnthropicKey,
    });
    ks = await startKeystore({
      upstreams: {
        openai: `https://localhost:${trusted.port}`,
        anthropic: `https://localhost:${untrusted.port}`,
      },
      extraArgs: ['--upstream-ca-file', certificates.caFile],
    });
    project = await provision(ks, { keys: { openai: kOpenAiKey, anthropic: kAnthropicKey } });
  });

  after(async () => {
    await ks?.close();
    await trusted?.close();
    await untrusted?.close();
    if (certDir) {
      await rm(certDir, { recursive: true, force: true });
    }
  });

  beforeEach(() => {
    trusted.clear();
    untrusted.clear();
    trusted.setBehavior({ requireHost: 'localhost', requireSni: 'localhost' });
  });

  test('upstream Host and SNI ignore client Host', async () => {
    const response = await proxyRequest(ks, {
      path: kChatPath,
      token: project.token,
      headers: ['Host', 'proxy.example.test'],
      json: kChat,
    });
    assert.equal(response.status, 200, `status is 200 (the mock answers 421 on a wrong Host or SNI): ${response.text}`);
    assert.equal(trusted.requests.length, 1, 'the TLS mock received one request');
    const received = trusted.requests[0];
    assert.equal(received.servername, 'localhost', 'TLS server name is localhost');
    assert.deepEqual(rawHeaderValues(received, 'host'), [`localhost:${trusted.port}`], 'exactly one Host, the upstream');
    assert.deepEqual(rawHeaderValues(received, 'authorization'), [`Bearer ${kOpenAiKey}`], 'the key is injected once');
  });

  test('X-Forwarded-Host does not change upstream Host', async () => {
    const response = await proxyRequest(ks, {
      path: kChatPath,
      token: project.token,
      headers: ['Host', 'proxy.example.test', 'X-Forwarded-Host', 'evil.example'],
      json: kChat,
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    const received = trusted.requests[0];
    assert.ok(received, 'the TLS mock received the request');
    assert.equal(received.servername, 'localhost', 'TLS server name is localhost');
    assert.deepEqual(rawHeaderValues(received, 'host'), [`localhost:${trusted.port}`], 'Host is the upstream');
  });

  test('certificate from another CA is 502', async () => {
    const response = await proxyRequest(ks, {
      path: '/v1/anthropic/v1/messages',
      token: project.token,
      json: { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [] },
    });
    assertKeystoreError(response, 502, 'upstream_unreachable');
    assert.equal(untrusted.requests.length, 0, 'the untrusted upstream received no HTTP request');
    assert.ok(!response.text.includes(kAnthropicKey), 'error body does not contain the key');
  });
});
