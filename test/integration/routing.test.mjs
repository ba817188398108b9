// Proxy routing: path and query forwarded unchanged, unknown providers, path traversal and
// encoded slashes rejected before any upstream connection, and request-level attempts to
// change the upstream (body fields, headers, query, Host, absolute-form target) ignored.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import { startStack, upstreamConnectionCount, upstreamRequestCount } from '../harness/stack.mjs';

const kChat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

describe('proxy routing', () => {
  let stack;
  let ks;
  let token;
  // An upstream that is not configured anywhere; no request may ever reach it.
  let stranger;

  before(async () => {
    stack = await startStack();
    ks = stack.ks;
    token = stack.project.token;
    stranger = await startOpenAi();
  });

  after(async () => {
    await stack?.close();
    await stranger?.close();
  });

  beforeEach(() => {
    stack.clearMocks();
    stranger.clear();
  });

  function assertNoUpstreamTraffic(context) {
    assert.equal(upstreamRequestCount(stack.mocks), 0, `${context}: upstreams received 0 requests`);
    assert.equal(upstreamConnectionCount(stack.mocks), 0, `${context}: upstreams accepted 0 connections`);
  }

  test('path and query forwarded unchanged', async () => {
    const response = await proxyRequest(ks, {
      method: 'GET',
      path: '/v1/openai/v1/models?limit=2&after=a%20b&flag',
      token,
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.openai.requests.length, 1, 'openai mock received one request');
    const received = stack.mocks.openai.requests[0];
    assert.equal(received.method, 'GET', 'method is unchanged');
    assert.equal(received.url, '/v1/models?limit=2&after=a%20b&flag', 'path and query are unchanged');
  });

  test('body forwarded byte for byte', async () => {
    const body = '{"model":"gpt-4o-mini",  "messages":[{"role":"user","content":"h\\u00e9llo"}] , "n":1}';
    const response = await proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token,
      headers: ['Content-Type', 'application/json'],
      body,
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.openai.requests[0]?.body.toString('utf8'), body, 'upstream body equals the client body');
  });

  test('unknown provider is 404 unknown_provider', async () => {
    const response = await proxyRequest(ks, { path: '/v1/nosuchprovider/v1/chat/completions', token, json: kChat });
    assertKeystoreError(response, 404, 'unknown_provider');
    assertNoUpstreamTraffic('unknown provider');
  });

  test('path traversal is 400 invalid_request', async () => {
    const paths = [
      '/v1/openai/../anthropic/v1/messages',
      '/v1/openai/v1/../../anthropic/v1/messages',
      '/v1/openai/v1/%2e%2e/x',
      '/v1/openai/v1/%2E%2E/%2e%2e/x',
      '/v1/openai/v1/.%2e/x',
      '/v1/openai/v1/chat/..',
    ];
    for (const path of paths) {
      const response = await proxyRequest(ks, { path, token, json: kChat });
      assertKeystoreError(response, 400, 'invalid_request', path);
    }
    assertNoUpstreamTraffic('path traversal');
  });

  test('encoded slash is 400 invalid_request', async () => {
    const paths = [
      '/v1/openai/v1%2Fchat/completions',
      '/v1/openai/v1/chat%2fcompletions',
      '/v1/openai%2F..%2Fanthropic/v1/messages',
    ];
    for (const path of paths) {
      const response = await proxyRequest(ks, { path, token, json: kChat });
      assertKeystoreError(response, 400, 'invalid_request', path);
    }
    assertNoUpstreamTraffic('encoded slash');
  });

  test('body base URL fields ignored', async () => {
    const response = await proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token,
      json: {
        ...kChat,
        api_base: stranger.url,
        base_url: stranger.url,
        baseURL: stranger.url,
        custom_host: stranger.url,
      },
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.openai.requests.length, 1, 'configured upstream received the request');
    assert.equal(stranger.connections, 0, 'unconfigured upstream accepted 0 connections');
  });

  test('upstream override headers ignored', async () => {
    const strangerHost = new URL(stranger.url).host;
    const response = await proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token,
      headers: [
        'X-Upstream-Base', stranger.url,
        'X-Forwarded-Host', strangerHost,
        'X-Portkey-Custom-Host', stranger.url,
        'X-Original-URL', `${stranger.url}/v1/chat/completions`,
      ],
      json: kChat,
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.openai.requests.length, 1, 'configured upstream received the request');
    assert.equal(stranger.connections, 0, 'unconfigured upstream accepted 0 connections');
  });

  test('base_url query parameter ignored', async () => {
    const response = await proxyRequest(ks, {
      path: `/v1/openai/v1/chat/completions?base_url=${encodeURIComponent(stranger.url)}`,
      token,
      json: kChat,
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.openai.requests.length, 1, 'configured upstream received the request');
    assert.equal(stranger.connections, 0, 'unconfigured upstream accepted 0 connections');
  });

  test('client Host header ignored', async () => {
    const strangerHost = new URL(stranger.url).host;
    const response = await proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token,
      headers: ['Host', strangerHost],
      json: kChat,
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.openai.requests.length, 1, 'configured upstream received the request');
    assert.equal(
      stack.mocks.openai.requests[0].headers.host,
      new URL(stack.mocks.openai.url).host,
      'upstream Host is the configured upstream',
    );
    assert.equal(stranger.connections, 0, 'unconfigured upstream accepted 0 connections');
  });

  test('absolute-form target never reaches its host', async () => {
    let status;
    try {
      const response = await proxyRequest(ks, {
        path: `${stranger.url}/v1/openai/v1/chat/completions`,
        token,
        json: kChat,
      });
      status = response.status;
    } catch {
      // Closing the connection is an acceptable response to an absolute-form target.
      status = 'closed';
    }
    assert.notEqual(status, 502, 'the proxy did not try to reach the absolute-form host');
    assert.equal(stranger.connections, 0, `unconfigured upstream accepted 0 connections (answer ${status})`);
  });
});
