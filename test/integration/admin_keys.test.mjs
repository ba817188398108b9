// `keystore admin-key` against a running server: keys are shown once, listed without their
// values, carry a role and the operator flag, and stop working when revoked. The first key,
// which the first start created, is an owner and the operator.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { apiWithKey, cliFails, cliJson, startKeystore } from '../harness/keystore.mjs';

describe('admin API keys', () => {
  let ks;

  before(async () => {
    ks = await startKeystore();
  });

  after(async () => {
    await ks?.close();
  });

  function asKey(key) {
    return { withAdminKey: false, env: { KEYSTORE_ADMIN_KEY: key } };
  }

  test('the first key is the owner and operator', async () => {
    const keys = await cliJson(ks, ['admin-key', 'list']);
    assert.equal(keys.length, 1, `one key after the first start: ${JSON.stringify(keys)}`);
    assert.equal(keys[0].role, 'owner');
    assert.equal(keys[0].operator, true);
    assert.equal(keys[0].status, 'active');
    assert.equal(keys[0].key, undefined, 'the list has no key values');
  });

  test('create shows the key once', async () => {
    const result = await ks.cli(['admin-key', 'create', '--name', 'ci-deploy', '--role', 'admin', '--json']);
    assert.equal(result.code, 0, `admin-key create exits 0; stderr: ${result.stderr}`);
    const created = JSON.parse(result.stdout);
    assert.match(created.key, /^ksa_[0-9a-f]{64}$/);
    assert.match(created.id, /^ksak_[0-9a-f]{24}$/);
    assert.equal(created.name, 'ci-deploy');
    assert.equal(created.role, 'admin');
    assert.equal(created.operator, false);
    assert.equal(created.status, 'active');
    assert.equal(created.revoked_at, null);
    assert.match(created.hint, /^[0-9a-f]{4}$/);
    assert.match(result.stderr, /the key is shown only this once/);
    assert.ok(!result.stderr.includes(created.key), 'stderr does not contain the key');

    const listed = await ks.cli(['admin-key', 'list', '--json']);
    assert.ok(!listed.stdout.includes(created.key), 'admin-key list does not contain the key');
    const row = JSON.parse(listed.stdout).find((item) => item.id === created.id);
    assert.ok(row, 'the new key is listed');
    assert.equal(row.key, undefined);
    assert.equal(row.hint, created.hint);

    const table = await ks.cli(['admin-key', 'list']);
    assert.match(table.stdout, /^ID\s+NAME\s+ROLE\s+OPERATOR\s+HINT\s+STATUS\s+CREATED$/m);
    assert.ok(!table.stdout.includes(created.key), 'the table does not contain the key');

    // Text output is the key alone, so it can be captured by a script.
    const text = await ks.cli(['admin-key', 'create', '--name', 'text-output', '--role', 'viewer']);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^ksa_[0-9a-f]{64}\n$/);

    const projects = await ks.cli(['project', 'list', '--json'], asKey(created.key));
    assert.equal(projects.code, 0, `the new key works; stderr: ${projects.stderr}`);
  });

  test('operator keys reach the pools, others do not', async () => {
    const operator = await cliJson(ks, ['admin-key', 'create', '--name', 'ops', '--role', 'owner', '--operator']);
    assert.equal(operator.operator, true);
    assert.equal(operator.role, 'owner');
    const plain = await cliJson(ks, ['admin-key', 'create', '--name', 'plain', '--role', 'owner']);
    assert.equal(plain.operator, false);

    const pools = await ks.cli(['pool', 'list', '--json'], asKey(operator.key));
    assert.equal(pools.code, 0, `an operator key lists the pools; stderr: ${pools.stderr}`);
    const refused = await cliFails(ks, ['pool', 'list'], 1, asKey(plain.key));
    assert.match(refused.stderr, /is not an operator/);
    assert.match(refused.stderr, /\(forbidden\)/);

    // Only an operator grants the operator flag.
    const grant = await cliFails(ks, ['admin-key', 'create', '--name', 'x', '--role', 'admin', '--operator'], 1, asKey(plain.key));
    assert.match(grant.stderr, /cannot grant "operator" \(forbidden\)/);
    const api = await apiWithKey(ks, plain.key, 'POST', '/api/v1/admin-keys', { name: 'x', role: 'admin', operator: true });
    assert.equal(api.status, 403);
    assert.equal(api.json?.error?.code, 'forbidden');
    const granted = await cliJson(ks, ['admin-key', 'create', '--name', 'ops-2', '--role', 'admin', '--operator'], asKey(operator.key));
    assert.equal(granted.operator, true);
  });

  test('a project-limited key sees only its project', async () => {
    const mine = await cliJson(ks, ['project', 'create', 'limited-mine']);
    const other = await cliJson(ks, ['project', 'create', 'limited-other']);
    const limited = await cliJson(ks, ['admin-key', 'create', '--name', 'ci-limited', '--role', 'admin', '--project', 'limited-mine']);
    assert.equal(limited.project_id, mine.id);
    const projects = await cliJson(ks, ['project', 'list'], asKey(limited.key));
    assert.deepEqual(projects.map((project) => project.id), [mine.id]);
    const hidden = await apiWithKey(ks, limited.key, 'GET', `/api/v1/projects/${other.id}`);
    assert.equal(hidden.status, 404, `another project reads as missing: ${hidden.text}`);
    assert.equal(hidden.json?.error?.code, 'not_found');
  });

  test('only owners create and revoke keys', async () => {
    const admin = await cliJson(ks, ['admin-key', 'create', '--name', 'an-admin', '--role', 'admin']);
    const member = await cliJson(ks, ['admin-key', 'create', '--name', 'a-member', '--role', 'member']);
    const viewer = await cliJson(ks, ['admin-key', 'create', '--name', 'a-viewer', '--role', 'viewer']);
    for (const key of [admin, member, viewer]) {
      const response = await apiWithKey(ks, key.key, 'POST', '/api/v1/admin-keys', { name: 'x', role: 'viewer' });
      assert.equal(response.status, 403, `role ${key.role} cannot create keys: ${response.text}`);
      assert.equal(response.json?.error?.code, 'forbidden');
      const revoke = await apiWithKey(ks, key.key, 'DELETE', `/api/v1/admin-keys/${viewer.id}`);
      assert.equal(revoke.status, 403, `role ${key.role} cannot revoke keys: ${revoke.text}`);
    }
    assert.equal((await apiWithKey(ks, admin.key, 'GET', '/api/v1/admin-keys')).status, 200, 'an admin lists keys');
    assert.equal((await apiWithKey(ks, member.key, 'GET', '/api/v1/admin-keys')).status, 403, 'a member does not');
  });

  test('revoke stops a key', async () => {
    const created = await cliJson(ks, ['admin-key', 'create', '--name', 'short-lived', '--role', 'member']);
    const revoked = await cliJson(ks, ['admin-key', 'revoke', created.id]);
    assert.equal(revoked.id, created.id);
    assert.equal(revoked.status, 'revoked');
    assert.match(revoked.revoked_at, /^\d{4}-\d{2}-\d{2}T/);

    const used = await cliFails(ks, ['project', 'list'], 1, asKey(created.key));
    assert.match(used.stderr, /has been revoked/);
    const listed = await cliJson(ks, ['admin-key', 'list']);
    assert.equal(listed.find((item) => item.id === created.id)?.status, 'revoked');

    const missing = await cliFails(ks, ['admin-key', 'revoke', 'ksak_000000000000000000000000'], 1);
    assert.match(missing.stderr, /not found \(not_found\)/);

    const [first] = (await cliJson(ks, ['admin-key', 'list'])).filter((item) => item.name === 'owner');
    const self = await cliFails(ks, ['admin-key', 'revoke', first.id], 1);
    assert.match(self.stderr, /is the key making this request/);
    assert.match(self.stderr, /\(conflict\)/);
  });

  test('admin-key usage errors exit 2', async () => {
    const cases = [
      ['admin-key', 'create', '--name', 'x'],
      ['admin-key', 'create', '--role', 'owner'],
      ['admin-key', 'create', '--name', 'x', '--role', 'root'],
      ['admin-key', 'revoke'],
      ['admin-key'],
    ];
    for (const args of cases) {
      await cliFails(ks, args, 2);
    }
    const invalid = await ks.api('POST', '/api/v1/admin-keys', { name: 'x', role: 'owner', scopes: [] });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.json?.error?.code, 'invalid_request');
  });
});
