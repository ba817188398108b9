// Configuration of `keystore serve` from a TOML file and KEYSTORE_… environment variables,
// and their precedence: flags over the environment over the file.

import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { proxyRequest } from '../harness/http.mjs';
import { makeTempDir, provision, startKeystore, tryStartKeystore } from '../harness/keystore.mjs';
import { kOpenAiKey } from '../harness/secrets.mjs';

const kChat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

async function chatThrough(ks) {
  const project = await provision(ks, { keys: { openai: kOpenAiKey } });
  return proxyRequest(ks, { path: '/v1/openai/v1/chat/completions', token: project.token, json: kChat });
}

describe('serve configuration', () => {
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

  test('TOML file sets upstream and private policy', async () => {
    const file = path.join(tempRoot, 'keystore.toml');
    await writeFile(file, [
      'allow_private_upstreams = true',
      `upstream = ["openai=${mock.url}"]`,
      'log-level = "info"',
      '',
    ].join('\n'));
    const ks = await startKeystore({ upstreams: {}, allowPrivateUpstreams: false, extraArgs: ['--config', file] });
    try {
      mock.clear();
      const response = await chatThrough(ks);
      assert.equal(response.status, 200, `request through the file's upstream: ${response.text}`);
      assert.equal(mock.requests.length, 1, 'the upstream named in the file received the request');
    } finally {
      await ks.close();
    }
  });

  test('environment sets upstream and private policy', async () => {
    const ks = await startKeystore({
      upstreams: {},
      allowPrivateUpstreams: false,
      env: { KEYSTORE_UPSTREAM: `openai=${mock.url}`, KEYSTORE_ALLOW_PRIVATE_UPSTREAMS: 'true' },
    });
    try {
      mock.clear();
      const response = await chatThrough(ks);
      assert.equal(response.status, 200, `request through the environment's upstream: ${response.text}`);
      assert.equal(mock.requests.length, 1, 'the upstream named in the environment received the request');
    } finally {
      await ks.close();
    }
  });

  test('environment wins over file', async () => {
    const file = path.join(tempRoot, 'dead-upstream.toml');
    await writeFile(file, 'allow_private_upstreams = true\nupstream = ["openai=http://127.0.0.1:1"]\n');
    const ks = await startKeystore({
      upstreams: {},
      allowPrivateUpstreams: false,
      extraArgs: ['--config', file],
      env: { KEYSTORE_UPSTREAM: `openai=${mock.url}` },
    });
    try {
      mock.clear();
      const response = await chatThrough(ks);
      assert.equal(response.status, 200, `the environment's upstream is used: ${response.text}`);
      assert.equal(mock.requests.length, 1, 'the environment upstream received the request');
    } finally {
      await ks.close();
    }
  });

  test('unknown config key rejected', async () => {
    const file = path.join(tempRoot, 'typo.toml');
    await writeFile(file, 'listen_adress = "127.0.0.1:0"\n');
    const result = await tryStartKeystore({ upstreams: {}, extraArgs: ['--config', file] });
    if (result.ks) {
      await result.ks.close();
      assert.fail('serve started with an unknown config key');
    }
    assert.equal(result.exit.code, 2, `serve exits with the usage status 2 (got ${result.exit.code})`);
    assert.match(result.exit.stderr, /unknown key 'listen-adress'/, `stderr names the key: ${result.exit.stderr}`);
  });
});
