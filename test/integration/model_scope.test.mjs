// Agent tokens limited to certain models: the proxy reads the model where the upstream reads it
// (the top-level "model" of the JSON body) and rejects every request that could make the
// upstream see another model, before any upstream connection.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import { cliJson, mintToken } from '../harness/keystore.mjs';
import { startStack, upstreamConnectionCount, upstreamRequestCount } from '../harness/stack.mjs';

const kChatPath = '/v1/openai/v1/chat/completions';
const kAllowedModel = 'gpt-4o-mini';
const kJsonHeaders = ['Content-Type', 'application/json'];
const kMessages = '"messages":[{"role":"user","content":"hi"}]';

describe('model restrictions at the proxy', () => {
  let stack;
  let ks;
  let limited;

  before(async () => {
    stack = await startStack();
    ks = stack.ks;
    const agent = await cliJson(ks, ['agent', 'create', 'model-limited', '--project', stack.project.projectId]);
    limited = await mintToken(ks, agent.id, { models: [kAllowedModel] });
  });

  after(async () => {
    await stack?.close();
  });

  beforeEach(() => {
    stack.clearMocks();
  });

  // Sends `body` (a string or Buffer) as a chat completion with the limited token.
  function rawChat(body, { query = '', headers = kJsonHeaders, ...rest } = {}) {
    return proxyRequest(ks, { path: kChatPath + query, token: limited.token, headers, body, ...rest });
  }

  function assertNoUpstreamTraffic(context) {
    assert.equal(upstreamRequestCount(stack.mocks), 0, `${context}: upstreams received 0 requests`);
    assert.equal(upstreamConnectionCount(stack.mocks), 0, `${context}: upstreams accepted 0 connections`);
  }

  test('token create and list show models', async () => {
    assert.deepEqual(limited.models, [kAllowedModel], 'token create returns the models');

    const listed = await ks.cli(['token', 'list', '--agent', limited.agent_id]);
    assert.equal(listed.code, 0, `token list exits 0; stderr: ${listed.stderr}`);
    const lines = listed.stdout.trim().split('\n');
    assert.match(lines[0], /\bSCOPES\s+MODELS\s+EXPIRES\b/, `header has a MODELS column: ${lines[0]}`);
    const row = lines.find((line) => line.startsWith(limited.id));
    assert.ok(row, `token list has a row for ${limited.id}: ${listed.stdout}`);
    assert.match(row, /\sall\s+gpt-4o-mini\s/, `row shows scopes all and model gpt-4o-mini: ${row}`);

    const unrestricted = await ks.cli(['token', 'list', '--agent', stack.project.agentId]);
    assert.equal(unrestricted.code, 0, `token list exits 0; stderr: ${unrestricted.stderr}`);
    assert.match(unrestricted.stdout, /\sall\s+any\s/, `unrestricted token shows models any: ${unrestricted.stdout}`);
  });

  test('invalid model name rejected at token create', async () => {
    const result = await ks.cli(['token', 'create', '--agent', limited.agent_id, '--model', 'gpt 4o', '--json']);
    assert.equal(result.code, 1, `token create with a bad model exits 1; stderr: ${result.stderr}`);
    assert.match(result.stderr, /"models" entry 0 is not a model name/, `stderr names the field: ${result.stderr}`);
  });

  test('allowed model reaches upstream unchanged', async () => {
    const body = `{"model":"${kAllowedModel}",${kMessages}}`;
    const response = await rawChat(body);
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.openai.requests.length, 1, 'openai mock received one request');
    const forwarded = stack.mocks.openai.requests[0].body.toString('utf8');
    assert.equal(forwarded, body, 'upstream received the body byte for byte');
    assert.equal(JSON.parse(forwarded).model, kAllowedModel, 'upstream body model is gpt-4o-mini');
  });

  test('allowed model in chunked body reaches upstream', async () => {
    const body = `{"model":"${kAllowedModel}",${kMessages}}`;
    const response = await rawChat(body, { chunked: true, chunkSize: 7 });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.openai.requests.length, 1, 'openai mock received one request');
    assert.equal(JSON.parse(stack.mocks.openai.requests[0].body.toString('utf8')).model, kAllowedModel,
      'upstream body model is gpt-4o-mini');
  });

  test('model list without body allowed', async () => {
    const response = await proxyRequest(ks, { method: 'GET', path: '/v1/openai/v1/models', token: limited.token });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.openai.requests.length, 1, 'openai mock received one request');
  });

  test('query model rejected despite allowed body', async () => {
    const response = await rawChat(`{"model":"${kAllowedModel}",${kMessages}}`, { query: '?model=gpt-4o' });
    const body = assertKeystoreError(response, 400, 'invalid_request');
    assert.equal(body.error.message, 'the model must be given in the request body, not the query string');
    assertNoUpstreamTraffic('model in the query string');
  });

  test('encoded query model rejected', async () => {
    for (const query of ['?MODEL=gpt-4o', '?mod%65l=gpt-4o', '?x=1;model=gpt-4o', '?model[]=gpt-4o']) {
      const response = await rawChat(`{"model":"${kAllowedModel}",${kMessages}}`, { query });
      assertKeystoreError(response, 400, 'invalid_request', query);
    }
    assertNoUpstreamTraffic('encoded model in the query string');
  });

  test('duplicate model key is invalid_json', async () => {
    for (const body of [
      `{"model":"${kAllowedModel}","model":"gpt-4o","messages":[]}`,
      `{"model":"gpt-4o","model":"${kAllowedModel}","messages":[]}`,
      `{"model":"${kAllowedModel}","mod\\u0065l":"gpt-4o","messages":[]}`,
    ]) {
      const response = await rawChat(body);
      const error = assertKeystoreError(response, 400, 'invalid_json', body);
      assert.equal(error.error.message, "the request body has duplicate key 'model'", body);
    }
    assertNoUpstreamTraffic('duplicate model keys');
  });

  test('nested duplicate keys are invalid_json', async () => {
    const body = `{"model":"${kAllowedModel}","messages":[{"role":"user","role":"system","content":"hi"}]}`;
    const response = await rawChat(body);
    const error = assertKeystoreError(response, 400, 'invalid_json');
    assert.equal(error.error.message, "the request body has duplicate key 'role'");
    assertNoUpstreamTraffic('nested duplicate keys');
  });

  test('other model is scope_denied', async () => {
    const response = await rawChat(`{"model":"gpt-4o",${kMessages}}`);
    const body = assertKeystoreError(response, 403, 'scope_denied');
    assert.equal(body.error.message, "agent token may not use model 'gpt-4o'");
    assertNoUpstreamTraffic('model gpt-4o');
  });

  test('other model in chunked body is scope_denied', async () => {
    const response = await rawChat(`{"model":"gpt-4o",${kMessages}}`, { chunked: true, chunkSize: 5 });
    assertKeystoreError(response, 403, 'scope_denied');
    assertNoUpstreamTraffic('model gpt-4o in a chunked body');
  });

  test('missing model is scope_denied', async () => {
    for (const body of [`{${kMessages}}`, `{"metadata":{"model":"${kAllowedModel}"},${kMessages}}`]) {
      const response = await rawChat(body);
      const error = assertKeystoreError(response, 403, 'scope_denied', body);
      assert.equal(error.error.message, 'this token is limited to certain models and the request names none', body);
    }
    const empty = await rawChat(undefined, { headers: [] });
    assertKeystoreError(empty, 403, 'scope_denied', 'POST without a body');
    assertNoUpstreamTraffic('no model');
  });

  test('invalid JSON is invalid_json', async () => {
    const bodies = [
      Buffer.concat([Buffer.from(`{"model":"${kAllowedModel}","x":"`), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
      `{"model":"${kAllowedModel}",${kMessages}`,
      `{"model":"${kAllowedModel}"`,
      `{"model":"${kAllowedModel}"} {"model":"gpt-4o"}`,
    ];
    for (const body of bodies) {
      const response = await rawChat(body);
      const error = assertKeystoreError(response, 400, 'invalid_json', String(body));
      assert.equal(error.error.message, 'the request body is not valid JSON', String(body));
    }
    assertNoUpstreamTraffic('invalid JSON');
  });

  test('form body is invalid_request', async () => {
    // As a form, this body has model=gpt-4o although its JSON reading names gpt-4o-mini.
    const body = `{"model":"${kAllowedModel}","x":"&model=gpt-4o&"}`;
    const response = await rawChat(body, { headers: ['Content-Type', 'application/x-www-form-urlencoded'] });
    assertKeystoreError(response, 400, 'invalid_request');
    assertNoUpstreamTraffic('form body');
  });

  test('second Content-Type is invalid_request', async () => {
    // The check must not read the JSON type while the upstream reads the form type.
    const body = `{"model":"${kAllowedModel}","x":"&model=gpt-4o&"}`;
    const headers = ['Content-Type', 'application/json', 'Content-Type', 'application/x-www-form-urlencoded'];
    const response = await rawChat(body, { headers });
    assert.equal(response.status, 400, `status is 400; body: ${response.text}`);
    assertNoUpstreamTraffic('two Content-Type headers');
  });

  test('unrestricted token may use any model', async () => {
    const response = await proxyRequest(ks, {
      path: kChatPath,
      token: stack.project.token,
      json: { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] },
    });
    assert.equal(response.status, 200, `status is 200: ${response.text}`);
    assert.equal(stack.mocks.openai.requests.length, 1, 'openai mock received one request');
  });
});
