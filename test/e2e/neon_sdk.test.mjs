// The official `@neondatabase/api-client` npm SDK through the proxy, holding only the agent
// token. Neon is a marketplace-tier provider: projects use the operator's pool and cannot bring
// their own key. The SDK's default base URL is https://console.neon.tech/api/v2, so the agent
// sets `baseURL` to `<proxy>/v1/neon/api/v2`; it sends the key as `Authorization: Bearer`.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { createApiClient } from '@neondatabase/api-client';

import { startMock } from '../mocks/neon.mjs';
import {
  addPoolCredential,
  enableMarketplace,
  provision,
  startKeystore,
  waitForLedger,
} from '../harness/keystore.mjs';
import { kNeonPoolKey } from '../harness/secrets.mjs';
import { assertEveryRequestClean } from '../harness/upstream_checks.mjs';

describe('neon SDK through the proxy', () => {
  let mock;
  let ks;

  before(async () => {
    mock = await startMock({ expectedCredential: kNeonPoolKey });
    ks = await startKeystore({ upstreams: { neon: mock.url } });
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
    return createApiClient({ apiKey: token, baseURL: `${ks.proxyUrl}/v1/neon/api/v2`, timeout: 30000 });
  }

  test('byok mode refused for marketplace tier', async () => {
    const project = await provision(ks, { project: 'neon-byok', agent: 'neon-byok-agent' });
    const response = await ks.api('PATCH', `/api/v1/projects/${project.projectId}/providers/neon`, {
      mode: 'byok',
      status: 'enabled',
    });
    assert.equal(response.status, 409, `byok mode is refused: ${response.text}`);
    assert.equal(response.json?.error?.code, 'conflict', 'error code is conflict');
    assert.match(response.json?.error?.message ?? '', /marketplace/, 'the message names the marketplace tier');
  });

  // Runs before any pool credential exists, which the next test adds for the whole installation.
  test('empty pool answers no_capacity', async () => {
    const project = await provision(ks, { project: 'neon-empty', agent: 'neon-empty-agent' });
    await enableMarketplace(ks, project.projectId, 'neon');

    await assert.rejects(clientFor(project.token).listProjects({ limit: 5 }), (error) => {
      assert.equal(error.response?.status, 503, `status is 503: ${error}`);
      assert.equal(error.response?.data?.error?.code, 'no_capacity', 'error code is no_capacity');
      return true;
    });
    assert.equal(mock.requests.length, 0, 'the upstream received no request');
  });

  test('shared pool creates and lists projects', async () => {
    const pooled = await addPoolCredential(ks, 'neon', kNeonPoolKey, { scope: 'shared', label: 'neon shared e2e' });
    assert.equal(pooled.scope, 'shared', 'the pool credential is shared');
    assert.notEqual(pooled.key, kNeonPoolKey, 'the pool entry shows a mask, not the key');
    const project = await provision(ks, { project: 'neon-market', agent: 'neon-market-agent' });
    await enableMarketplace(ks, project.projectId, 'neon');
    const neon = clientFor(project.token);

    const created = await neon.createProject({ project: { name: 'agent-db', region_id: 'aws-us-east-2', pg_version: 17 } });
    const listed = await neon.listProjects({ limit: 5 });

    assert.equal(created.status, 201, 'createProject answers 201');
    assert.equal(created.data.project.name, 'agent-db', 'the new project has the requested name');
    assert.equal(created.data.connection_uris.length, 1, 'the new project comes with a connection URI');
    assert.equal(listed.status, 200, 'listProjects answers 200');
    assert.deepEqual(listed.data.projects.map((item) => item.id), [created.data.project.id], 'listProjects returns the new project');
    assert.deepEqual(
      mock.requests.map((record) => `${record.method} ${record.url}`),
      ['POST /api/v2/projects', 'GET /api/v2/projects?limit=5'],
      'the upstream received create and list under /api/v2',
    );
    assertEveryRequestClean(mock.requests, 'authorization', `Bearer ${kNeonPoolKey}`, project.token);
    const sent = JSON.parse(mock.requests[0].body.toString('utf8'));
    assert.equal(sent.project.region_id, 'aws-us-east-2', 'upstream body carries the region');

    const rows = await waitForLedger(ks, project.projectId, 2);
    assert.equal(rows.length, 2, `the project has two ledger rows: ${JSON.stringify(rows)}`);
    for (const row of rows) {
      assert.equal(row.provider, 'neon', 'the ledger row names provider neon');
      assert.equal(row.mode, 'marketplace', 'the ledger row has mode marketplace');
      assert.equal(row.credential_id, pooled.id, 'the ledger row names the shared pool credential');
    }
    assert.deepEqual(rows.map((row) => row.upstream_status).sort(), [200, 201], 'the ledger rows carry 201 and 200');
  });

  test('invalid token answers 401', async () => {
    await assert.rejects(clientFor(`ks_${'5'.repeat(64)}`).listProjects({}), (error) => {
      assert.equal(error.response?.status, 401, `status is 401: ${error}`);
      assert.equal(error.response?.data?.error?.code, 'invalid_token', 'error code is invalid_token');
      return true;
    });
    assert.equal(mock.requests.length, 0, 'the upstream received no request');
  });
});
