// The official `@pinecone-database/pinecone` npm SDK through the proxy, holding only the agent
// token. Pinecone is a concierge-tier provider. The SDK sends its key in the `Api-Key` header
// and the API version in `X-Pinecone-Api-Version`.
//
// The control plane is reached with `controllerHostUrl: <proxy>/v1/pinecone`. The data plane
// lives on a per-index host (`<index>-<project>.svc.<environment>.pinecone.io`), which the
// catalog's single base URL cannot name, so the tests pass `host: <proxy>/v1/pinecone` to
// `pc.index()` and the mock serves both planes on one server.
// NOTE: against the real service, /v1/pinecone forwards to api.pinecone.io only, so data-plane
// calls through the proxy need a per-index upstream that the catalog cannot express yet.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { Pinecone } from '@pinecone-database/pinecone';

import { rawHeaderValues } from '../mocks/recorder.mjs';
import { kPineconeDimension, kPineconeIndexName, kPineconeReadUnits, startMock } from '../mocks/pinecone.mjs';
import {
  configureByok,
  fulfillConcierge,
  provision,
  startKeystore,
  waitForLedger,
} from '../harness/keystore.mjs';
import { kPineconeKey, kPineconePoolKey } from '../harness/secrets.mjs';
import { assertEveryRequestClean } from '../harness/upstream_checks.mjs';

const kVectors = [
  { id: 'note-1', values: [1, 0, 0, 0], metadata: { topic: 'build' } },
  { id: 'note-2', values: [0, 1, 0, 0], metadata: { topic: 'deploy' } },
];

describe('pinecone SDK through the proxy', () => {
  let mock;
  let ks;

  before(async () => {
    mock = await startMock();
    ks = await startKeystore({ upstreams: { pinecone: mock.url } });
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
    return new Pinecone({ apiKey: token, controllerHostUrl: `${ks.proxyUrl}/v1/pinecone`, maxRetries: 0 });
  }

  function assertApiVersionForwarded() {
    for (const record of mock.requests) {
      const versions = rawHeaderValues(record, 'x-pinecone-api-version');
      assert.equal(versions.length, 1, 'X-Pinecone-Api-Version is forwarded once');
      assert.match(versions[0], /^\d{4}-\d{2}$/, 'X-Pinecone-Api-Version is a YYYY-MM version');
    }
  }

  // Asserts the project's ledger: one row per upstream request, all with this provider, mode
  // and credential, and together the given upstream statuses in any order.
  async function assertLedger(projectId, mode, credentialId, statuses) {
    const rows = await waitForLedger(ks, projectId, statuses.length);
    assert.equal(rows.length, statuses.length, `the project has ${statuses.length} ledger rows: ${JSON.stringify(rows)}`);
    for (const row of rows) {
      assert.equal(row.provider, 'pinecone', 'the ledger row names provider pinecone');
      assert.equal(row.mode, mode, `the ledger row has mode ${mode}`);
      if (credentialId instanceof RegExp) {
        assert.match(row.credential_id ?? '', credentialId, 'the ledger row names the credential it used');
      } else {
        assert.equal(row.credential_id, credentialId, 'the ledger row names the credential it used');
      }
    }
    assert.deepEqual(
      rows.map((row) => row.upstream_status).sort(),
      [...statuses].sort(),
      'the ledger rows carry the upstream statuses',
    );
  }

  test('byok control plane manages indexes', async () => {
    const project = await provision(ks, { project: 'pinecone-control', agent: 'pinecone-control-agent' });
    await configureByok(ks, project.projectId, 'pinecone', kPineconeKey);
    mock.setExpectedCredential(kPineconeKey);
    const pc = clientFor(project.token);

    const listed = await pc.listIndexes();
    assert.deepEqual(listed.indexes?.map((index) => index.name), [kPineconeIndexName], 'listIndexes returns the mock index');
    const described = await pc.describeIndex(kPineconeIndexName);
    assert.equal(described.dimension, kPineconeDimension, 'describeIndex returns the dimension');
    assert.equal(described.status?.ready, true, 'describeIndex returns a ready index');
    const created = await pc.createIndex({
      name: 'agent-scratch',
      dimension: kPineconeDimension,
      metric: 'dotproduct',
      spec: { serverless: { cloud: 'aws', region: 'us-east-1' } },
    });
    assert.equal(created?.name, 'agent-scratch', 'createIndex returns the new index');
    assert.equal(created?.status?.state, 'Initializing', 'the new index is initializing');

    assert.deepEqual(
      mock.requests.map((record) => `${record.method} ${new URL(record.url, 'http://mock').pathname}`),
      ['GET /indexes', `GET /indexes/${kPineconeIndexName}`, 'POST /indexes'],
      'the upstream received list, describe and create',
    );
    assertEveryRequestClean(mock.requests, 'api-key', kPineconeKey, project.token);
    assertApiVersionForwarded();
    const sent = JSON.parse(mock.requests[2].body.toString('utf8'));
    assert.equal(sent.metric, 'dotproduct', 'upstream create body carries the metric');
    await assertLedger(project.projectId, 'byok', /^cred_/, [200, 200, 201]);
  });

  test('byok data plane upserts and queries', async () => {
    const project = await provision(ks, { project: 'pinecone-data', agent: 'pinecone-data-agent' });
    await configureByok(ks, project.projectId, 'pinecone', kPineconeKey);
    mock.setExpectedCredential(kPineconeKey);
    const index = clientFor(project.token).index({ host: `${ks.proxyUrl}/v1/pinecone` });

    await index.upsert({ records: kVectors });
    const result = await index.query({ topK: 1, vector: [1, 0, 0, 0], includeMetadata: true });

    assert.equal(mock.vectors.size, kVectors.length, 'the mock stored both vectors');
    assert.equal(result.matches?.length, 1, 'query returns one match');
    assert.equal(result.matches[0].id, 'note-1', 'the nearest vector is note-1');
    assert.deepEqual(result.matches[0].metadata, { topic: 'build' }, 'the match carries its metadata');
    assert.equal(result.usage?.readUnits, kPineconeReadUnits, 'query reports the read units');
    assert.deepEqual(
      mock.requests.map((record) => `${record.method} ${new URL(record.url, 'http://mock').pathname}`),
      ['POST /vectors/upsert', 'POST /query'],
      'the upstream received upsert and query',
    );
    assertEveryRequestClean(mock.requests, 'api-key', kPineconeKey, project.token);
    assertApiVersionForwarded();
    await assertLedger(project.projectId, 'byok', /^cred_/, [200, 200]);
  });

  test('concierge marketplace query uses dedicated key', async () => {
    const project = await provision(ks, { project: 'pinecone-concierge', agent: 'pinecone-concierge-agent' });
    const fulfilled = await fulfillConcierge(ks, project.projectId, 'pinecone', kPineconePoolKey);
    mock.setExpectedCredential(kPineconePoolKey);
    const index = clientFor(project.token).index({ host: `${ks.proxyUrl}/v1/pinecone` });

    await index.upsert({ records: kVectors });
    const result = await index.query({ topK: 2, vector: [0, 1, 0, 0] });

    assert.deepEqual(result.matches?.map((match) => match.id), ['note-2', 'note-1'], 'query ranks by score');
    assert.equal(result.usage?.readUnits, kPineconeReadUnits, 'query reports the read units');
    assertEveryRequestClean(mock.requests, 'api-key', kPineconePoolKey, project.token);
    await assertLedger(project.projectId, 'marketplace', fulfilled.credential_id, [200, 200]);
  });

  test('invalid token raises authorization error', async () => {
    await assert.rejects(clientFor(`ks_${'4'.repeat(64)}`).listIndexes(), (error) => {
      assert.equal(error.name, 'PineconeAuthorizationError', `error is a PineconeAuthorizationError: ${error}`);
      return true;
    });
    assert.equal(mock.requests.length, 0, 'the upstream received no request');
  });
});
