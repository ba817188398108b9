// The audit trail with the real binary: changes made through the CLI appear in
// `keystore audit list`. `keystore audit verify`, through the API and straight from the
// database file, exits 0 on an intact chain and 1 after the file was edited with sqlite3.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { provision, startKeystore } from '../harness/keystore.mjs';
import { kOpenAiKey } from '../harness/secrets.mjs';

describe('keystore audit', () => {
  let ks;
  let provisioned;

  before(async () => {
    ks = await startKeystore();
    provisioned = await provision(ks, {
      project: 'audit-proj',
      agent: 'audit-agent',
      keys: { openai: kOpenAiKey },
    });
  });

  after(async () => {
    await ks?.close();
  });

  test('audit list shows each change once without secrets', async () => {
    const result = await ks.cli(['audit', 'list', '--json']);
    assert.equal(result.code, 0, `audit list exits 0; stderr: ${result.stderr}`);
    assert.ok(!result.stdout.includes(kOpenAiKey), 'no provider key in the audit list');
    assert.ok(!result.stdout.includes(provisioned.token), 'no agent token in the audit list');

    const listed = JSON.parse(result.stdout);
    const actions = listed.data.map((entry) => entry.action).reverse();
    assert.deepEqual(actions, ['project.create', 'credential.write', 'agent.create', 'token.mint']);
    const mint = listed.data[0];
    assert.equal(mint.target, provisioned.tokenId, 'token.mint names the token');
    assert.equal(mint.project_id, provisioned.projectId, 'token.mint names the project');
    assert.match(mint.actor, /^ksak_/, 'the actor is the admin key id');
    assert.equal(mint.source_address, '127.0.0.1', 'the source address is the CLI client');
    assert.match(mint.request_id, /.+/, 'the entry carries the request id');
  });

  test('audit list filters by action in a table', async () => {
    const result = await ks.cli(['audit', 'list', '--action', 'credential.write']);
    assert.equal(result.code, 0, `audit list exits 0; stderr: ${result.stderr}`);
    const lines = result.stdout.trim().split('\n');
    assert.equal(lines.length, 2, `one header and one row: ${result.stdout}`);
    assert.match(lines[0], /^SEQ\s+TIME\s+ACTION/);
    assert.match(lines[1], /credential\.write\s+ksak_\w+\s+openai/);
  });

  test('audit verify passes then fails after tampering', async () => {
    const viaApi = await ks.cli(['audit', 'verify']);
    assert.equal(viaApi.code, 0, `verify through the API exits 0; stdout: ${viaApi.stdout} stderr: ${viaApi.stderr}`);
    assert.match(viaApi.stdout, /audit trail intact: 4 entries checked/);

    const offline = await ks.cli(['audit', 'verify', '--json', '--data-dir', ks.dataDir], {
      withAdminKey: false,
    });
    assert.equal(offline.code, 0, `verify on the file exits 0; stderr: ${offline.stderr}`);
    assert.deepEqual(JSON.parse(offline.stdout), { ok: true, entries: 4 });

    const database = path.join(ks.dataDir, 'keystore.db');
    const edited = spawnSync('sqlite3', [
      database,
      "DROP TRIGGER audit_entries_no_update; UPDATE audit_entries SET details = '{}' WHERE seq = 2;",
    ]);
    assert.equal(edited.status, 0, `sqlite3 edit succeeded: ${edited.stderr}`);

    const brokenApi = await ks.cli(['audit', 'verify']);
    assert.equal(brokenApi.code, 1, `verify through the API exits 1; stdout: ${brokenApi.stdout}`);
    assert.match(brokenApi.stdout, /audit trail broken at seq 2: edited/);

    const brokenFile = await ks.cli(['audit', 'verify', '--json', '--data-dir', ks.dataDir], {
      withAdminKey: false,
    });
    assert.equal(brokenFile.code, 1, `verify on the file exits 1; stdout: ${brokenFile.stdout}`);
    assert.deepEqual(JSON.parse(brokenFile.stdout), {
      ok: false,
      entries: 4,
      first_bad_seq: 2,
      problem: 'edited',
    });
  });

  test('audit verify on a missing data dir exits 1', async () => {
    const result = await ks.cli(['audit', 'verify', '--data-dir', path.join(ks.dataDir, 'absent')], {
      withAdminKey: false,
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no database at/);
  });
});
