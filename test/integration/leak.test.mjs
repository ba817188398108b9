// Secret leak check over a full scenario: keys stored and replaced, tokens minted, revoked,
// deleted and expired, proxied calls that succeed, stream, fail upstream and get rejected. Then
// every byte the test saw (server stdout and stderr, CLI output, admin API and proxy responses
// with their headers, every file in the data directory including the SQLite WAL and SHM) is
// searched for every provider key and agent token, as plaintext and base64: there must be none.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { proxyRequest } from '../harness/http.mjs';
import { cliJson } from '../harness/keystore.mjs';
import { findSecrets, kAnthropicKey, kOpenAiKey, kResendKey } from '../harness/secrets.mjs';
import { startStack } from '../harness/stack.mjs';

const kReplacementKey = 'sk-test-OPENAI-0002';

async function listFiles(dir) {
  const files = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      files.push(...(await listFiles(full)));
    } else if (entry.isFile()) {
      files.push(full);
    }
  }
  return files;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('secret leak check', () => {
  let stack;
  let ks;
  // label -> secret value; labels name the secret in failure messages, values never appear there.
  const secrets = {
    'openai key': kOpenAiKey,
    'replacement openai key': kReplacementKey,
    'anthropic key': kAnthropicKey,
    'resend key': kResendKey,
    'unknown token sent by a client': `ks_${randomBytes(32).toString('hex')}`,
  };
  // Captured bytes: {source, bytes}.
  const captured = { proxy: [], admin: [], cli: [], server: [], dataRunning: [], dataStopped: [] };

  function captureResponse(bucket, source, response) {
    captured[bucket].push({ source: `${source} headers`, bytes: Buffer.from(response.rawHeaders.join('\n')) });
    captured[bucket].push({ source: `${source} body`, bytes: response.body });
  }

  async function proxy(source, options) {
    const response = await proxyRequest(ks, options);
    captureResponse('proxy', source, response);
    return response;
  }

  async function api(source, method, apiPath, body) {
    const response = await ks.api(method, apiPath, body);
    captured.admin.push({ source: `${source} headers`, bytes: Buffer.from([...response.headers].flat().join('\n')) });
    captured.admin.push({ source: `${source} body`, bytes: Buffer.from(response.text) });
    return response;
  }

  async function cli(source, args, options) {
    const result = await ks.cli(args, options);
    captured.cli.push({ source: `${source} stdout`, bytes: Buffer.from(result.stdout) });
    captured.cli.push({ source: `${source} stderr`, bytes: Buffer.from(result.stderr) });
    return result;
  }

  // Mints a token. The one response that carries it is not captured, because showing it once
  // there is the contract.
  async function mint(label, agentId, args = []) {
    const created = await cliJson(ks, ['token', 'create', '--agent', agentId, ...args]);
    secrets[label] = created.token;
    return created;
  }

  async function captureDataDir(bucket) {
    for (const file of await listFiles(ks.dataDir)) {
      captured[bucket].push({ source: path.relative(ks.dataDir, file), bytes: await readFile(file) });
    }
  }

  before(async () => {
    stack = await startStack({ keystore: { logLevel: 'debug' }, provision: false });
    ks = stack.ks;
    const { openai, anthropic, resend } = stack.mocks;

    const project = await cliJson(ks, ['project', 'create', 'leak-project']);
    const projectId = project.id;
    for (const [provider, key] of [['openai', kOpenAiKey], ['anthropic', kAnthropicKey], ['resend', kResendKey]]) {
      const result = await cli(`set-key ${provider}`, ['provider', 'set-key', provider, '--project', projectId], { input: `${key}\n` });
      assert.equal(result.code, 0, `set-key ${provider} exits 0; stderr: ${result.stderr}`);
    }
    const agent = await cliJson(ks, ['agent', 'create', 'leak-agent', '--project', projectId]);
    const main = await mint('main token', agent.id);
    const second = await mint('second token', agent.id);
    const readOnly = await mint('read-only token', agent.id, ['--scope', 'provider:openai:read']);
    const revoked = await mint('revoked token', agent.id);
    const deleted = await mint('deleted token', agent.id);
    const expiring = await mint('expired token', agent.id, ['--expires-in', '1s']);
    const apiMinted = await ks.api('POST', `/api/v1/agents/${agent.id}/tokens`, { scopes: ['provider:anthropic:*'] });
    assert.ok(apiMinted.status < 300, `POST tokens succeeds: ${apiMinted.status}`);
    secrets['API-minted token'] = apiMinted.json.token;

    const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
    const message = { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };
    const email = { from: 'a@example.test', to: 'b@example.test', subject: 's', text: 't' };

    await proxy('openai chat', { path: '/v1/openai/v1/chat/completions', token: main.token, json: chat });
    await proxy('openai stream', { path: '/v1/openai/v1/chat/completions', token: main.token, json: { ...chat, stream: true, stream_options: { include_usage: true } } });
    await proxy('anthropic via x-api-key', { path: '/v1/anthropic/v1/messages', headers: ['x-api-key', main.token], json: message });
    await proxy('anthropic stream', { path: '/v1/anthropic/v1/messages', token: secrets['API-minted token'], json: { ...message, stream: true } });
    await proxy('resend email', { path: '/v1/resend/emails', token: main.token, json: email });
    await proxy('read-only GET', { method: 'GET', path: '/v1/openai/v1/models', token: readOnly.token });

    openai.setBehavior({ echoCredential: true });
    await proxy('openai echo', { path: '/v1/openai/v1/chat/completions', token: main.token, json: chat });
    anthropic.setBehavior({ echoCredential: true });
    await proxy('anthropic echo', { path: '/v1/anthropic/v1/messages', token: main.token, json: message });
    resend.setBehavior({ echoCredential: true });
    await proxy('resend echo', { path: '/v1/resend/emails', token: main.token, json: email });
    stack.clearMocks();

    openai.setBehavior({ garbage: true });
    await proxy('upstream garbage', { path: '/v1/openai/v1/chat/completions', token: main.token, json: chat });
    openai.setBehavior({ reset: true });
    await proxy('upstream reset', { path: '/v1/openai/v1/chat/completions', token: main.token, json: chat });
    openai.setBehavior({ status: 500 });
    await proxy('upstream 500', { path: '/v1/openai/v1/chat/completions', token: main.token, json: chat });
    stack.clearMocks();

    await api('replace key', 'PUT', `/api/v1/projects/${projectId}/providers/openai/key`, { api_key: kReplacementKey });
    await proxy('openai after replacement', { path: '/v1/openai/v1/chat/completions', token: main.token, json: chat });
    await api('masked PATCH', 'PATCH', `/api/v1/projects/${projectId}/providers/openai`, { api_key: 'sk-test-…0002' });
    await api('restore key', 'PATCH', `/api/v1/projects/${projectId}/providers/openai`, { api_key: kOpenAiKey });

    await cli('revoke', ['token', 'revoke', revoked.id]);
    await api('delete token', 'DELETE', `/api/v1/tokens/${deleted.id}`);
    await sleep(1200);

    await proxy('revoked token', { path: '/v1/openai/v1/chat/completions', token: revoked.token, json: chat });
    await proxy('deleted token', { path: '/v1/openai/v1/chat/completions', token: deleted.token, json: chat });
    await proxy('expired token', { path: '/v1/openai/v1/chat/completions', token: expiring.token, json: chat });
    await proxy('unknown token', { path: '/v1/openai/v1/chat/completions', token: secrets['unknown token sent by a client'], json: chat });
    await proxy('scope denied', { path: '/v1/openai/v1/chat/completions', token: readOnly.token, json: chat });
    await proxy('ambiguous', {
      path: '/v1/openai/v1/chat/completions',
      headers: ['Authorization', `Bearer ${main.token}`, 'Authorization', `Bearer ${second.token}`],
      json: chat,
    });
    await proxy('ambiguous mixed', {
      path: '/v1/anthropic/v1/messages',
      headers: ['Authorization', `Bearer ${main.token}`, 'x-api-key', second.token],
      json: message,
    });
    await proxy('traversal', { path: '/v1/openai/../anthropic/v1/messages', token: main.token, json: message });
    await proxy('unknown provider', { path: '/v1/nosuch/v1/x', token: main.token, json: chat });
    await proxy('token in cookie', { path: '/v1/openai/v1/chat/completions', token: main.token, headers: ['Cookie', `ks=${main.token}`], json: chat });

    await api('provider list', 'GET', `/api/v1/projects/${projectId}/providers`);
    await api('provider get', 'GET', `/api/v1/projects/${projectId}/providers/openai`);
    await api('token list', 'GET', `/api/v1/agents/${agent.id}/tokens`);
    await api('agent list', 'GET', `/api/v1/projects/${projectId}/agents`);
    await api('project list', 'GET', '/api/v1/projects');
    await cli('provider list', ['provider', 'list', '--project', projectId, '--json']);
    await cli('provider list table', ['provider', 'list', '--project', projectId]);
    await cli('token list', ['token', 'list', '--agent', agent.id, '--json']);
    await cli('token list table', ['token', 'list', '--agent', agent.id]);
    await sleep(300);
    await api('ledger', 'GET', `/api/v1/projects/${projectId}/ledger`);

    await captureDataDir('dataRunning');
    const stopped = await ks.stop();
    assert.equal(stopped.code, 0, 'keystore exits 0 on SIGTERM');
    captured.server.push({ source: 'server stdout', bytes: Buffer.from(ks.stdoutText()) });
    captured.server.push({ source: 'server stderr', bytes: Buffer.from(ks.stderrText()) });
    await captureDataDir('dataStopped');
  });

  after(async () => {
    await stack?.close();
  });

  function assertNoSecrets(bucket) {
    assert.ok(captured[bucket].length > 0, `something was captured for ${bucket}`);
    const hits = [];
    for (const { source, bytes } of captured[bucket]) {
      for (const hit of findSecrets(bytes, secrets)) {
        hits.push(`${source}: ${hit.label} as ${hit.form} at byte ${hit.offset}`);
      }
    }
    assert.deepEqual(hits, [], `no secret in ${bucket} output`);
  }

  test('server output has no secrets', () => {
    assert.ok(captured.server[1].bytes.length > 0, 'the server wrote log lines to stderr');
    assertNoSecrets('server');
  });

  test('proxy responses have no secrets', () => {
    assertNoSecrets('proxy');
  });

  test('admin API responses have no secrets', () => {
    assertNoSecrets('admin');
  });

  test('CLI output has no secrets', () => {
    assertNoSecrets('cli');
  });

  test('running data directory has no secrets', () => {
    const names = captured.dataRunning.map((item) => item.source);
    assert.ok(names.includes('keystore.db'), `keystore.db was read: ${names.join(', ')}`);
    assertNoSecrets('dataRunning');
  });

  test('stopped data directory has no secrets', () => {
    assertNoSecrets('dataStopped');
  });
});
