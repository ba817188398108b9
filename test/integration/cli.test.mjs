// The `keystore` CLI against a running server: --json output of each command, exit codes, masked
// provider keys, and agent tokens that are shown once.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { cliJson, mintToken, setProviderKey, startKeystore } from '../harness/keystore.mjs';
import { kAnthropicKey, kOpenAiKey } from '../harness/secrets.mjs';

describe('keystore CLI', () => {
  let mock;
  let ks;

  before(async () => {
    mock = await startOpenAi({ expectedCredential: kOpenAiKey });
    ks = await startKeystore({ upstreams: { openai: mock.url } });
  });

  after(async () => {
    await ks?.close();
    await mock?.close();
  });

  test('project create and list print JSON', async () => {
    const created = await cliJson(ks, ['project', 'create', 'cli-project-a']);
    assert.match(created.id, /^prj_/, 'id starts with prj_');
    assert.equal(created.name, 'cli-project-a', 'name is the one given');

    const listed = await cliJson(ks, ['project', 'list']);
    const rows = Array.isArray(listed) ? listed : listed.data;
    assert.ok(Array.isArray(rows), `project list --json is an array or {data: [...]}: ${JSON.stringify(listed)}`);
    const row = rows.find((item) => item.id === created.id);
    assert.ok(row, `project list contains ${created.id}`);
    assert.equal(row.name, 'cli-project-a', 'listed project has its name');
  });

  test('CLI finds admin key through data dir', async () => {
    const result = await ks.cli(['project', 'list', '--json', '--data-dir', ks.dataDir], {
      withAdminKey: false,
    });
    assert.equal(result.code, 0, `project list with --data-dir exits 0; stderr: ${result.stderr}`);
    assert.doesNotThrow(() => JSON.parse(result.stdout), 'stdout is JSON');
  });

  test('wrong admin key exits 1', async () => {
    const wrongKey = `ksa_${randomBytes(32).toString('hex')}`;
    const result = await ks.cli(['project', 'list', '--json'], {
      withAdminKey: false,
      env: { KEYSTORE_ADMIN_KEY: wrongKey },
    });
    assert.equal(result.code, 1, `exit code is 1; stderr: ${result.stderr}`);
    assert.ok(!result.stderr.includes(wrongKey), 'stderr does not repeat the admin key');
    assert.ok(!result.stdout.includes(wrongKey), 'stdout does not repeat the admin key');
  });

  test('usage errors exit 2', async () => {
    const cases = [
      ['project', 'create'],
      ['token', 'create', '--json'],
      ['no-such-command'],
      ['project', 'create', 'x', '--no-such-flag'],
    ];
    for (const args of cases) {
      const result = await ks.cli(args);
      assert.equal(result.code, 2, `keystore ${args.join(' ')} exits 2; stderr: ${result.stderr}`);
    }
  });

  test('unknown project exits 1', async () => {
    const result = await ks.cli(['agent', 'create', 'orphan', '--project', 'prj_doesnotexist', '--json']);
    assert.equal(result.code, 1, `exit code is 1; stderr: ${result.stderr}`);
  });

  test('provider list shows masked key', async () => {
    const project = await cliJson(ks, ['project', 'create', 'cli-providers']);
    await setProviderKey(ks, project.id, 'openai', kOpenAiKey);

    const listResult = await ks.cli(['provider', 'list', '--project', project.id, '--json']);
    assert.equal(listResult.code, 0, `provider list exits 0; stderr: ${listResult.stderr}`);
    assert.ok(!listResult.stdout.includes(kOpenAiKey), 'provider list output does not contain the key');

    const providers = JSON.parse(listResult.stdout);
    assert.ok(Array.isArray(providers), 'provider list --json is an array');
    const openai = providers.find((item) => item.provider === 'openai');
    assert.ok(openai, 'provider list has an openai entry');
    assert.equal(openai.mode, 'byok', 'openai mode is byok');
    assert.equal(openai.status, 'enabled', 'openai with a key is enabled');
    assert.equal(typeof openai.key, 'string', 'openai key field is a masked string');
    assert.notEqual(openai.key, kOpenAiKey, 'key field is not the key');
    assert.ok(openai.key.includes('…'), `masked key contains an ellipsis: ${openai.key}`);
    assert.ok(openai.key.endsWith('0001'), `masked key ends with the last 4 characters: ${openai.key}`);
    assert.ok(openai.key.length < kOpenAiKey.length, `masked key is shorter than the key: ${openai.key}`);

    const anthropic = providers.find((item) => item.provider === 'anthropic');
    assert.ok(anthropic, 'provider list has an anthropic entry');
    assert.equal(anthropic.key, null, 'anthropic without a key shows key null');
  });

  test('set-key rejects key as argument', async () => {
    const project = await cliJson(ks, ['project', 'create', 'cli-key-argument']);
    const result = await ks.cli(['provider', 'set-key', 'anthropic', '--project', project.id, kAnthropicKey], {
      input: '',
    });
    assert.equal(result.code, 2, `a key given as an argument is a usage error; stderr: ${result.stderr}`);
    assert.ok(!result.stderr.includes(kAnthropicKey), 'stderr does not repeat the key');

    const providers = await cliJson(ks, ['provider', 'list', '--project', project.id]);
    const anthropic = providers.find((item) => item.provider === 'anthropic');
    assert.equal(anthropic?.key, null, 'no key was stored');
  });

  test('agent and token create print JSON', async () => {
    const project = await cliJson(ks, ['project', 'create', 'cli-agents']);
    const agent = await cliJson(ks, ['agent', 'create', 'worker-1', '--project', project.id]);
    assert.match(agent.id, /^agt_/, 'agent id starts with agt_');
    assert.equal(agent.name, 'worker-1', 'agent name is the one given');

    const token = await mintToken(ks, agent.id, { scopes: ['provider:openai:*'] });
    assert.match(token.token, /^ks_[0-9a-f]{64}$/, 'token is ks_ and 64 lowercase hex');
    assert.match(token.id, /^tok_/, 'token id starts with tok_');
  });

  test('token list never shows token', async () => {
    const project = await cliJson(ks, ['project', 'create', 'cli-token-list']);
    const agent = await cliJson(ks, ['agent', 'create', 'worker-2', '--project', project.id]);
    const first = await mintToken(ks, agent.id);
    const second = await mintToken(ks, agent.id, { scopes: ['provider:openai:read'] });

    const result = await ks.cli(['token', 'list', '--agent', agent.id, '--json']);
    assert.equal(result.code, 0, `token list exits 0; stderr: ${result.stderr}`);
    assert.ok(!result.stdout.includes(first.token), 'token list output does not contain the first token');
    assert.ok(!result.stdout.includes(second.token), 'token list output does not contain the second token');
    assert.ok(!result.stdout.includes(first.token.slice(3)), 'token list output does not contain the first token hex');

    const listed = JSON.parse(result.stdout);
    const rows = Array.isArray(listed) ? listed : listed.data;
    assert.ok(Array.isArray(rows), 'token list --json is an array or {data: [...]}');
    const ids = rows.map((row) => row.id).sort();
    assert.deepEqual(ids, [first.id, second.id].sort(), 'token list shows both token ids');
    for (const row of rows) {
      assert.equal(row.token, undefined, `listed token ${row.id} has no token field`);
    }

    const apiResponse = await ks.api('GET', `/api/v1/agents/${agent.id}/tokens`);
    assert.equal(apiResponse.status, 200, 'GET tokens is 200');
    assert.ok(!apiResponse.text.includes(first.token), 'GET tokens does not contain the first token');
    assert.ok(!apiResponse.text.includes(second.token), 'GET tokens does not contain the second token');
  });

  test('token revoke exits 0', async () => {
    const project = await cliJson(ks, ['project', 'create', 'cli-revoke']);
    const agent = await cliJson(ks, ['agent', 'create', 'worker-3', '--project', project.id]);
    const token = await mintToken(ks, agent.id);
    const result = await ks.cli(['token', 'revoke', token.id]);
    assert.equal(result.code, 0, `token revoke exits 0; stderr: ${result.stderr}`);
    assert.ok(!result.stdout.includes(token.token), 'token revoke output does not contain the token');

    const missing = await ks.cli(['token', 'revoke', 'tok_doesnotexist']);
    assert.equal(missing.code, 1, `revoking an unknown token id exits 1; stderr: ${missing.stderr}`);
  });

  test('admin API requires admin key', async () => {
    const anonymous = await ks.api('GET', '/api/v1/projects', undefined, { auth: false });
    assert.equal(anonymous.status, 401, 'GET /api/v1/projects without a key is 401');
    assert.equal(anonymous.json?.error?.type, 'keystore_error', 'error type is keystore_error');

    const wrong = await ks.api('GET', '/api/v1/projects', undefined, {
      auth: false,
      headers: { authorization: `Bearer ksa_${randomBytes(32).toString('hex')}` },
    });
    assert.equal(wrong.status, 401, 'GET /api/v1/projects with a wrong key is 401');
  });
});
