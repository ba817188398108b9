// A provider whose auth scheme puts the key in the query string (`?key=`), declared in an
// operator catalog file. The key must reach the upstream and nowhere else: not in a log line,
// not in an error body, not in the database.

import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startRecordingServer, sendJson } from '../mocks/recorder.mjs';
import { proxyRequest } from '../harness/http.mjs';
import { makeTempDir, provision, repoRoot, startKeystore, waitForLedger } from '../harness/keystore.mjs';
import { findSecrets } from '../harness/secrets.mjs';

const kQueryKey = 'sk-test-QUERY-0001';

function startQueryMock() {
  return startRecordingServer(
    {
      name: 'qprov',
      credentialOf(req) {
        return new URL(req.url, 'http://mock').searchParams.get('key');
      },
      errorBody(status, message) {
        return { error: { code: status, message, status: 'INVALID_ARGUMENT' } };
      },
      handle({ res }) {
        sendJson(res, 400, { error: 'INVALID_ARGUMENT' });
      },
    },
    { expectedCredential: kQueryKey },
  );
}

// A port nothing listens on: bind, read the port, close.
async function deadPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function catalogWith(file, baseUrl) {
  const builtIn = JSON.parse(await readFile(path.join(repoRoot, 'src/catalog/providers.json'), 'utf8'));
  builtIn.providers.push({
    id: 'qprov',
    display_name: 'Query-auth provider',
    category: 'test',
    base_url: baseUrl,
    availability: 'byok',
    auth: { scheme: 'query', query_param: 'key' },
    token_locations: [{ kind: 'bearer' }],
    metering: 'requests',
  });
  await writeFile(file, JSON.stringify(builtIn));
}

describe('query-string credentials', () => {
  let mock;
  let tempRoot;
  const seen = [];

  before(async () => {
    mock = await startQueryMock();
    tempRoot = await makeTempDir();
  });

  after(async () => {
    await mock.close();
    await rm(tempRoot, { recursive: true, force: true });
  });

  async function scenario(baseUrl) {
    const catalogFile = path.join(tempRoot, `catalog-${seen.length}.json`);
    await catalogWith(catalogFile, baseUrl);
    const ks = await startKeystore({ upstreams: {}, extraArgs: ['--catalog-file', catalogFile] });
    try {
      const project = await provision(ks, { keys: { qprov: kQueryKey } });
      const response = await proxyRequest(ks, {
        path: '/v1/qprov/v1/generate?alt=json',
        token: project.token,
        json: { prompt: 'hi' },
      });
      const rows = await waitForLedger(ks, project.projectId, 1);
      await ks.stop();
      const files = {};
      for (const name of await readdir(ks.dataDir)) {
        files[name] = await readFile(path.join(ks.dataDir, name));
      }
      seen.push({ response, logs: ks.stdoutText() + ks.stderrText(), files });
      return { response, rows, logs: ks.stderrText() };
    } finally {
      await ks.close();
    }
  }

  test('upstream error relayed, key injected', async () => {
    mock.clear();
    const { response, rows } = await scenario(mock.url);
    assert.equal(response.status, 400, `upstream 400 relayed: ${response.text}`);
    assert.deepEqual(JSON.parse(response.text), { error: 'INVALID_ARGUMENT' });
    assert.equal(mock.requests.length, 1, 'the upstream received one request');
    const url = new URL(mock.requests[0].url, 'http://mock');
    assert.equal(url.searchParams.get('key'), kQueryKey, 'the key is in the query string');
    assert.equal(url.searchParams.get('alt'), 'json', 'the client query is kept');
    assert.equal(mock.requests[0].headers.authorization, undefined, 'no Authorization goes upstream');
    assert.equal(rows.length, 1, 'one ledger row');
    assert.equal(rows[0].outcome, 'upstream_error');
    assert.equal(rows[0].upstream_status, 400);
  });

  test('unreachable upstream is 502', async () => {
    const { response, rows } = await scenario(`http://127.0.0.1:${await deadPort()}`);
    assert.equal(response.status, 502, `unreachable upstream: ${response.text}`);
    assert.equal(JSON.parse(response.text).error.code, 'upstream_unreachable');
    assert.equal(rows.length, 1, 'one ledger row');
    assert.equal(rows[0].outcome, 'upstream_unreachable');
  });

  test('key appears in no log, body or file', () => {
    assert.equal(seen.length, 2, 'both scenarios ran');
    for (const [index, run] of seen.entries()) {
      const secrets = { query_key: kQueryKey };
      assert.deepEqual(findSecrets(run.logs, secrets), [], `scenario ${index}: logs are clean`);
      assert.deepEqual(findSecrets(run.response.body, secrets), [], `scenario ${index}: response body is clean`);
      assert.deepEqual(findSecrets(JSON.stringify(run.response.rawHeaders), secrets), [],
        `scenario ${index}: response headers are clean`);
      for (const [name, bytes] of Object.entries(run.files)) {
        assert.deepEqual(findSecrets(bytes, secrets), [], `scenario ${index}: ${name} is clean`);
      }
    }
  });
});
