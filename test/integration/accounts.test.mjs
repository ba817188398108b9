// Accounts through the real binary: the first user made with `keystore user create`, sign-in
// with `keystore login` (password on standard input), a command that uses the saved session,
// and sign-out. The password never reaches the server log or the session file.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startKeystore } from '../harness/keystore.mjs';

const kEmail = 'first.user@example.test';
const kPassword = 'integration password 0001';

describe('accounts', () => {
  let ks;
  let configHome;
  let env;

  before(async () => {
    ks = await startKeystore();
    configHome = await mkdtemp(path.join(os.tmpdir(), 'keystore-accounts-'));
    // No admin key anywhere, so the CLI must use the saved session.
    env = { XDG_CONFIG_HOME: configHome, KEYSTORE_DATA_DIR: path.join(configHome, 'no-data') };
  });

  after(async () => {
    await ks?.close();
  });

  test('user create, login, use and logout', async () => {
    const created = await ks.cli(
      ['user', 'create', '--data-dir', ks.dataDir, '--email', kEmail, '--operator'],
      { input: `${kPassword}\n`, withAdminKey: false },
    );
    assert.equal(created.code, 0, `user create exits 0; stderr: ${created.stderr}`);
    assert.match(created.stdout, /created user usr_[0-9a-f]{24} \(first\.user@example\.test\) as owner/);

    const again = await ks.cli(['user', 'create', '--data-dir', ks.dataDir, '--email', kEmail], {
      input: `${kPassword}\n`,
      withAdminKey: false,
    });
    assert.equal(again.code, 1, 'a second user with the same email is refused');

    const login = await ks.cli(['login', '--url', ks.adminUrl, '--email', kEmail], {
      input: `${kPassword}\n`,
      withAdminKey: false,
      env,
    });
    assert.equal(login.code, 0, `login exits 0; stderr: ${login.stderr}`);

    const sessionFile = path.join(configHome, 'keystore', 'session.json');
    const fileMode = (await stat(sessionFile)).mode & 0o777;
    const dirMode = (await stat(path.join(configHome, 'keystore'))).mode & 0o777;
    assert.equal(fileMode, 0o600, 'session file is 0600');
    assert.equal(dirMode, 0o700, 'session directory is 0700');
    const saved = JSON.parse(await readFile(sessionFile, 'utf8'));
    assert.match(saved.session_token, /^kss_[0-9a-f]{64}$/);
    assert.equal(saved.url, ks.adminUrl);
    assert.ok(!JSON.stringify(saved).includes(kPassword), 'session file holds no password');

    const orgs = await ks.cli(['org', 'list', '--json'], { withAdminKey: false, env });
    assert.equal(orgs.code, 0, `org list with the session exits 0; stderr: ${orgs.stderr}`);
    const rows = JSON.parse(orgs.stdout);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].role, 'owner');

    const members = await ks.cli(['member', 'list', '--json'], { withAdminKey: false, env });
    assert.equal(members.code, 0, `member list exits 0; stderr: ${members.stderr}`);
    assert.equal(JSON.parse(members.stdout)[0].email, kEmail);

    const logout = await ks.cli(['logout'], { withAdminKey: false, env });
    assert.equal(logout.code, 0, `logout exits 0; stderr: ${logout.stderr}`);
    await assert.rejects(stat(sessionFile), 'logout deletes the session file');

    const replay = await fetch(`${ks.adminUrl}/api/v1/organizations`, {
      headers: { authorization: `Bearer ${saved.session_token}` },
    });
    assert.equal(replay.status, 401, 'the session is revoked on the server');

    const after = await ks.cli(['org', 'list'], { withAdminKey: false, env });
    assert.equal(after.code, 1, 'without a session or key the CLI fails');

    const log = `${ks.stdoutText()}${ks.stderrText()}`;
    assert.ok(!log.includes(kPassword), 'the server log never holds the password');
    assert.ok(!log.includes(saved.session_token), 'the server log never holds the session token');
  });
});
