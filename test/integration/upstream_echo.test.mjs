// What an upstream controls beyond header values and the body: its status line and its field
// names. An upstream that echoes the injected key there must not pass it to the agent. A status code outside 200-599, and a body that fails before any
// byte reached the client, become 502. Also the request side of the same risk: TRACE,
// whose response echoes the request, is not forwarded, and a method-override field cannot turn
// a read into a write past the token's scopes.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import { mintToken, provision, startKeystore } from '../harness/keystore.mjs';
import { startHeadResponder } from '../harness/raw_upstream.mjs';
import { findSecrets, kOpenAiKey } from '../harness/secrets.mjs';

// An upstream that responds to each request head with `respond(key, path)`, where `key` is the
// bearer value it received, and then closes the connection. It uses a raw socket because
// Node's HTTP server rejects status codes below 100.
function startEchoUpstream(respond) {
  return startHeadResponder((head, socket) => {
    const path = head.split(' ')[1] ?? '';
    const authorization = head.split('\r\n').find((line) => line.toLowerCase().startsWith('authorization:'));
    const key = authorization ? authorization.slice(authorization.indexOf(':') + 1).trim().replace(/^Bearer /, '') : '';
    socket.end(respond(key, path));
  });
}

// The raw response for each path the tests request.
function echoResponse(key, path) {
  const body = '{"ok":true}';
  const tail = `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
  switch (path) {
    case '/v1/reason-echo':
      return `HTTP/1.1 401 Bad key ${key}\r\n${tail}`;
    case '/v1/name-echo':
      return `HTTP/1.1 200 OK\r\nX-${key}: 1\r\nX-Upstream-Trace: kept\r\n${tail}`;
    case '/v1/bad-chunk':
      return 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZZ\r\n';
    case '/v1/status-099':
      return `HTTP/1.1 099 Odd\r\n${tail}`;
    case '/v1/status-999':
      return `HTTP/1.1 999 Odd\r\n${tail}`;
    case '/v1/status-299':
      return `HTTP/1.1 299 Odd\r\n${tail}`;
    default:
      return `HTTP/1.1 200 OK\r\n${tail}`;
  }
}

describe('upstream echo outside header values', () => {
  let upstream;
  let ks;
  let project;
  let readToken;

  before(async () => {
    upstream = await startEchoUpstream(echoResponse);
    ks = await startKeystore({ upstreams: { openai: upstream.url } });
    project = await provision(ks, { keys: { openai: kOpenAiKey } });
    readToken = (await mintToken(ks, project.agentId, { scopes: ['provider:openai:read'] })).token;
  });

  after(async () => {
    await ks?.close();
    await upstream?.close();
  });

  beforeEach(() => {
    upstream.heads.length = 0;
  });

  test('key in reason phrase not relayed', async () => {
    const response = await proxyRequest(ks, { method: 'GET', path: '/v1/openai/v1/reason-echo', token: project.token });
    assert.equal(upstream.heads.length, 1, 'the upstream received the request');
    assert.ok(upstream.heads[0].includes(`Bearer ${kOpenAiKey}`), 'the upstream received the key to echo');
    assert.equal(response.status, 401, `the upstream status is relayed: ${response.text}`);
    assert.equal(response.statusMessage, 'Unauthorized', 'the reason phrase is the standard one');
    assert.deepEqual(findSecrets(response.statusMessage, { openai: kOpenAiKey }), [], 'no form of the key in the status line');
    assert.equal(response.text, '{"ok":true}', 'the body is relayed');
  });

  test('key in field name not relayed', async () => {
    const response = await proxyRequest(ks, { method: 'GET', path: '/v1/openai/v1/name-echo', token: project.token });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.deepEqual(findSecrets(response.rawHeaders.join('\n'), { openai: kOpenAiKey }), [], 'no form of the key in the head');
    assert.equal(response.headers[`x-${kOpenAiKey.toLowerCase()}`], undefined, 'the field named after the key is dropped');
    assert.equal(response.headers['x-upstream-trace'], 'kept', 'other fields are relayed');
  });

  test('nonstandard status has empty reason', async () => {
    const response = await proxyRequest(ks, { method: 'GET', path: '/v1/openai/v1/status-299', token: project.token });
    assert.equal(response.status, 299, `status 299 is relayed: ${response.text}`);
    assert.equal(response.statusMessage, '', 'a code without a standard phrase gets an empty one');
  });

  for (const status of ['099', '999']) {
    test(`status ${status} is 502 upstream_invalid_response`, async () => {
      const response = await proxyRequest(ks, { method: 'GET', path: `/v1/openai/v1/status-${status}`, token: project.token });
      assertKeystoreError(response, 502, 'upstream_invalid_response');
      assert.ok(response.json().error.message.includes(String(Number(status))), `the message names the code: ${response.text}`);
      assert.ok(ks.running, 'the keystore process is still running');
    });
  }

  test('invalid body before any byte is 502', async () => {
    const response = await proxyRequest(ks, { method: 'GET', path: '/v1/openai/v1/bad-chunk', token: project.token });
    assertKeystoreError(response, 502, 'upstream_invalid_response');
    assert.equal(upstream.heads.length, 1, 'the upstream received the request once');
    assert.ok(ks.running, 'the keystore process is still running');
  });

  test('TRACE rejected before the upstream', async () => {
    const response = await proxyRequest(ks, { method: 'TRACE', path: '/v1/openai/v1/models', token: project.token });
    assertKeystoreError(response, 400, 'invalid_request');
    assert.ok(response.json().error.message.includes('TRACE'), `the message names the method: ${response.text}`);
    assert.equal(upstream.heads.length, 0, 'the upstream received no request');
  });

  test('read token with write override denied', async () => {
    for (const name of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override']) {
      for (const value of ['POST', 'DELETE', 'bogus']) {
        const response = await proxyRequest(ks, {
          method: 'GET',
          path: '/v1/openai/v1/models',
          token: readToken,
          headers: [name, value],
        });
        assertKeystoreError(response, 403, 'scope_denied', `${name}: ${value}`);
        assert.ok(response.json().error.message.includes('method-override'), `the message names the cause: ${response.text}`);
      }
    }
    assert.equal(upstream.heads.length, 0, 'the upstream received no request');
  });

  test('read token with read override allowed', async () => {
    const response = await proxyRequest(ks, {
      method: 'GET',
      path: '/v1/openai/v1/models',
      token: readToken,
      headers: ['X-HTTP-Method-Override', 'GET'],
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(upstream.heads.length, 1, 'the upstream received the request');
  });

  test('write token with write override allowed', async () => {
    const response = await proxyRequest(ks, {
      method: 'GET',
      path: '/v1/openai/v1/models',
      token: project.token,
      headers: ['X-HTTP-Method-Override', 'POST'],
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(upstream.heads.length, 1, 'the upstream received the request');
  });
});
