// Starts the real `keystore` binary for a test: `serve` with a fresh temporary data directory,
// both listeners on 127.0.0.1 port 0, and the given mock upstreams. Also runs the CLI against
// it, calls the admin API, and provisions a project, agent, keys and tokens through the CLI.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const keystoreBin = process.env.KEYSTORE_BIN
  ? path.resolve(process.env.KEYSTORE_BIN)
  : path.resolve(repoRoot, 'build/keystore');

const kStartTimeoutMs = 20000;
const kCliTimeoutMs = 20000;
const kStopTimeoutMs = 10000;

// Children still running when the test process exits are ended by PID, so that a failed test
// leaves no server behind.
const liveChildren = new Set();
process.on('exit', () => {
  for (const child of liveChildren) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

// The environment for a child: the test's environment without any KEYSTORE_* setting, so that a
// variable set in the developer's shell cannot change what a test starts, plus `extra`.
export function childEnv(extra = {}) {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('KEYSTORE_')) {
      env[name] = value;
    }
  }
  return { ...env, ...extra };
}

function upstreamArgs(upstreams) {
  const args = [];
  for (const [provider, url] of Object.entries(upstreams ?? {})) {
    args.push('--upstream', `${provider}=${url}`);
  }
  return args;
}

// Spawns `keystore serve` and resolves when it printed both listening lines or exited first.
// Returns {child, proxyUrl, adminUrl, stdout(), stderr()} on start, or {exit: {code, signal,
// stdout, stderr}} when the process ended before listening.
function spawnServe(args, env) {
  const child = spawn(keystoreBin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text) => {
    stderr += text;
  });
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      liveChildren.delete(child);
      resolve({ code, signal });
    });
  });

  return new Promise((resolve, reject) => {
    let proxyAddress;
    let adminAddress;
    let settled = false;
    const timer = setTimeout(() => {
      if (!settled) {
        settled = true;
        child.kill('SIGKILL');
        reject(new Error(`keystore serve printed no listening lines within ${kStartTimeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
      }
    }, kStartTimeoutMs);

    child.stdout.on('data', (text) => {
      stdout += text;
      proxyAddress ??= /^proxy listening on (\S+)$/m.exec(stdout)?.[1];
      adminAddress ??= /^admin listening on (\S+)$/m.exec(stdout)?.[1];
      if (!settled && proxyAddress && adminAddress) {
        settled = true;
        clearTimeout(timer);
        resolve({
          child,
          exited,
          proxyUrl: `http://${proxyAddress}`,
          adminUrl: `http://${adminAddress}`,
          stdout: () => stdout,
          stderr: () => stderr,
        });
      }
    });
    exited.then(({ code, signal }) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        // The pipes may still hold the last bytes when 'exit' fires.
        setTimeout(() => resolve({ exit: { code, signal, stdout, stderr } }), 50);
      }
    });
  });
}

// Builds the argument list of `keystore serve`.
export function serveArgs({ dataDir, upstreams, extraArgs = [], allowPrivateUpstreams = true, logLevel }) {
  const args = [
    'serve',
    '--data-dir', dataDir,
    '--listen', '127.0.0.1:0',
    '--admin-listen', '127.0.0.1:0',
  ];
  if (allowPrivateUpstreams) {
    args.push('--allow-private-upstreams');
  }
  args.push(...upstreamArgs(upstreams));
  if (logLevel) {
    args.push('--log-level', logLevel);
  }
  args.push(...extraArgs);
  return args;
}

export async function makeTempDir(prefix = 'keystore-test-') {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

// Starts `keystore serve`. Options:
//   upstreams              {openai: url, anthropic: url, resend: url}
//   extraArgs              more serve arguments
//   env                    extra environment variables
//   dataDir                reuse this data directory (default: a new one, not yet created)
//   allowPrivateUpstreams  pass --allow-private-upstreams (default true)
//   logLevel               pass --log-level
// Returns {ks} when it listens, or {exit: {code, signal, stdout, stderr}} when it ended first.
export async function tryStartKeystore(options = {}) {
  const tempRoot = options.dataDir ? undefined : await makeTempDir();
  const dataDir = options.dataDir ?? path.join(tempRoot, 'data');
  const started = await spawnServe(serveArgs({ ...options, dataDir }), childEnv(options.env));
  if (started.exit) {
    if (tempRoot) {
      await rm(tempRoot, { recursive: true, force: true });
    }
    return { exit: started.exit };
  }
  const adminKey = (await readFile(path.join(dataDir, 'admin.key'), 'utf8')).trim();
  return { ks: makeHandle({ started, dataDir, tempRoot, adminKey }) };
}

// Starts `keystore serve` (options as tryStartKeystore) and fails when it does not listen.
export async function startKeystore(options = {}) {
  const result = await tryStartKeystore(options);
  if (result.exit) {
    throw new Error(`keystore serve exited before listening (code ${result.exit.code}, signal ${result.exit.signal}); stderr: ${result.exit.stderr}`);
  }
  return result.ks;
}

function makeHandle({ started, dataDir, tempRoot, adminKey }) {
  let stopped;
  const ks = {
    proxyUrl: started.proxyUrl,
    adminUrl: started.adminUrl,
    adminKey,
    dataDir,
    pid: started.child.pid,
    stdoutText: started.stdout,
    stderrText: started.stderr,
    get running() {
      return started.child.exitCode === null && started.child.signalCode === null;
    },

    // Runs the CLI (same binary) against this server; `input` goes to standard input.
    cli(args, { input, env = {}, withAdminKey = true } = {}) {
      const cliEnv = { KEYSTORE_ADDR: started.adminUrl, ...env };
      if (withAdminKey) {
        cliEnv.KEYSTORE_ADMIN_KEY = adminKey;
      }
      return runProgram(args, { input, env: childEnv(cliEnv) });
    },

    // Calls the admin API with the admin key; `body` is sent as JSON when given.
    async api(method, apiPath, body, { headers = {}, auth = true } = {}) {
      const init = { method, headers: { ...headers } };
      if (auth) {
        init.headers.authorization = `Bearer ${adminKey}`;
      }
      if (body !== undefined) {
        init.headers['content-type'] = 'application/json';
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
      }
      const response = await fetch(`${started.adminUrl}${apiPath}`, init);
      const text = await response.text();
      let json;
      try {
        json = text.length > 0 ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: response.status, headers: response.headers, text, json };
    },

    // Sends SIGTERM and waits for the exit; resolves {code, signal}. Idempotent.
    stop() {
      stopped ??= (async () => {
        if (ks.running) {
          started.child.kill('SIGTERM');
        }
        const timeout = new Promise((resolve) => setTimeout(() => resolve(undefined), kStopTimeoutMs));
        const result = await Promise.race([started.exited, timeout]);
        if (result === undefined) {
          started.child.kill('SIGKILL');
          await started.exited;
          return { code: null, signal: 'SIGKILL', timedOut: true };
        }
        return result;
      })();
      return stopped;
    },

    // Stops the server and removes the temporary directory it was given, if the harness made it.
    async close() {
      await ks.stop();
      if (tempRoot) {
        await rm(tempRoot, { recursive: true, force: true });
      }
    },
  };
  return ks;
}

// Runs the binary with `args` and resolves {code, signal, stdout, stderr}; standard input gets
// `input` (or nothing) and is then closed.
export function runProgram(args, { input, env = childEnv(), timeoutMs = kCliTimeoutMs } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(keystoreBin, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    liveChildren.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (text) => {
      stdout += text;
    });
    child.stderr.on('data', (text) => {
      stderr += text;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keystore ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
    // A CLI that exits without reading its input must not fail the test with EPIPE.
    child.stdin.on('error', () => {});
    if (input !== undefined) {
      child.stdin.write(input);
    }
    child.stdin.end();
  });
}

// Runs the CLI and parses its --json output; fails the test with the CLI's stderr otherwise.
export async function cliJson(ks, args, options = {}) {
  const result = await ks.cli([...args, '--json'], options);
  assert.equal(result.code, 0, `keystore ${args.join(' ')} --json exited ${result.code}; stderr: ${result.stderr}`);
  try {
    return JSON.parse(result.stdout);
  } catch (error) {
    assert.fail(`keystore ${args.join(' ')} --json printed invalid JSON (${error.message}): ${result.stdout}`);
  }
}

// Stores a provider key through `provider set-key`, with the key on standard input.
export async function setProviderKey(ks, projectId, provider, key) {
  const result = await ks.cli(['provider', 'set-key', provider, '--project', projectId], {
    input: `${key}\n`,
  });
  assert.equal(result.code, 0, `provider set-key ${provider} exited ${result.code}; stderr: ${result.stderr}`);
  return result;
}

// Mints a token for an agent through `token create`; returns the parsed JSON ({id, token, ...}).
// `models` limits the token to those models (default: any model).
export async function mintToken(ks, agentId, { scopes = [], models = [], expiresIn } = {}) {
  const args = ['token', 'create', '--agent', agentId];
  for (const scope of scopes) {
    args.push('--scope', scope);
  }
  for (const model of models) {
    args.push('--model', model);
  }
  if (expiresIn !== undefined) {
    args.push('--expires-in', expiresIn);
  }
  const created = await cliJson(ks, args);
  assert.match(created.id ?? '', /^tok_/, 'token create returns an id starting with tok_');
  assert.match(created.token ?? '', /^ks_[0-9a-f]{64}$/, 'token create returns ks_ and 64 lowercase hex');
  return created;
}

// Creates a project, stores `keys` ({provider: key}), creates an agent and mints a token, all
// through the CLI. Returns {projectId, agentId, tokenId, token}.
export async function provision(ks, { project = 'proj-test', agent = 'agent-test', keys = {}, scopes = [], expiresIn } = {}) {
  const createdProject = await cliJson(ks, ['project', 'create', project]);
  assert.match(createdProject.id ?? '', /^prj_/, 'project create returns an id starting with prj_');
  for (const [provider, key] of Object.entries(keys)) {
    await setProviderKey(ks, createdProject.id, provider, key);
  }
  const createdAgent = await cliJson(ks, ['agent', 'create', agent, '--project', createdProject.id]);
  assert.match(createdAgent.id ?? '', /^agt_/, 'agent create returns an id starting with agt_');
  const token = await mintToken(ks, createdAgent.id, { scopes, expiresIn });
  return { projectId: createdProject.id, agentId: createdAgent.id, tokenId: token.id, token: token.token };
}

// Reads the project's ledger until it holds at least `count` rows, then once more after a pause
// so that a surplus row also shows. Rows are written in batches, so a fresh row may take a
// moment to appear.
export async function waitForLedger(ks, projectId, count, { timeoutMs = 3000, settleMs = 400 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let rows = [];
  for (;;) {
    const response = await ks.api('GET', `/api/v1/projects/${projectId}/ledger`);
    assert.equal(response.status, 200, `GET ledger returned ${response.status}: ${response.text}`);
    rows = response.json?.data;
    assert.ok(Array.isArray(rows), `ledger response has a data array: ${response.text}`);
    if (rows.length >= count || Date.now() > deadline) {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const response = await ks.api('GET', `/api/v1/projects/${projectId}/ledger`);
  return response.json?.data ?? rows;
}

// Calls the admin API and fails the test unless the response has `status`. Returns the parsed
// body.
export async function apiExpect(ks, method, apiPath, body, status) {
  const response = await ks.api(method, apiPath, body);
  assert.equal(response.status, status, `${method} ${apiPath} returned ${response.status}, expected ${status}: ${response.text}`);
  return response.json;
}

// Stores a BYOK credential through the admin API and enables the provider in BYOK mode.
// `secret` is a plain key (string) or the fields of a multi-field credential (object).
export async function configureByok(ks, projectId, provider, secret) {
  const body = typeof secret === 'string' ? { api_key: secret } : { credential: secret };
  await apiExpect(ks, 'PUT', `/api/v1/projects/${projectId}/providers/${provider}/key`, body, 200);
  return apiExpect(ks, 'PATCH', `/api/v1/projects/${projectId}/providers/${provider}`, { mode: 'byok', status: 'enabled' }, 200);
}

// Adds a marketplace pool credential with the operator key the first start created; `secret`
// as in configureByok. Options: scope ('shared' or 'dedicated'), project (dedicated only),
// label, rpmLimit. Returns the pool credential entry.
export async function addPoolCredential(ks, provider, secret, { scope = 'shared', project, label, rpmLimit } = {}) {
  const body = typeof secret === 'string' ? { api_key: secret } : { credential: secret };
  body.scope = scope;
  if (project !== undefined) {
    body.project = project;
  }
  if (label !== undefined) {
    body.label = label;
  }
  if (rpmLimit !== undefined) {
    body.rpm_limit = rpmLimit;
  }
  const entry = await apiExpect(ks, 'POST', `/api/v1/pools/${provider}/credentials`, body, 201);
  assert.match(entry?.id ?? '', /^cred_/, `the pool credential id starts with cred_: ${JSON.stringify(entry)}`);
  return entry;
}

// Switches a project's provider to marketplace mode and enables it.
export function enableMarketplace(ks, projectId, provider) {
  return apiExpect(ks, 'PATCH', `/api/v1/projects/${projectId}/providers/${provider}`, { mode: 'marketplace', status: 'enabled' }, 200);
}

// Runs the concierge flow for a concierge-tier provider: the project requests it, the operator
// fulfils the request with `secret` (as in configureByok), and the project switches to
// marketplace mode. Returns the fulfilled request ({id, status, credential_id, ...}).
export async function fulfillConcierge(ks, projectId, provider, secret, { note = 'needed by an e2e test' } = {}) {
  const request = await apiExpect(ks, 'POST', `/api/v1/projects/${projectId}/concierge`, { provider, note }, 201);
  assert.equal(request?.status, 'open', `a new concierge request is open: ${JSON.stringify(request)}`);
  const body = typeof secret === 'string' ? { api_key: secret } : { credential: secret };
  const fulfilled = await apiExpect(ks, 'POST', `/api/v1/concierge/${request.id}/fulfill`, body, 200);
  assert.equal(fulfilled?.status, 'fulfilled', `the concierge request is fulfilled: ${JSON.stringify(fulfilled)}`);
  assert.match(fulfilled?.credential_id ?? '', /^cred_/, 'the fulfilled request names its credential');
  await enableMarketplace(ks, projectId, provider);
  return fulfilled;
}

// Asserts the single ledger row of a project: provider, mode, upstream status and, when given,
// the credential id (a RegExp or an exact string). Returns the row.
export async function assertOneLedgerRow(ks, projectId, { provider, mode, upstreamStatus, credentialId, path }) {
  const rows = await waitForLedger(ks, projectId, 1);
  assert.equal(rows.length, 1, `project ${projectId} has exactly one ledger row: ${JSON.stringify(rows)}`);
  const [row] = rows;
  assert.equal(row.provider, provider, `the ledger row names provider ${provider}`);
  assert.equal(row.mode, mode, `the ledger row has mode ${mode}`);
  assert.equal(row.upstream_status, upstreamStatus, `the ledger row has upstream status ${upstreamStatus}`);
  if (credentialId instanceof RegExp) {
    assert.match(row.credential_id ?? '', credentialId, 'the ledger row names the credential it used');
  } else if (credentialId !== undefined) {
    assert.equal(row.credential_id, credentialId, 'the ledger row names the credential it used');
  }
  if (path !== undefined) {
    assert.equal(row.path, path, `the ledger row has path ${path}`);
  }
  return row;
}

// Runs the CLI and asserts that it exits with `code` (1 for a refused request, 2 for a usage
// error); returns {stdout, stderr}.
export async function cliFails(ks, args, code, options = {}) {
  const result = await ks.cli(args, options);
  assert.equal(result.code, code, `keystore ${args.join(' ')} exits ${code}; stdout: ${result.stdout}; stderr: ${result.stderr}`);
  return result;
}

// Calls the admin API with another admin key than the server's first one.
export function apiWithKey(ks, adminKey, method, apiPath, body) {
  return ks.api(method, apiPath, body, { auth: false, headers: { authorization: `Bearer ${adminKey}` } });
}

// Creates an admin API key with the server's first (owner and operator) key; returns the
// created entry, whose `key` is the new key.
export async function createAdminKey(ks, { name = 'test-key', role = 'owner', operator = false } = {}) {
  const response = await ks.api('POST', '/api/v1/admin-keys', { name, role, operator });
  assert.equal(response.status, 201, `POST /api/v1/admin-keys returns 201: ${response.text}`);
  assert.match(response.json?.key ?? '', /^ksa_[0-9a-f]{64}$/, 'the created admin key is ksa_ and 64 lowercase hex');
  return response.json;
}

// Adds a credential to a marketplace pool through `pool add`, with `secret` (a key, or an
// object of credential fields) on standard input. `dedicated` names a project; without it the
// credential is shared. Returns the pool entry.
export async function addPoolCredentialWithCli(ks, provider, secret, { dedicated, label, rpm } = {}) {
  const args = ['pool', 'add', provider];
  if (dedicated === undefined) {
    args.push('--shared');
  } else {
    args.push('--dedicated', dedicated);
  }
  if (label !== undefined) {
    args.push('--label', label);
  }
  if (rpm !== undefined) {
    args.push('--rpm', String(rpm));
  }
  const input = typeof secret === 'string' ? `${secret}\n` : `${JSON.stringify(secret)}\n`;
  const entry = await cliJson(ks, args, { input });
  assert.match(entry.id ?? '', /^cred_/, 'pool add returns a credential id starting with cred_');
  return entry;
}

// The mask the server shows for a key: "…" and the key's last 4 characters. Keys of 24
// characters or more also keep their prefix up to the last '-' or '_' within the first 8
// characters, cut to a quarter of the key less 4 characters. Keys under 16 show only "…".
export function maskOf(key) {
  if (key.length < 16) {
    return '…';
  }
  let prefix = 0;
  if (key.length >= 24) {
    for (let i = 0; i < 8; i += 1) {
      if (key[i] === '-' || key[i] === '_') {
        prefix = i + 1;
      }
    }
    prefix = Math.min(prefix, Math.floor(key.length / 4) - 4);
  }
  return `${key.slice(0, prefix)}…${key.slice(-4)}`;
}
