// The official `stripe` npm SDK through the proxy, holding only the agent token. Stripe is a
// BYOK-tier provider. The SDK sends its key as `Authorization: Bearer`. With its
// `authenticator` option it can also send HTTP Basic with the key as user name, the form
// Stripe's curl examples use, and the proxy finds the agent token there too.
//
// stripe-node (v23) accepts `host`, `port` and `protocol` but no base path: every resource
// path is absolute (`/v1/customers`). To reach `<proxy>/v1/stripe/v1/customers` the tests give
// it a custom HTTP client that delegates to the SDK's own Node client after putting
// `/v1/stripe` in front of the path.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import Stripe from 'stripe';

import { startMock } from '../mocks/stripe.mjs';
import { configureByok, provision, startKeystore, waitForLedger } from '../harness/keystore.mjs';
import { kStripeKey } from '../harness/secrets.mjs';
import { assertEveryRequestClean } from '../harness/upstream_checks.mjs';

// The SDK's Node HTTP client with a fixed prefix in front of every request path.
class PathPrefixHttpClient extends Stripe.HttpClient {
  constructor(prefix) {
    super();
    this.prefix = prefix;
    this.inner = Stripe.createNodeHttpClient();
  }

  getClientName() {
    return this.inner.getClientName();
  }

  makeRequest(host, port, path, ...rest) {
    return this.inner.makeRequest(host, port, `${this.prefix}${path}`, ...rest);
  }
}

describe('stripe SDK through the proxy', () => {
  let mock;
  let ks;

  before(async () => {
    mock = await startMock({ expectedCredential: kStripeKey });
    ks = await startKeystore({ upstreams: { stripe: mock.url } });
  });

  after(async () => {
    await ks?.close();
    await mock?.close();
  });

  beforeEach(() => {
    mock.clear();
    mock.setBehavior({});
  });

  function proxyConfig() {
    const proxy = new URL(ks.proxyUrl);
    return {
      host: proxy.hostname,
      port: proxy.port,
      protocol: 'http',
      httpClient: new PathPrefixHttpClient('/v1/stripe'),
      maxNetworkRetries: 0,
      telemetry: false,
    };
  }

  function clientFor(token) {
    return new Stripe(token, proxyConfig());
  }

  async function assertLedgerRows(projectId, count) {
    const rows = await waitForLedger(ks, projectId, count);
    assert.equal(rows.length, count, `the project has ${count} ledger rows: ${JSON.stringify(rows)}`);
    for (const row of rows) {
      assert.equal(row.provider, 'stripe', 'the ledger row names provider stripe');
      assert.equal(row.mode, 'byok', 'the ledger row has mode byok');
      assert.equal(row.upstream_status, 200, 'the ledger row has upstream status 200');
      assert.match(row.credential_id ?? '', /^cred_/, 'the ledger row names the credential it used');
    }
  }

  test('byok customer and payment intent', async () => {
    const project = await provision(ks, { project: 'stripe-byok', agent: 'stripe-byok-agent' });
    await configureByok(ks, project.projectId, 'stripe', kStripeKey);
    const stripe = clientFor(project.token);

    const customer = await stripe.customers.create({
      email: 'buyer@example.test',
      name: 'Buyer',
      metadata: { order: '7' },
    });
    const intent = await stripe.paymentIntents.create({
      amount: 1999,
      currency: 'usd',
      customer: customer.id,
      automatic_payment_methods: { enabled: true },
    });

    assert.match(customer.id, /^cus_/, 'the customer id starts with cus_');
    assert.equal(customer.email, 'buyer@example.test', 'the customer has the email');
    assert.deepEqual(customer.metadata, { order: '7' }, 'the customer has the metadata');
    assert.match(intent.id, /^pi_/, 'the payment intent id starts with pi_');
    assert.equal(intent.amount, 1999, 'the payment intent has the amount');
    assert.equal(intent.customer, customer.id, 'the payment intent names the customer');
    assert.equal(intent.status, 'requires_payment_method', 'the payment intent awaits a payment method');
    assert.deepEqual(
      mock.requests.map((record) => `${record.method} ${record.url}`),
      ['POST /v1/customers', 'POST /v1/payment_intents'],
      'the upstream received both creates under /v1',
    );
    assertEveryRequestClean(mock.requests, 'authorization', `Bearer ${kStripeKey}`, project.token);
    const form = new URLSearchParams(mock.requests[1].body.toString('utf8'));
    assert.equal(form.get('amount'), '1999', 'upstream form carries the amount');
    assert.equal(form.get('automatic_payment_methods[enabled]'), 'true', 'upstream form keeps bracketed keys');
    for (const record of mock.requests) {
      assert.equal(record.headers['idempotency-key']?.length > 0, true, 'the SDK idempotency key is forwarded');
    }
    await assertLedgerRows(project.projectId, 2);
  });

  test('basic user name token accepted', async () => {
    const project = await provision(ks, { project: 'stripe-basic', agent: 'stripe-basic-agent' });
    await configureByok(ks, project.projectId, 'stripe', kStripeKey);
    const basic = `Basic ${Buffer.from(`${project.token}:`).toString('base64')}`;
    const stripe = new Stripe(null, {
      ...proxyConfig(),
      authenticator: async (request) => {
        request.headers.Authorization = basic;
      },
    });

    const customer = await stripe.customers.create({ email: 'basic@example.test' });

    assert.equal(customer.email, 'basic@example.test', 'the customer has the email');
    assert.equal(mock.requests.length, 1, 'the stripe mock received exactly one request');
    assertEveryRequestClean(mock.requests, 'authorization', `Bearer ${kStripeKey}`, project.token);
    await assertLedgerRows(project.projectId, 1);
  });

  test('marketplace refused for byok tier', async () => {
    const project = await provision(ks, { project: 'stripe-market', agent: 'stripe-market-agent' });
    const response = await ks.api('PATCH', `/api/v1/projects/${project.projectId}/providers/stripe`, {
      mode: 'marketplace',
      status: 'enabled',
    });
    assert.equal(response.status, 409, `marketplace mode is refused: ${response.text}`);
    assert.equal(response.json?.error?.code, 'conflict', 'error code is conflict');
    assert.match(response.json?.error?.message ?? '', /byok/i, 'the message names the BYOK tier');
  });

  test('invalid token raises StripeAuthenticationError', async () => {
    await assert.rejects(clientFor(`ks_${'6'.repeat(64)}`).customers.create({ email: 'x@example.test' }), (error) => {
      assert.equal(error.type, 'StripeAuthenticationError', `error is a StripeAuthenticationError: ${error}`);
      assert.equal(error.statusCode, 401, 'status is 401');
      return true;
    });
    assert.equal(mock.requests.length, 0, 'the upstream received no request');
  });
});
