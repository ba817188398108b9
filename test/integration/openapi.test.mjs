// The OpenAPI document at GET /api/v1/openapi.json against a real server: the document validates
// as OpenAPI 3.0, and every documented route returns a documented status with a body that matches
// the documented schema, including the shared error body for unknown ids.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv from 'ajv';

import { startKeystore } from '../harness/keystore.mjs';

const kMethods = ['get', 'put', 'post', 'delete', 'patch'];

// Every documented operation as {method, path, operation}, method in upper case.
function operationsOf(api) {
  const operations = [];
  for (const [path, item] of Object.entries(api.paths)) {
    for (const method of kMethods) {
      if (item[method]) {
        operations.push({ method: method.toUpperCase(), path, operation: item[method] });
      }
    }
  }
  return operations;
}

// `template` with each {name} replaced by values[name].
function fillPath(template, values) {
  return template.replace(/\{([^}]+)\}/g, (_, name) => {
    assert.ok(values[name] !== undefined, `a value for the path parameter ${name} of ${template}`);
    return encodeURIComponent(values[name]);
  });
}

describe('OpenAPI document', () => {
  let ks;
  let served;
  let api;
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const ids = {};

  // Calls the API and checks that the status is the expected one, that the operation documents
  // it, and that the body matches the documented schema. Returns the parsed body.
  async function callDocumented(method, template, values, body, status) {
    const apiPath = fillPath(template, values);
    const operation = api.paths[template]?.[method.toLowerCase()];
    assert.ok(operation, `${method} ${template} is documented`);
    const response = await ks.api(method, apiPath, body);
    assert.equal(response.status, status, `${method} ${apiPath} answers ${status}: ${response.text}`);
    const documented = operation.responses[String(status)];
    assert.ok(documented, `${method} ${template} documents the status ${status}`);
    const schema = documented.content?.['application/json']?.schema;
    assert.ok(schema, `${method} ${template} documents a JSON body for ${status}`);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.ok(response.json !== undefined, `${method} ${apiPath} answers JSON: ${response.text}`);
    const validate = ajv.compile(schema);
    assert.ok(validate(response.json),
      `${method} ${apiPath} body matches the documented schema: ${ajv.errorsText(validate.errors)}; body: ${response.text}`);
    return response.json;
  }

  before(async () => {
    ks = await startKeystore();
    const response = await fetch(`${ks.adminUrl}/api/v1/openapi.json`);
    assert.equal(response.status, 200, 'the document is served without a key');
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    served = JSON.parse(await response.text());
    // validate() dereferences in place, so it gets a copy and the raw document stays intact.
    api = await SwaggerParser.validate(structuredClone(served));
  });

  after(async () => {
    await ks?.close();
  });

  test('document is OpenAPI 3.0.3', () => {
    assert.equal(served.openapi, '3.0.3');
    assert.equal(served.info.title, 'Keystore management API');
    assert.deepEqual(served.servers.map((server) => server.url), ['http://127.0.0.1:8081']);
    assert.equal(served.components.securitySchemes.adminKey.type, 'http');
    assert.equal(served.components.securitySchemes.adminKey.scheme, 'bearer');
    assert.deepEqual(served.security, [{ adminKey: [] }]);
    for (const path of ['/healthz', '/readyz', '/metrics', '/api/v1/openapi.json']) {
      assert.deepEqual(served.paths[path].get.security, [], `${path} needs no key`);
    }
  });

  test('create responses match schemas', async () => {
    const project = await callDocumented('POST', '/api/v1/projects', {}, { name: 'openapi-project' }, 201);
    ids.project = project.id;
    const agent = await callDocumented('POST', '/api/v1/projects/{project}/agents', ids,
      { name: 'openapi-agent', rpm_limit: 60 }, 201);
    ids.agent = agent.id;
    const token = await callDocumented('POST', '/api/v1/agents/{agent}/tokens', ids,
      { scopes: ['provider:openai:*'], expires_in: '1h' }, 201);
    assert.match(token.token, /^ks_[0-9a-f]{64}$/);
    ids.token = token.id;

    ids.provider = 'openai';
    const organizations = await callDocumented('GET', '/api/v1/organizations', {}, undefined, 200);
    ids.organization = organizations.data[0].id;
    const entry = await callDocumented('PUT', '/api/v1/projects/{project}/providers/{provider}/key', ids,
      { api_key: 'sk-openapi-byok-0123456789abcdef', label: 'byok' }, 200);
    assert.ok(entry.key_fingerprint.length > 0, 'the entry has a fingerprint');
    assert.ok(!JSON.stringify(entry).includes('0123456789abcdef'), 'the key is not returned');
    await callDocumented('PATCH', '/api/v1/projects/{project}/providers/{provider}', ids,
      { mode: 'byok', status: 'enabled' }, 200);
    await callDocumented('PATCH', '/api/v1/projects/{project}', ids, { budget_cents: 5000, default_rpm: null }, 200);

    const pool = await callDocumented('POST', '/api/v1/pools/{provider}/credentials', ids,
      { scope: 'shared', api_key: 'sk-openapi-pool-0123456789abcdef', rpm_limit: 100 }, 201);
    assert.ok(!JSON.stringify(pool).includes('0123456789abcdef'), 'the pool key is not returned');
    ids.credential = pool.id;
    await callDocumented('POST', '/api/v1/prices', {},
      { provider: 'openai', unit: 'input_tokens', usd_per_million: '0.15' }, 201);
    const request = await callDocumented('POST', '/api/v1/projects/{project}/concierge', ids,
      { provider: 'groq', note: 'for the OpenAPI test' }, 201);
    ids.request = request.id;
    const key = await callDocumented('POST', '/api/v1/admin-keys', {}, { name: 'openapi-viewer', role: 'viewer' }, 201);
    assert.match(key.key, /^ksa_[0-9a-f]{64}$/);
    ids.key = key.id;
    ids.month = '2026-01';
    // A public IP literal needs no DNS, and the filter keeps the server from sending to it.
    const webhook = await callDocumented('POST', '/api/v1/projects/{project}/webhooks', ids,
      { url: 'https://93.184.216.34/openapi-hook', events: ['webhook.test'], description: 'for the OpenAPI test' }, 201);
    assert.match(webhook.secret, /^whsec_[0-9a-f]{64}$/);
    ids.webhook = webhook.id;
  });

  test('parameterless GETs return 200', async () => {
    let checked = 0;
    for (const { method, path, operation } of operationsOf(api)) {
      if (method !== 'GET' || path.includes('{')) {
        continue;
      }
      checked += 1;
      if (operation.responses['200'].content['text/plain']) {
        const response = await ks.api('GET', path);
        assert.equal(response.status, 200, `${path} answers 200`);
        assert.match(response.headers.get('content-type') ?? '', /^text\/plain/, `${path} is text/plain`);
        continue;
      }
      // The installation's admin key has no session to show.
      if (path === '/api/v1/auth/session') {
        await callDocumented('GET', path, {}, undefined, 401);
        continue;
      }
      const body = await callDocumented('GET', path, {}, undefined, 200);
      if (path === '/api/v1/audit/verify') {
        assert.equal(body.ok, true, 'the audit chain of the test is intact');
        continue;
      }
      if (path.startsWith('/api/v1/') && path !== '/api/v1/openapi.json') {
        assert.ok(Array.isArray(body.data), `${path} is a list {"data": [...]}`);
        assert.ok(body.data.length > 0, `${path} lists what the test created`);
      }
    }
    // healthz, readyz, metrics, openapi.json, projects, catalog, pools, prices, prices/current,
    // concierge, admin-keys, auth/session, organizations, audit and audit/verify.
    assert.equal(checked, 15);
  });

  test('GETs of existing ids return 200', async () => {
    let checked = 0;
    for (const { method, path } of operationsOf(api)) {
      if (method === 'GET' && path.includes('{')) {
        await callDocumented('GET', path, ids, undefined, 200);
        checked += 1;
      }
    }
    assert.equal(checked, 16);
  });

  test('unknown ids return 404 error body', async () => {
    const unknown = {
      project: 'prj_000000000000000000000000',
      provider: 'no-such-provider',
      agent: 'agt_000000000000000000000000',
      token: 'tok_000000000000000000000000',
      credential: 'cred_000000000000000000000000',
      request: 'cnc_000000000000000000000000',
      key: 'ksak_000000000000000000000000',
      webhook: 'whk_000000000000000000000000',
      month: '2026-01',
      organization: 'org_000000000000000000000000',
      user: 'usr_000000000000000000000000',
    };
    let checked = 0;
    for (const { method, path } of operationsOf(api)) {
      if (!path.includes('{')) {
        continue;
      }
      const body = method === 'GET' || method === 'DELETE' ? undefined : {};
      const error = await callDocumented(method, path, unknown, body, 404);
      assert.equal(error.error.type, 'keystore_error');
      const code = path.startsWith('/api/v1/pools/{provider}') ? 'unknown_provider' : 'not_found';
      assert.equal(error.error.code, code, `${method} ${path}: ${JSON.stringify(error)}`);
      assert.ok(error.error.request_id.length > 0, `${method} ${path} names its request id`);
      checked += 1;
    }
    assert.equal(checked, 44);
  });

  test('missing key and wrong method errors', async () => {
    const validate = ajv.compile(api.components.schemas.Error);
    const missing = await ks.api('GET', '/api/v1/projects', undefined, { auth: false });
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
    assert.ok(validate(missing.json), ajv.errorsText(validate.errors));
    assert.equal(missing.json.error.code, 'unauthenticated');

    const wrongMethod = await ks.api('DELETE', '/api/v1/projects');
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'GET, POST');
    assert.ok(validate(wrongMethod.json), ajv.errorsText(validate.errors));
  });
});
