// Marketplace pools through the CLI and the admin API. `pool add` reads the credential from
// standard input, `pool list` shows masks only, and `pool disable` and `pool enable` switch a
// credential. Operator routes reject other keys, and the proxy injects a pool credential in
// marketplace mode.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import {
  addPoolCredentialWithCli,
  apiWithKey,
  cliFails,
  cliJson,
  createAdminKey,
  maskOf,
  mintToken,
  startKeystore,
  waitForLedger,
} from '../harness/keystore.mjs';

const kPoolKey = 'sk-pool-OPENAI-0123456789abcdef0001';
const kSecondPoolKey = 'sk-pool-OPENAI-0123456789abcdef0002';
const kAccountSid = 'AC0123456789abcdef0123456789abcdef';
const kAuthToken = 'twilio-pool-token-0123456789abcdef';

function chatBody() {
  return { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] };
}

function assertNoSecret(text, secret, where) {
  assert.ok(!text.includes(secret), `${where} does not contain the credential`);
}

describe('marketplace pools', () => {
  let mock;
  let ks;

  before(async () => {
    mock = await startOpenAi({ expectedCredential: kPoolKey });
    ks = await startKeystore({ upstreams: { openai: mock.url } });
  });

  after(async () => {
    await ks?.close();
    await mock?.close();
  });

  test('pool add reads the key from standard input', async () => {
    const result = await ks.cli(['pool', 'add', 'openai', '--shared', '--label', 'main', '--rpm', '60', '--json'], {
      input: `${kSecondPoolKey}\n`,
    });
    assert.equal(result.code, 0, `pool add exits 0; stderr: ${result.stderr}`);
    assertNoSecret(result.stdout, kSecondPoolKey, 'pool add stdout');
    assertNoSecret(result.stderr, kSecondPoolKey, 'pool add stderr');

    const entry = JSON.parse(result.stdout);
    assert.match(entry.id, /^cred_[0-9a-f]{24}$/, 'id is cred_ and 24 hex digits');
    assert.equal(entry.provider, 'openai');
    assert.equal(entry.scope, 'shared');
    assert.equal(entry.project_id, null, 'a shared credential has no project');
    assert.equal(entry.status, 'active');
    assert.equal(entry.label, 'main');
    assert.equal(entry.key, maskOf(kSecondPoolKey), 'key is the mask');
    assert.ok(entry.key.endsWith('…0002'), `the mask ends with the last 4 characters: ${entry.key}`);
    assert.match(entry.key_fingerprint, /^sha256:[0-9a-f]{16}$/);
    assert.equal(entry.rpm_limit, 60);
    assert.match(entry.created_at, /^\d{4}-\d{2}-\d{2}T/);
    assert.deepEqual(entry.health, { state: 'closed', consecutive_failures: 0, opened_at: null });

    await ks.cli(['pool', 'disable', entry.id]);
  });

  test('pool list shows the mask, never the key', async () => {
    const added = await addPoolCredentialWithCli(ks, 'anthropic', 'sk-ant-pool-0123456789abcdef0003', { label: 'listed' });

    const listed = await ks.cli(['pool', 'list', '--json']);
    assert.equal(listed.code, 0, `pool list exits 0; stderr: ${listed.stderr}`);
    assertNoSecret(listed.stdout, 'sk-ant-pool-0123456789abcdef0003', 'pool list --json');
    const rows = JSON.parse(listed.stdout);
    const row = rows.find((item) => item.id === added.id);
    assert.ok(row, `pool list contains ${added.id}`);
    assert.equal(row.key, maskOf('sk-ant-pool-0123456789abcdef0003'));
    assert.equal(row.label, 'listed');

    const filtered = await cliJson(ks, ['pool', 'list', '--provider', 'anthropic']);
    assert.deepEqual(filtered.map((item) => item.id), [added.id], 'the provider filter leaves one credential');

    const table = await ks.cli(['pool', 'list', '--provider', 'anthropic']);
    assert.equal(table.code, 0);
    assertNoSecret(table.stdout, 'sk-ant-pool-0123456789abcdef0003', 'pool list table');
    assert.match(table.stdout, /^ID\s+PROVIDER\s+SCOPE\s+PROJECT\s+STATUS\s+KEY\s+RPM\s+HEALTH\s+LABEL$/m);
    assert.ok(table.stdout.includes(added.id), 'the table names the credential');
    assert.ok(table.stdout.includes(maskOf('sk-ant-pool-0123456789abcdef0003')), 'the table shows the mask');

    const unknown = await cliFails(ks, ['pool', 'list', '--provider', 'nope'], 1);
    assert.match(unknown.stderr, /\(unknown_provider\)/);
  });

  test('dedicated credential with several fields', async () => {
    const project = await cliJson(ks, ['project', 'create', 'pool-dedicated']);
    const input = JSON.stringify({ auth_token: kAuthToken, account_sid: kAccountSid });
    const result = await ks.cli(['pool', 'add', 'twilio', '--dedicated', 'pool-dedicated', '--json'], { input });
    assert.equal(result.code, 0, `pool add exits 0; stderr: ${result.stderr}`);
    assertNoSecret(result.stdout, kAuthToken, 'pool add stdout');
    assertNoSecret(result.stdout, kAccountSid, 'pool add stdout');

    const entry = JSON.parse(result.stdout);
    assert.equal(entry.scope, 'dedicated');
    assert.equal(entry.project_id, project.id, 'the project name resolves to its id');
    assert.equal(entry.key, maskOf(kAuthToken), 'the mask is of the auth token');
    assert.equal(entry.rpm_limit, 0);
    assert.equal(entry.label, null);
  });

  test('pool disable and enable switch a credential', async () => {
    const added = await addPoolCredentialWithCli(ks, 'resend', 're_pool_0123456789abcdef0004');

    const disabled = await cliJson(ks, ['pool', 'disable', added.id]);
    assert.equal(disabled.id, added.id);
    assert.equal(disabled.status, 'disabled');
    const listed = await cliJson(ks, ['pool', 'list', '--provider', 'resend']);
    assert.equal(listed.find((item) => item.id === added.id)?.status, 'disabled');

    const enabled = await ks.cli(['pool', 'enable', added.id]);
    assert.equal(enabled.code, 0, `pool enable exits 0; stderr: ${enabled.stderr}`);
    assert.equal(enabled.stdout, `pool credential ${added.id} is now active\n`);

    const missing = await cliFails(ks, ['pool', 'disable', 'cred_000000000000000000000000'], 1);
    assert.match(missing.stderr, /pool credential cred_000000000000000000000000 not found \(not_found\)/);
  });

  test('marketplace mode injects the pool key', async () => {
    const project = await cliJson(ks, ['project', 'create', 'pool-proxy']);
    const credential = await addPoolCredentialWithCli(ks, 'openai', kPoolKey);
    const enabled = await cliJson(ks, ['provider', 'enable', 'openai', '--project', project.id, '--mode', 'marketplace']);
    assert.equal(enabled.mode, 'marketplace');
    assert.equal(enabled.status, 'enabled');
    const agent = await cliJson(ks, ['agent', 'create', 'pool-agent', '--project', project.id]);
    const token = await mintToken(ks, agent.id);

    mock.clear();
    const response = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token: token.token, json: chatBody() });
    assert.equal(response.status, 200, `marketplace request succeeds: ${response.text}`);
    assert.equal(mock.requests.length, 1, 'the upstream saw one request');
    assert.equal(mock.requests[0].headers.authorization, `Bearer ${kPoolKey}`, 'the pool key was injected');

    const rows = await waitForLedger(ks, project.id, 1);
    assert.equal(rows.length, 1, 'one ledger row');
    assert.equal(rows[0].mode, 'marketplace');
    assert.equal(rows[0].credential_id, credential.id, 'the ledger names the pool credential');

    // With every openai pool credential disabled the pool has no capacity.
    const pool = await cliJson(ks, ['pool', 'list', '--provider', 'openai']);
    for (const entry of pool.filter((item) => item.status === 'active')) {
      await cliJson(ks, ['pool', 'disable', entry.id]);
    }
    mock.clear();
    const refused = await proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token: token.token, json: chatBody() });
    assertKeystoreError(refused, 503, 'no_capacity', 'request with the pool disabled');
    assert.equal(mock.requests.length, 0, 'nothing reached the upstream');
    await cliJson(ks, ['pool', 'enable', credential.id]);
  });

  test('operator routes refuse other keys', async () => {
    const owner = await createAdminKey(ks, { name: 'plain-owner', role: 'owner' });
    assert.equal(owner.operator, false);

    const list = await cliFails(ks, ['pool', 'list'], 1, { withAdminKey: false, env: { KEYSTORE_ADMIN_KEY: owner.key } });
    assert.match(list.stderr, /\(forbidden\)/);
    const add = await cliFails(ks, ['pool', 'add', 'openai', '--shared'], 1, {
      withAdminKey: false,
      env: { KEYSTORE_ADMIN_KEY: owner.key },
      input: `${kSecondPoolKey}\n`,
    });
    assertNoSecret(add.stderr, kSecondPoolKey, 'refused pool add stderr');

    for (const [method, path] of [
      ['GET', '/api/v1/pools'],
      ['POST', '/api/v1/pools/openai/credentials'],
      ['POST', '/api/v1/pools/credentials/cred_000000000000000000000000/disable'],
      ['POST', '/api/v1/pools/credentials/cred_000000000000000000000000/enable'],
    ]) {
      const body = method === 'GET' ? undefined : { scope: 'shared', api_key: kSecondPoolKey };
      const response = await apiWithKey(ks, owner.key, method, path, body);
      assert.equal(response.status, 403, `${method} ${path} is 403 for a non-operator: ${response.text}`);
      assert.equal(response.json?.error?.code, 'forbidden');
    }
  });

  test('API rejects invalid pool credentials', async () => {
    const cases = [
      [{ scope: 'shared', api_key: 'sk-…0001' }, 400, 'invalid_request'],
      [{ scope: 'shared', api_key: kSecondPoolKey, rpm_limit: 1000001 }, 400, 'invalid_request'],
      [{ scope: 'shared', api_key: kSecondPoolKey, rpm_limit: -1 }, 400, 'invalid_request'],
      [{ scope: 'shared', api_key: kSecondPoolKey, label: 'x'.repeat(101) }, 400, 'invalid_request'],
      [{ scope: 'shared', api_key: kSecondPoolKey, weight: 2 }, 400, 'invalid_request'],
      [{ scope: 'dedicated', api_key: kSecondPoolKey }, 400, 'invalid_request'],
      [{ scope: 'dedicated', project: 'prj_000000000000000000000000', api_key: kSecondPoolKey }, 404, 'not_found'],
    ];
    for (const [body, status, code] of cases) {
      const response = await ks.api('POST', '/api/v1/pools/openai/credentials', body);
      assert.equal(response.status, status, `${JSON.stringify(body)} is ${status}: ${response.text}`);
      assert.equal(response.json?.error?.code, code);
      assertNoSecret(response.text, kSecondPoolKey, 'the error body');
    }

    const byok = await ks.api('POST', '/api/v1/pools/stripe/credentials', { scope: 'shared', api_key: 'sk_live_0123456789abcdef' });
    assert.equal(byok.status, 409, `a byok-only provider has no pool: ${byok.text}`);
    assert.equal(byok.json?.error?.code, 'conflict');
    assert.match(byok.json.error.message, /availability byok/);
  });

  test('pool usage errors exit 2', async () => {
    const cases = [
      ['pool', 'add', 'openai'],
      ['pool', 'add', 'openai', '--shared', '--dedicated', 'p'],
      ['pool', 'add', 'openai', '--shared', '--rpm', '-1'],
      ['pool', 'add', 'openai', '--shared', '--rpm', '1000001'],
      ['pool', 'disable'],
      ['pool'],
    ];
    for (const args of cases) {
      await cliFails(ks, args, 2, { input: `${kSecondPoolKey}\n` });
    }

    const argument = await cliFails(ks, ['pool', 'add', 'openai', '--shared', kSecondPoolKey], 2, { input: '' });
    assertNoSecret(argument.stderr, kSecondPoolKey, 'stderr of a key given as an argument');
    const empty = await cliFails(ks, ['pool', 'add', 'openai', '--shared'], 2, { input: '' });
    assert.match(empty.stderr, /no key was given/);
  });
});
