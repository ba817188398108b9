// Start-up of `keystore serve`: listening lines, the files of a new data directory and their
// modes, and the start-up checks that must stop the server (a key file readable by others, a
// different master key, a private upstream without --allow-private-upstreams).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { proxyRequest } from '../harness/http.mjs';
import {
  makeTempDir,
  provision,
  startKeystore,
  tryStartKeystore,
} from '../harness/keystore.mjs';
import { kOpenAiKey } from '../harness/secrets.mjs';

function modeOf(stats) {
  return (stats.mode & 0o777).toString(8).padStart(4, '0');
}

describe('keystore serve start-up', () => {
  let mock;
  let tempRoot;

  before(async () => {
    mock = await startOpenAi({ expectedCredential: kOpenAiKey });
    tempRoot = await makeTempDir();
  });

  after(async () => {
    await mock.close();
    await rm(tempRoot, { recursive: true, force: true });
  });

  test('serve prints both listening lines', async () => {
    const ks = await startKeystore({ upstreams: { openai: mock.url } });
    try {
      const lines = ks.stdoutText().split('\n');
      const proxyLines = lines.filter((line) => /^proxy listening on 127\.0\.0\.1:\d+$/.test(line));
      const adminLines = lines.filter((line) => /^admin listening on 127\.0\.0\.1:\d+$/.test(line));
      assert.equal(proxyLines.length, 1, `stdout has one proxy listening line: ${ks.stdoutText()}`);
      assert.equal(adminLines.length, 1, `stdout has one admin listening line: ${ks.stdoutText()}`);

      const proxyPort = Number(new URL(ks.proxyUrl).port);
      const adminPort = Number(new URL(ks.adminUrl).port);
      assert.ok(proxyPort > 0, 'proxy port is not 0');
      assert.ok(adminPort > 0, 'admin port is not 0');
      assert.notEqual(proxyPort, adminPort, 'proxy and admin ports differ');

      const proxyHealth = await fetch(`${ks.proxyUrl}/healthz`);
      assert.equal(proxyHealth.status, 200, 'GET /healthz on the proxy listener is 200');
      const adminHealth = await fetch(`${ks.adminUrl}/healthz`);
      assert.equal(adminHealth.status, 200, 'GET /healthz on the admin listener is 200');
    } finally {
      await ks.close();
    }
  });

  test('threads named by role', async () => {
    const ks = await startKeystore({ upstreams: { openai: mock.url }, extraArgs: ['--threads', '3'] });
    try {
      const taskDir = `/proc/${ks.pid}/task`;
      const names = [];
      for (const task of await readdir(taskDir)) {
        names.push((await readFile(path.join(taskDir, task, 'comm'), 'utf8')).trim());
      }
      names.sort();
      for (const expected of ['ks-proxy-0', 'ks-proxy-1', 'ks-proxy-2', 'ks-ledger', 'ks-events']) {
        assert.equal(names.filter((name) => name === expected).length, 1, `one thread named ${expected}: ${names}`);
      }
      assert.equal(names.filter((name) => name.startsWith('ks-proxy-')).length, 3, `three proxy threads: ${names}`);
      assert.ok(names.some((name) => name.startsWith('ks-webhook-')), `a webhook thread: ${names}`);
    } finally {
      await ks.close();
    }
  });

  test('first start writes private files', async () => {
    const ks = await startKeystore({ upstreams: { openai: mock.url } });
    try {
      const dirStats = await stat(ks.dataDir);
      assert.equal(modeOf(dirStats), '0700', 'data directory mode is 0700');

      const adminKeyPath = path.join(ks.dataDir, 'admin.key');
      const adminKeyText = await readFile(adminKeyPath, 'utf8');
      assert.match(adminKeyText, /^ksa_[0-9a-f]{64}\n$/, 'admin.key holds ksa_ and 64 hex and a newline');
      assert.equal(modeOf(await stat(adminKeyPath)), '0600', 'admin.key mode is 0600');

      const masterKeyPath = path.join(ks.dataDir, 'master.key');
      const masterKeyBytes = await readFile(masterKeyPath);
      assert.ok(masterKeyBytes.length >= 32, `master.key holds at least 32 bytes, has ${masterKeyBytes.length}`);
      assert.equal(modeOf(await stat(masterKeyPath)), '0600', 'master.key mode is 0600');

      const dbStats = await stat(path.join(ks.dataDir, 'keystore.db'));
      assert.ok(dbStats.isFile(), 'keystore.db is a regular file');

      const output = ks.stdoutText() + ks.stderrText();
      assert.ok(!output.includes(adminKeyText.trim()), 'stdout and stderr do not contain the admin key');
      const masterKeyText = masterKeyBytes.toString('utf8').trim();
      assert.ok(!output.includes(masterKeyText), 'stdout and stderr do not contain the master key file content');
      assert.ok(!output.includes(masterKeyBytes.toString('hex')), 'stdout and stderr do not contain the master key as hex');
    } finally {
      await ks.close();
    }
  });

  test('serve exits 0 on SIGTERM', async () => {
    const ks = await startKeystore({ upstreams: { openai: mock.url } });
    const result = await ks.stop();
    await ks.close();
    assert.equal(result.timedOut, undefined, 'serve exits within 10 s of SIGTERM');
    assert.equal(result.code, 0, `exit code after SIGTERM is 0 (signal ${result.signal})`);
  });

  test('master key file readable by others rejected', async () => {
    const dataDir = path.join(tempRoot, 'wide-mode');
    const first = await startKeystore({ upstreams: { openai: mock.url }, dataDir });
    await first.close();
    await chmod(path.join(dataDir, 'master.key'), 0o644);

    const second = await tryStartKeystore({ upstreams: { openai: mock.url }, dataDir });
    if (second.ks) {
      await second.ks.close();
      assert.fail('serve started with a 0644 master.key');
    }
    assert.notEqual(second.exit.code, 0, `serve exits non-zero (code ${second.exit.code}, signal ${second.exit.signal})`);
    assert.equal(second.exit.signal, null, 'serve exits by itself, not by a signal');
    assert.match(second.exit.stderr, /0?644/, `stderr names the file mode 0644: ${second.exit.stderr}`);
    assert.match(second.exit.stderr, /master\.key|master key/i, `stderr names the master key file: ${second.exit.stderr}`);
  });

  test('different master key rejected on restart', async () => {
    const dataDir = path.join(tempRoot, 'master-key-change');
    const firstKey = randomBytes(32).toString('hex');
    const secondKey = randomBytes(32).toString('hex');

    const first = await startKeystore({
      upstreams: { openai: mock.url },
      dataDir,
      env: { KEYSTORE_MASTER_KEY: firstKey },
    });
    const project = await provision(first, { keys: { openai: kOpenAiKey } });
    await first.close();

    const second = await tryStartKeystore({
      upstreams: { openai: mock.url },
      dataDir,
      env: { KEYSTORE_MASTER_KEY: secondKey },
    });
    if (second.ks) {
      await second.ks.close();
      assert.fail('serve started with a master key that differs from the one the data was written with');
    }
    assert.notEqual(second.exit.code, 0, `serve exits non-zero (code ${second.exit.code})`);
    assert.match(second.exit.stderr, /master key/i, `stderr says the master key is the problem: ${second.exit.stderr}`);
    assert.ok(!second.exit.stderr.includes(firstKey), 'stderr does not contain the first master key');
    assert.ok(!second.exit.stderr.includes(secondKey), 'stderr does not contain the second master key');

    const third = await startKeystore({
      upstreams: { openai: mock.url },
      dataDir,
      env: { KEYSTORE_MASTER_KEY: firstKey },
    });
    try {
      mock.clear();
      const response = await proxyRequest(third, {
        path: '/v1/openai/v1/chat/completions',
        token: project.token,
        json: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
      });
      assert.equal(response.status, 200, `the original master key still decrypts the stored key: ${response.text}`);
      assert.equal(mock.requests.length, 1, 'the upstream received one request');
    } finally {
      await third.close();
    }
  });

  test('private upstream rejected without flag', async () => {
    const result = await tryStartKeystore({
      upstreams: { openai: mock.url },
      allowPrivateUpstreams: false,
    });
    if (result.ks) {
      await result.ks.close();
      assert.fail(`serve started with the private upstream ${mock.url} and no --allow-private-upstreams`);
    }
    assert.notEqual(result.exit.code, 0, `serve exits non-zero (code ${result.exit.code})`);
    assert.match(result.exit.stderr, /private|loopback|allow-private-upstreams/i, `stderr says the upstream address is private: ${result.exit.stderr}`);
    assert.match(result.exit.stderr, /openai|127\.0\.0\.1/, `stderr names the provider or the address: ${result.exit.stderr}`);
  });
});
