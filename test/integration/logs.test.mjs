// Request logs on stderr: JSON lines, one line per proxied or rejected request, found by the
// request id that the upstream received or that the error body carries.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { rawHeaderValues } from '../mocks/recorder.mjs';
import { proxyRequest } from '../harness/http.mjs';
import { startStack } from '../harness/stack.mjs';

describe('request logs', () => {
  let stack;
  const requestIds = [];
  let lines = [];

  before(async () => {
    stack = await startStack();
    const { ks, project, mocks } = stack;

    const chat = await proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token: project.token,
      json: { model: 'gpt-4o-mini', messages: [] },
    });
    assert.equal(chat.status, 200, `chat is 200: ${chat.text}`);
    requestIds.push(rawHeaderValues(mocks.openai.requests[0], 'x-request-id')[0]);

    const email = await proxyRequest(ks, {
      path: '/v1/resend/emails',
      token: project.token,
      json: { from: 'a@example.test', to: 'b@example.test', subject: 's', text: 't' },
    });
    assert.equal(email.status, 200, `email is 200: ${email.text}`);
    requestIds.push(rawHeaderValues(mocks.resend.requests[0], 'x-request-id')[0]);

    const rejected = await proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      json: { model: 'gpt-4o-mini', messages: [] },
    });
    assert.equal(rejected.status, 401, `a request without a token is 401: ${rejected.text}`);
    requestIds.push(rejected.json().error.request_id);

    await new Promise((resolve) => setTimeout(resolve, 500));
    lines = ks.stderrText().split('\n').filter((line) => line.trim().length > 0);
  });

  after(async () => {
    await stack?.close();
  });

  test('every stderr line is JSON', () => {
    assert.ok(lines.length > 0, 'the server wrote log lines');
    for (const line of lines) {
      let parsed;
      try {
        parsed = JSON.parse(line);
      } catch {
        assert.fail(`stderr line is not JSON: ${line}`);
      }
      assert.equal(typeof parsed, 'object', `stderr line is a JSON object: ${line}`);
    }
  });

  test('one log line per request', () => {
    for (const requestId of requestIds) {
      assert.equal(typeof requestId, 'string', 'the request id is known');
      const matching = lines.filter((line) => line.includes(requestId));
      assert.equal(matching.length, 1, `exactly one log line names request ${requestId}: ${matching.join('\n')}`);
    }
  });

  test('log lines carry no token', () => {
    const hex = stack.project.token.slice('ks_'.length);
    for (const line of lines) {
      assert.ok(!line.includes(hex), 'a log line does not contain the agent token');
    }
  });
});
