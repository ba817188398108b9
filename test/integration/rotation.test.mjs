// Token rotation with a grace period, and online master-key rotation of a running server:
// continuous proxy traffic through the rotation, a restart with the new key, a refused restart
// with the old key alone, and a rotation stopped half way and resumed.

import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';

import { assertKeystoreError, proxyRequest } from '../harness/http.mjs';
import { childEnv, cliJson, provision, runProgram, startKeystore, tryStartKeystore } from '../harness/keystore.mjs';
import { kOpenAiKey } from '../harness/secrets.mjs';
import { startStack } from '../harness/stack.mjs';

const kChatPath = '/v1/openai/v1/chat/completions';
const kChat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function chat(ks, token) {
  return proxyRequest(ks, { path: kChatPath, token, json: kChat });
}

// Runs `keystore rotate master-key` on the data directory, without any admin key.
async function rotateMasterKey(dataDir, extraArgs = []) {
  const result = await runProgram(['rotate', 'master-key', '--data-dir', dataDir, '--json', ...extraArgs], {
    env: childEnv(),
  });
  assert.equal(result.code, 0, `rotate master-key exited ${result.code}; stderr: ${result.stderr}`);
  return JSON.parse(result.stdout);
}


describe('token rotation at the proxy', () => {
  let stack;
  let ks;

  before(async () => {
    stack = await startStack();
    ks = stack.ks;
  });

  after(async () => {
    await stack?.close();
  });

  beforeEach(() => {
    stack.clearMocks();
  });

  test('old token works during the grace and expires after it', async () => {
    const minted = await cliJson(ks, ['token', 'create', '--agent', stack.project.agentId]);
    const rotated = await cliJson(ks, ['token', 'rotate', minted.id, '--grace', '2s']);
    assert.match(rotated.token, /^ks_[0-9a-f]{64}$/);
    assert.equal(rotated.rotated_from, minted.id);

    const oldDuring = await chat(ks, minted.token);
    assert.equal(oldDuring.status, 200, `old token during the grace: ${oldDuring.text}`);
    const newDuring = await chat(ks, rotated.token);
    assert.equal(newDuring.status, 200, `new token during the grace: ${newDuring.text}`);

    await sleep(2300);
    const oldAfter = await chat(ks, minted.token);
    assertKeystoreError(oldAfter, 401, 'token_expired', 'old token after the grace');
    const newAfter = await chat(ks, rotated.token);
    assert.equal(newAfter.status, 200, `new token after the grace: ${newAfter.text}`);
    assert.equal(stack.mocks.openai.requests.length, 3, 'the refused request never reached upstream');
  });

  test('rotation without grace refuses the old token at the next request', async () => {
    const minted = await cliJson(ks, ['token', 'create', '--agent', stack.project.agentId]);
    assert.equal((await chat(ks, minted.token)).status, 200);

    const rotated = await cliJson(ks, ['token', 'rotate', minted.id]);
    assertKeystoreError(await chat(ks, minted.token), 401, 'token_revoked', 'old token');
    assert.equal((await chat(ks, rotated.token)).status, 200);

    const again = await ks.cli(['token', 'rotate', minted.id]);
    assert.equal(again.code, 1, `rotating a revoked token fails: ${again.stderr}`);
    assert.match(again.stderr, /is revoked and cannot be rotated/);
    assert.ok(!again.stdout.includes('ks_'), 'no token printed on failure');
  });
});

describe('master-key rotation of a running server', () => {
  let stack;
  let ks;
  let upstreams;
  let projects;

  before(async () => {
    stack = await startStack();
    ks = stack.ks;
    upstreams = { openai: stack.mocks.openai.url, anthropic: stack.mocks.anthropic.url, resend: stack.mocks.resend.url };
    projects = [stack.project];
    for (let i = 1; i < 4; i++) {
      projects.push(await provision(ks, { project: `rotating-${i}`, agent: `agent-${i}`, keys: { openai: kOpenAiKey } }));
    }
  });

  after(async () => {
    await stack?.close();
  });

  test('traffic keeps flowing through a rotation, a restart and a new project', async () => {
    const failures = [];
    let sent = 0;
    let running = true;
    const traffic = (async () => {
      while (running) {
        const project = projects[sent % projects.length];
        const response = await chat(ks, project.token);
        sent += 1;
        if (response.status !== 200) {
          failures.push(`${response.status} ${response.text}`);
        }
      }
    })();

    await sleep(300);
    const report = await rotateMasterKey(ks.dataDir, ['--batch-size', '1']);
    // The server picks the change up at its next poll; keep sending through it.
    await sleep(800);
    running = false;
    await traffic;

    assert.equal(report.complete, true);
    assert.equal(report.resumed, false);
    // Four projects and the shared pool's data key, if one exists.
    assert.ok(report.moved >= 4, `moved ${report.moved} data keys`);
    assert.match(report.master_key_id, /^mk_[0-9a-f]{16}$/);
    assert.equal(report.previous_master_key_ids.length, 1);
    assert.deepEqual(failures, [], `failed requests out of ${sent}`);
    assert.ok(sent >= 10, `sent ${sent} requests during the rotation`);
    for (const request of stack.mocks.openai.requests) {
      assert.equal(request.headers.authorization, `Bearer ${kOpenAiKey}`);
    }

    // A project created by the server that started before the rotation uses the new key.
    const fresh = await provision(ks, { project: 'after-rotation', agent: 'late', keys: { openai: kOpenAiKey } });
    assert.equal((await chat(ks, fresh.token)).status, 200);
    const finished = await rotateMasterKey(ks.dataDir, ['--finish']);
    assert.equal(finished.removed_master_key_id, report.previous_master_key_ids[0]);

    const dataDir = ks.dataDir;
    await ks.stop();
    ks = await startKeystore({ dataDir, upstreams });
    stack.ks = ks;
    assert.match(ks.stdoutText(), new RegExp(`master key ${report.master_key_id}`));
    for (const project of [...projects, fresh]) {
      const response = await chat(ks, project.token);
      assert.equal(response.status, 200, `after the restart: ${response.text}`);
    }
  });

  test('an interrupted rotation resumes, and the old key alone is refused', async () => {
    const oldKeyText = await readFile(path.join(ks.dataDir, 'master.key'), 'utf8');
    const first = await rotateMasterKey(ks.dataDir, ['--batch-size', '1', '--limit', '2']);
    assert.equal(first.moved, 2);
    assert.equal(first.complete, false);
    assert.ok(first.remaining >= 3, `remaining ${first.remaining}`);
    for (const project of projects) {
      assert.equal((await chat(ks, project.token)).status, 200, 'half-rotated data keys still open');
    }

    const second = await rotateMasterKey(ks.dataDir);
    assert.equal(second.resumed, true);
    assert.equal(second.complete, true);
    assert.equal(second.master_key_id, first.master_key_id);
    assert.equal(second.moved, first.remaining);

    const dataDir = ks.dataDir;
    await ks.stop();
    const oldKeyFile = path.join(path.dirname(dataDir), 'old.key');
    await writeFile(oldKeyFile, oldKeyText, { mode: 0o600 });
    const refused = await tryStartKeystore({ dataDir, upstreams, extraArgs: ['--master-key-file', oldKeyFile] });
    assert.ok(refused.exit, 'the server refuses to start with the old key alone');
    assert.equal(refused.exit.code, 1);
    assert.match(refused.exit.stderr, new RegExp(`does not match the one this database uses \\(${second.master_key_id}\\)`));
    assert.ok(!refused.exit.stderr.includes(oldKeyText.trim()), 'no key material in the message');

    ks = await startKeystore({ dataDir, upstreams });
    stack.ks = ks;
    for (const project of projects) {
      assert.equal((await chat(ks, project.token)).status, 200, 'works with the new key');
    }
  });
});
