// The official `twilio` npm SDK through the proxy, holding only the agent token. Twilio is a
// concierge-tier provider whose credential has two fields, the account SID and the auth token.
//
// The SDK has no base URL option. Each domain object has its own `baseUrl` field
// (https://api.twilio.com for `client.api`), so the agent sets `client.api.baseUrl` to
// `<proxy>/v1/twilio`. The SDK sends HTTP Basic with the account SID as user name and the auth
// token as password, and puts the account SID into the path
// (/2010-04-01/Accounts/{AccountSid}/Messages.json). The agent passes a placeholder SID and its
// agent token as the auth token; the proxy finds the token in the Basic password, sends the
// stored SID and auth token as Basic credentials, and rewrites the path segment after
// `Accounts` to the stored SID.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import twilio from 'twilio';

import { startMock } from '../mocks/twilio.mjs';
import {
  assertOneLedgerRow,
  configureByok,
  fulfillConcierge,
  provision,
  startKeystore,
} from '../harness/keystore.mjs';
import { kTwilioByok, kTwilioPlaceholderSid, kTwilioPool } from '../harness/secrets.mjs';
import { assertEveryRequestClean } from '../harness/upstream_checks.mjs';

const kMessage = { to: '+15005550006', from: '+15005550001', body: 'Build finished.' };

function basicHeader({ account_sid: sid, auth_token: token }) {
  return `Basic ${Buffer.from(`${sid}:${token}`).toString('base64')}`;
}

describe('twilio SDK through the proxy', () => {
  let mock;
  let ks;

  before(async () => {
    mock = await startMock();
    ks = await startKeystore({ upstreams: { twilio: mock.url } });
  });

  after(async () => {
    await ks?.close();
    await mock?.close();
  });

  beforeEach(() => {
    mock.clear();
    mock.setBehavior({});
  });

  function clientFor(token) {
    const client = twilio(kTwilioPlaceholderSid, token, { autoRetry: false });
    client.api.baseUrl = `${ks.proxyUrl}/v1/twilio`;
    return client;
  }

  // Asserts that the one upstream request created a message under the real account.
  function assertMessageCreated(credential, token) {
    assert.equal(mock.requests.length, 1, 'the twilio mock received exactly one request');
    const [record] = mock.requests;
    assert.equal(record.method, 'POST', 'method is POST');
    assert.equal(
      new URL(record.url, 'http://mock').pathname,
      `/2010-04-01/Accounts/${credential.account_sid}/Messages.json`,
      'the path names the stored account SID',
    );
    assert.ok(!record.url.includes(kTwilioPlaceholderSid), 'the placeholder SID is not in the upstream URL');
    assertEveryRequestClean(mock.requests, 'authorization', basicHeader(credential), token);
    assert.equal(record.headers['content-type'], 'application/x-www-form-urlencoded', 'the body stays form-encoded');
    const form = new URLSearchParams(record.body.toString('utf8'));
    assert.equal(form.get('To'), kMessage.to, 'upstream form carries To');
    assert.equal(form.get('From'), kMessage.from, 'upstream form carries From');
    assert.equal(form.get('Body'), kMessage.body, 'upstream form carries Body');
  }

  test('byok message uses stored account', async () => {
    const project = await provision(ks, { project: 'twilio-byok', agent: 'twilio-byok-agent' });
    await configureByok(ks, project.projectId, 'twilio', kTwilioByok);
    mock.setExpectedCredential(`${kTwilioByok.account_sid}:${kTwilioByok.auth_token}`);

    const message = await clientFor(project.token).messages.create(kMessage);

    assert.equal(mock.messages.length, 1, 'the mock created one message');
    assert.equal(message.sid, mock.messages[0].sid, 'the SDK returns the created message sid');
    assert.equal(message.status, 'queued', 'message status is queued');
    assert.equal(message.body, kMessage.body, 'message body round-trips');
    assertMessageCreated(kTwilioByok, project.token);
    await assertOneLedgerRow(ks, project.projectId, {
      provider: 'twilio',
      mode: 'byok',
      upstreamStatus: 201,
      credentialId: /^cred_/,
    });
  });

  test('credential missing a field rejected', async () => {
    const project = await provision(ks, { project: 'twilio-partial', agent: 'twilio-partial-agent' });
    const response = await ks.api('PUT', `/api/v1/projects/${project.projectId}/providers/twilio/key`, {
      credential: { account_sid: kTwilioByok.account_sid },
    });
    assert.equal(response.status, 400, `a credential without auth_token is rejected: ${response.text}`);
    assert.equal(response.json?.error?.code, 'invalid_request', 'error code is invalid_request');
    assert.match(response.json?.error?.message ?? '', /auth_token/, 'the message names the missing field');
  });

  test('plain key rejected for two fields', async () => {
    const project = await provision(ks, { project: 'twilio-plain', agent: 'twilio-plain-agent' });
    const response = await ks.api('PUT', `/api/v1/projects/${project.projectId}/providers/twilio/key`, {
      api_key: kTwilioByok.auth_token,
    });
    assert.equal(response.status, 400, `a plain key is rejected for a two-field provider: ${response.text}`);
    assert.equal(response.json?.error?.code, 'invalid_request', 'error code is invalid_request');
  });

  test('concierge marketplace uses dedicated account', async () => {
    const project = await provision(ks, { project: 'twilio-concierge', agent: 'twilio-concierge-agent' });
    const fulfilled = await fulfillConcierge(ks, project.projectId, 'twilio', kTwilioPool);
    mock.setExpectedCredential(`${kTwilioPool.account_sid}:${kTwilioPool.auth_token}`);

    const message = await clientFor(project.token).messages.create(kMessage);

    assert.equal(message.sid, mock.messages[0]?.sid, 'the SDK returns the created message sid');
    assertMessageCreated(kTwilioPool, project.token);
    await assertOneLedgerRow(ks, project.projectId, {
      provider: 'twilio',
      mode: 'marketplace',
      upstreamStatus: 201,
      credentialId: fulfilled.credential_id,
    });
  });

  test('invalid token raises RestException', async () => {
    await assert.rejects(clientFor(`ks_${'3'.repeat(64)}`).messages.create(kMessage), (error) => {
      assert.equal(error.status, 401, `status is 401: ${error}`);
      return true;
    });
    assert.equal(mock.requests.length, 0, 'the upstream received no request');
  });
});
