// The official `resend` npm SDK through the proxy, holding only the agent token. The SDK takes
// its base URL from RESEND_BASE_URL when the Resend client is constructed.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { Resend } from 'resend';

import { assertNoToken, assertSingleCredential } from '../harness/upstream_checks.mjs';
import { kResendKey, kResendPoolKey } from '../harness/secrets.mjs';
import { startStack } from '../harness/stack.mjs';
import { addPoolCredential, assertOneLedgerRow, enableMarketplace, provision } from '../harness/keystore.mjs';
import { assertEveryRequestClean } from '../harness/upstream_checks.mjs';

const kEmail = {
  from: 'Agent <agent@example.test>',
  to: ['person@example.test'],
  subject: 'Report',
  html: '<p>Done.</p>',
};

describe('resend SDK through the proxy', () => {
  let stack;
  let token;
  let previousBaseUrl;

  before(async () => {
    stack = await startStack();
    token = stack.project.token;
    previousBaseUrl = process.env.RESEND_BASE_URL;
    process.env.RESEND_BASE_URL = `${stack.ks.proxyUrl}/v1/resend`;
  });

  after(async () => {
    if (previousBaseUrl === undefined) {
      delete process.env.RESEND_BASE_URL;
    } else {
      process.env.RESEND_BASE_URL = previousBaseUrl;
    }
    await stack?.close();
  });

  beforeEach(() => {
    stack.clearMocks();
  });

  test('emails.send returns mock id', async () => {
    const resend = new Resend(token);
    const { data, error } = await resend.emails.send(kEmail);
    assert.equal(error, null, `no error: ${JSON.stringify(error)}`);
    assert.equal(stack.mocks.resend.sentEmailIds.length, 1, 'the mock answered one email');
    assert.equal(data?.id, stack.mocks.resend.sentEmailIds[0], 'the id is the one the mock answered');

    const { requests } = stack.mocks.resend;
    assert.equal(requests.length, 1, 'the resend mock received exactly one request');
    assert.equal(requests[0].method, 'POST', 'method is POST');
    assert.equal(requests[0].url, '/emails', 'upstream path is /emails');
    assertSingleCredential(requests[0], 'authorization', `Bearer ${kResendKey}`);
    assertNoToken(requests[0], token);
    const sent = JSON.parse(requests[0].body.toString('utf8'));
    assert.equal(sent.subject, kEmail.subject, 'upstream body carries the subject');
  });

  test('invalid token returns SDK error', async () => {
    const resend = new Resend(`ks_${'1'.repeat(64)}`);
    const { data, error } = await resend.emails.send(kEmail);
    assert.equal(data, null, 'no data');
    assert.ok(error, 'an error is returned');
    assert.equal(stack.mocks.resend.requests.length, 0, 'the upstream received no request');
  });
});

describe('resend SDK in marketplace mode', () => {
  let stack;
  let pooled;
  let market;
  let previousBaseUrl;

  before(async () => {
    stack = await startStack();
    pooled = await addPoolCredential(stack.ks, 'resend', kResendPoolKey, { scope: 'shared' });
    market = await provision(stack.ks, { project: 'proj-market', agent: 'agent-market' });
    await enableMarketplace(stack.ks, market.projectId, 'resend');
    stack.mocks.resend.setExpectedCredential(kResendPoolKey);
    previousBaseUrl = process.env.RESEND_BASE_URL;
    process.env.RESEND_BASE_URL = `${stack.ks.proxyUrl}/v1/resend`;
  });

  after(async () => {
    if (previousBaseUrl === undefined) {
      delete process.env.RESEND_BASE_URL;
    } else {
      process.env.RESEND_BASE_URL = previousBaseUrl;
    }
    await stack?.close();
  });

  beforeEach(() => {
    stack.clearMocks();
  });

  test('emails.send uses shared pool key', async () => {
    const { data, error } = await new Resend(market.token).emails.send(kEmail);
    assert.equal(error, null, `no error: ${JSON.stringify(error)}`);
    assert.equal(data?.id, stack.mocks.resend.sentEmailIds.at(-1), 'the id is the one the mock answered');
    assert.equal(stack.mocks.resend.requests.length, 1, 'the resend mock received exactly one request');
    assertEveryRequestClean(stack.mocks.resend.requests, 'authorization', `Bearer ${kResendPoolKey}`, market.token);
    await assertOneLedgerRow(stack.ks, market.projectId, {
      provider: 'resend',
      mode: 'marketplace',
      upstreamStatus: 200,
      credentialId: pooled.id,
    });
  });
});
