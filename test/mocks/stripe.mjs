// Mock Stripe upstream: customers (create, retrieve) and payment intents (create) under /v1, in
// the wire format of api.stripe.com. Requests are form-encoded with bracketed keys for nested
// fields (`metadata[order]=7`). The credential is `Authorization: Bearer <key>` or HTTP Basic
// with the key as user name and an empty password, both of which Stripe accepts.

import { randomBytes } from 'node:crypto';

import { basicCredential, bearerCredential, parseFormBody, sendJson, startRecordingServer } from './recorder.mjs';

// The version the mock reports when a request names none, as an account's default version.
const kDefaultApiVersion = '2026-03-25.dahlia';

const kCreated = 1767225600;
const kCurrencies = new Set(['usd', 'eur', 'gbp', 'chf', 'jpy']);

function errorBody(status, message) {
  const types = { 401: 'invalid_request_error', 402: 'card_error', 429: 'invalid_request_error' };
  return { error: { message, type: types[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error') } };
}

function missingParam(param) {
  return {
    error: {
      code: 'parameter_missing',
      doc_url: 'https://stripe.com/docs/error-codes/parameter-missing',
      message: `Missing required param: ${param}.`,
      param,
      type: 'invalid_request_error',
    },
  };
}

function credentialOf(req) {
  const bearer = bearerCredential(req);
  if (bearer !== null) {
    return bearer;
  }
  const basic = basicCredential(req);
  return basic !== null && basic.username.length > 0 ? basic.username : null;
}

// Turns bracketed form keys (`metadata[order]`, `payment_method_types[0]`) into nested objects,
// as Stripe's form decoder does; numeric indexes become array elements.
function nestFormFields(fields) {
  const root = {};
  for (const [key, value] of Object.entries(fields)) {
    const parts = key.split(/[[\]]+/).filter((part) => part.length > 0);
    let node = root;
    for (let i = 0; i < parts.length - 1; i += 1) {
      const nextIsIndex = /^\d+$/.test(parts[i + 1]);
      node[parts[i]] ??= nextIsIndex ? [] : {};
      node = node[parts[i]];
    }
    node[parts.at(-1)] = value;
  }
  return root;
}

function objectId(prefix) {
  return `${prefix}_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;
}

function customerResource(id, params) {
  return {
    id,
    object: 'customer',
    address: null,
    balance: 0,
    created: kCreated,
    currency: null,
    default_source: null,
    delinquent: false,
    description: params.description ?? null,
    discount: null,
    email: params.email ?? null,
    invoice_prefix: id.slice(4, 12).toUpperCase(),
    invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
    livemode: false,
    metadata: params.metadata ?? {},
    name: params.name ?? null,
    next_invoice_sequence: 1,
    phone: params.phone ?? null,
    preferred_locales: [],
    shipping: null,
    tax_exempt: 'none',
    test_clock: null,
  };
}

function paymentIntentResource(id, params, amount) {
  const automatic = params.automatic_payment_methods?.enabled === 'true';
  return {
    id,
    object: 'payment_intent',
    amount,
    amount_capturable: 0,
    amount_details: { tip: {} },
    amount_received: 0,
    application: null,
    application_fee_amount: null,
    automatic_payment_methods: automatic ? { allow_redirects: 'always', enabled: true } : null,
    canceled_at: null,
    cancellation_reason: null,
    capture_method: 'automatic_async',
    client_secret: `${id}_secret_${randomBytes(12).toString('hex')}`,
    confirmation_method: 'automatic',
    created: kCreated,
    currency: params.currency,
    customer: params.customer ?? null,
    description: params.description ?? null,
    last_payment_error: null,
    latest_charge: null,
    livemode: false,
    metadata: params.metadata ?? {},
    next_action: null,
    on_behalf_of: null,
    payment_method: null,
    payment_method_options: {},
    payment_method_types: automatic ? ['card', 'link'] : params.payment_method_types ?? ['card'],
    processing: null,
    receipt_email: params.receipt_email ?? null,
    review: null,
    setup_future_usage: null,
    shipping: null,
    source: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: 'requires_payment_method',
    transfer_data: null,
    transfer_group: null,
  };
}

// Stripe responds in the API version the request named in Stripe-Version.
function stripeHeaders(req) {
  const version = req.headers['stripe-version'];
  return { 'request-id': objectId('req'), 'stripe-version': typeof version === 'string' ? version : kDefaultApiVersion };
}

function createCustomer({ req, res, json, mock }) {
  const customer = customerResource(objectId('cus'), json);
  mock.customers.set(customer.id, customer);
  sendJson(res, 200, customer, stripeHeaders(req));
}

function createPaymentIntent({ req, res, json, mock }) {
  if (json.amount === undefined) {
    sendJson(res, 400, missingParam('amount'), stripeHeaders(req));
    return;
  }
  if (json.currency === undefined) {
    sendJson(res, 400, missingParam('currency'), stripeHeaders(req));
    return;
  }
  const amount = Number(json.amount);
  if (!Number.isInteger(amount) || amount < 1) {
    sendJson(res, 400, { error: { code: 'parameter_invalid_integer', message: 'Invalid integer: ' + json.amount, param: 'amount', type: 'invalid_request_error' } }, stripeHeaders(req));
    return;
  }
  if (!kCurrencies.has(json.currency)) {
    sendJson(res, 400, { error: { message: `Invalid currency: ${json.currency}.`, param: 'currency', type: 'invalid_request_error' } }, stripeHeaders(req));
    return;
  }
  if (json.customer !== undefined && !mock.customers.has(json.customer)) {
    sendJson(res, 400, { error: { code: 'resource_missing', message: `No such customer: '${json.customer}'`, param: 'customer', type: 'invalid_request_error' } }, stripeHeaders(req));
    return;
  }
  const intent = paymentIntentResource(objectId('pi'), json, amount);
  mock.paymentIntents.push(intent);
  sendJson(res, 200, intent, stripeHeaders(req));
}

function handle(ctx) {
  const { req, res, mock } = ctx;
  const path = new URL(req.url, 'http://mock').pathname;

  if (path === '/v1/customers' && req.method === 'POST') {
    createCustomer(ctx);
    return;
  }
  const customer = /^\/v1\/customers\/([^/]+)$/.exec(path);
  if (customer !== null && req.method === 'GET') {
    const found = mock.customers.get(decodeURIComponent(customer[1]));
    if (found === undefined) {
      sendJson(res, 404, { error: { code: 'resource_missing', message: `No such customer: '${customer[1]}'`, param: 'id', type: 'invalid_request_error' } }, stripeHeaders(req));
      return;
    }
    sendJson(res, 200, found, stripeHeaders(req));
    return;
  }
  if (path === '/v1/payment_intents' && req.method === 'POST') {
    createPaymentIntent(ctx);
    return;
  }
  sendJson(res, 404, errorBody(404, `Unrecognized request URL (${req.method}: ${path}).`), stripeHeaders(req));
}

// Starts the mock; see startRecordingServer for options and the returned handle. The handle
// also has customers (id to customer) and paymentIntents (in creation order).
export async function startMock(options = {}) {
  const mock = await startRecordingServer(
    {
      name: 'stripe',
      credentialOf,
      errorBody,
      handle,
      parseBody: (body) => nestFormFields(parseFormBody(body)),
    },
    options,
  );
  mock.customers = new Map();
  mock.paymentIntents = [];
  const clear = mock.clear;
  mock.clear = () => {
    clear();
    mock.customers.clear();
    mock.paymentIntents.length = 0;
  };
  return mock;
}
