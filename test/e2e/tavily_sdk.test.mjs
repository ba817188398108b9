// The official `@tavily/core` npm SDK through the proxy, holding only the agent token. Tavily
// is a BYOK-tier provider. The SDK (0.7) sends its key as `Authorization: Bearer tvly-...`,
// never in the JSON body, and takes its base URL from the `apiBaseURL` option, which the agent
// sets to `<proxy>/v1/tavily`.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { TavilyKeylessLimitError, tavily } from '@tavily/core';

import { kTavilyAnswer, kTavilyResults, startMock } from '../mocks/tavily.mjs';
import { configureByok, provision, startKeystore, waitForLedger } from '../harness/keystore.mjs';
import { kTavilyKey } from '../harness/secrets.mjs';
import { assertEveryRequestClean } from '../harness/upstream_checks.mjs';

describe('tavily SDK through the proxy', () => {
  let mock;
  let ks;

  before(async () => {
    mock = await startMock({ expectedCredential: kTavilyKey });
    ks = await startKeystore({ upstreams: { tavily: mock.url } });
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
    return tavily({ apiKey: token, apiBaseURL: `${ks.proxyUrl}/v1/tavily` });
  }

  test('byok search and extract', async () => {
    const project = await provision(ks, { project: 'tavily-byok', agent: 'tavily-byok-agent' });
    await configureByok(ks, project.projectId, 'tavily', kTavilyKey);
    const client = clientFor(project.token);

    const found = await client.search('keystore credential proxy', {
      maxResults: 2,
      includeAnswer: true,
      includeUsage: true,
    });
    const extracted = await client.extract(['https://example.test/one'], { includeUsage: true });

    assert.equal(found.answer, kTavilyAnswer, 'search returns the mock answer');
    assert.deepEqual(found.results.map((result) => result.url), kTavilyResults.map((result) => result.url), 'search returns the mock results');
    assert.deepEqual(found.usage, { credits: 1 }, 'search reports the credits used');
    assert.equal(found.requestId, mock.requestIds[0], 'search returns the request id the mock answered');
    assert.equal(extracted.results.length, 1, 'extract returns one result');
    assert.equal(extracted.results[0].rawContent, 'Extracted text of https://example.test/one.', 'extract returns the page text');
    assert.deepEqual(
      mock.requests.map((record) => `${record.method} ${record.url}`),
      ['POST /search', 'POST /extract'],
      'the upstream received search and extract',
    );
    assertEveryRequestClean(mock.requests, 'authorization', `Bearer ${kTavilyKey}`, project.token);
    for (const record of mock.requests) {
      const body = JSON.parse(record.body.toString('utf8'));
      assert.equal('api_key' in body, false, 'the upstream body carries no api_key field');
    }

    const rows = await waitForLedger(ks, project.projectId, 2);
    assert.equal(rows.length, 2, `the project has two ledger rows: ${JSON.stringify(rows)}`);
    for (const row of rows) {
      assert.equal(row.provider, 'tavily', 'the ledger row names provider tavily');
      assert.equal(row.mode, 'byok', 'the ledger row has mode byok');
      assert.equal(row.upstream_status, 200, 'the ledger row has upstream status 200');
      assert.match(row.credential_id ?? '', /^cred_/, 'the ledger row names the credential it used');
    }
  });

  test('marketplace refused for byok tier', async () => {
    const project = await provision(ks, { project: 'tavily-market', agent: 'tavily-market-agent' });
    const response = await ks.api('PATCH', `/api/v1/projects/${project.projectId}/providers/tavily`, {
      mode: 'marketplace',
      status: 'enabled',
    });
    assert.equal(response.status, 409, `marketplace mode is refused: ${response.text}`);
    assert.equal(response.json?.error?.code, 'conflict', 'error code is conflict');
  });

  // @tavily/core 0.7 reads any `{"error": {"code": "..."}}` body as its keyless-mode limit
  // envelope, so the Keystore error arrives as a TavilyKeylessLimitError whose capType is the
  // Keystore error code and whose message is the Keystore message.
  test('invalid token raises an error', async () => {
    await assert.rejects(clientFor(`ks_${'7'.repeat(64)}`).search('anything'), (error) => {
      assert.ok(error instanceof TavilyKeylessLimitError, `error is a TavilyKeylessLimitError: ${error}`);
      assert.equal(error.capType, 'invalid_token', 'capType carries the Keystore error code');
      return true;
    });
    assert.equal(mock.requests.length, 0, 'the upstream received no request');
  });
});
