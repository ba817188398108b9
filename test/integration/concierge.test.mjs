// Concierge requests end to end through the CLI. A project files a request for a
// concierge-tier provider, and the operator lists the queue and fulfils or rejects it. The
// fulfilment reads a dedicated credential from standard input, after which the project's
// agents reach the provider in marketplace mode.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startMock as startGroq } from '../mocks/groq.mjs';
import { proxyRequest } from '../harness/http.mjs';
import {
  apiWithKey,
  cliFails,
  cliJson,
  createAdminKey,
  maskOf,
  mintToken,
  startKeystore,
  waitForLedger,
} from '../harness/keystore.mjs';

const kGroqPoolKey = 'gsk_pool_GROQ0123456789abcdef0001';

describe('concierge requests', () => {
  let mock;
  let ks;

  before(async () => {
    mock = await startGroq({ expectedCredential: kGroqPoolKey });
    ks = await startKeystore({ upstreams: { groq: mock.url } });
  });

  after(async () => {
    await ks?.close();
    await mock?.close();
  });

  test('request, list and fulfill end to end', async () => {
    const project = await cliJson(ks, ['project', 'create', 'concierge-flow']);

    const request = await cliJson(ks, ['concierge', 'request', 'groq', '--project', 'concierge-flow', '--note', 'for the summarizer']);
    assert.match(request.id, /^cnc_[0-9a-f]{24}$/, 'id is cnc_ and 24 hex digits');
    assert.equal(request.project_id, project.id);
    assert.equal(request.provider, 'groq');
    assert.equal(request.note, 'for the summarizer');
    assert.equal(request.status, 'open');
    assert.equal(request.reason, null);
    assert.equal(request.credential_id, null);
    assert.match(request.created_at, /^\d{4}-\d{2}-\d{2}T/);
    assert.equal(request.updated_at, request.created_at);

    const own = await cliJson(ks, ['concierge', 'list', '--project', project.id]);
    assert.deepEqual(own.map((item) => item.id), [request.id], 'the project lists its request');
    const queue = await cliJson(ks, ['concierge', 'list', '--status', 'open']);
    assert.ok(queue.some((item) => item.id === request.id), 'the operator queue holds the open request');

    // Until the operator fulfils the request, marketplace mode is refused.
    const early = await cliFails(ks, ['provider', 'enable', 'groq', '--project', project.id, '--mode', 'marketplace'], 1);
    assert.match(early.stderr, /availability concierge/);
    assert.match(early.stderr, /\(conflict\)/);

    const fulfilled = await ks.cli(['concierge', 'fulfill', request.id, '--label', 'groq for flow', '--rpm', '30', '--json'], {
      input: `${kGroqPoolKey}\n`,
    });
    assert.equal(fulfilled.code, 0, `concierge fulfill exits 0; stderr: ${fulfilled.stderr}`);
    assert.ok(!fulfilled.stdout.includes(kGroqPoolKey), 'fulfill output does not contain the key');
    assert.ok(!fulfilled.stderr.includes(kGroqPoolKey), 'fulfill stderr does not contain the key');
    const done = JSON.parse(fulfilled.stdout);
    assert.equal(done.id, request.id);
    assert.equal(done.status, 'fulfilled');
    assert.match(done.credential_id, /^cred_/);
    assert.equal(done.reason, null);

    const pool = await cliJson(ks, ['pool', 'list', '--provider', 'groq']);
    const credential = pool.find((item) => item.id === done.credential_id);
    assert.ok(credential, 'the dedicated credential is in the groq pool');
    assert.equal(credential.scope, 'dedicated');
    assert.equal(credential.project_id, project.id);
    assert.equal(credential.label, 'groq for flow');
    assert.equal(credential.rpm_limit, 30);
    assert.equal(credential.key, maskOf(kGroqPoolKey));

    // The project had not configured groq, so fulfilment enabled it in marketplace mode.
    const provider = await ks.api('GET', `/api/v1/projects/${project.id}/providers/groq`);
    assert.equal(provider.json?.mode, 'marketplace');
    assert.equal(provider.json?.status, 'enabled');

    const agent = await cliJson(ks, ['agent', 'create', 'groq-agent', '--project', project.id]);
    const token = await mintToken(ks, agent.id);
    mock.clear();
    const response = await proxyRequest(ks, {
      path: '/v1/groq/openai/v1/chat/completions',
      token: token.token,
      json: { model: 'llama-3.1-8b-instant', messages: [{ role: 'user', content: 'hello' }] },
    });
    assert.equal(response.status, 200, `the groq request succeeds: ${response.text}`);
    assert.equal(mock.requests.length, 1);
    assert.equal(mock.requests[0].headers.authorization, `Bearer ${kGroqPoolKey}`, 'the dedicated key was injected');
    const rows = await waitForLedger(ks, project.id, 1);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].mode, 'marketplace');
    assert.equal(rows[0].credential_id, done.credential_id);

    const again = await cliFails(ks, ['concierge', 'fulfill', request.id], 1, { input: 'gsk_pool_GROQ0123456789abcdef0002\n' });
    assert.match(again.stderr, /is already fulfilled; only open requests can change \(conflict\)/);
    const api = await ks.api('POST', `/api/v1/concierge/${request.id}/fulfill`, { api_key: 'gsk_pool_GROQ0123456789abcdef0002' });
    assert.equal(api.status, 409);
    assert.equal(api.json?.error?.code, 'conflict');
    const rejected = await ks.api('POST', `/api/v1/concierge/${request.id}/reject`, { reason: 'too late' });
    assert.equal(rejected.status, 409);
    assert.equal(rejected.json?.error?.code, 'conflict');
  });

  test('reject end to end', async () => {
    const project = await cliJson(ks, ['project', 'create', 'concierge-reject']);
    const request = await cliJson(ks, ['concierge', 'request', 'pinecone', '--project', project.id]);
    assert.equal(request.note, null, 'a request without --note has note null');

    const rejected = await cliJson(ks, ['concierge', 'reject', request.id, '--reason', 'no capacity this month']);
    assert.equal(rejected.id, request.id);
    assert.equal(rejected.status, 'rejected');
    assert.equal(rejected.reason, 'no capacity this month');
    assert.equal(rejected.credential_id, null);

    const listed = await cliJson(ks, ['concierge', 'list', '--project', project.id, '--status', 'rejected']);
    assert.deepEqual(listed.map((item) => item.id), [request.id]);
    const open = await cliJson(ks, ['concierge', 'list', '--project', project.id, '--status', 'open']);
    assert.deepEqual(open, []);

    const again = await cliFails(ks, ['concierge', 'reject', request.id, '--reason', 'again'], 1);
    assert.match(again.stderr, /is already rejected; only open requests can change \(conflict\)/);
    const fulfil = await ks.api('POST', `/api/v1/concierge/${request.id}/fulfill`, { api_key: 'pcsk_pool_0123456789abcdef0001' });
    assert.equal(fulfil.status, 409);
    assert.equal(fulfil.json?.error?.code, 'conflict');
    const pool = await cliJson(ks, ['pool', 'list', '--provider', 'pinecone']);
    assert.deepEqual(pool, [], 'a rejected request provisions nothing');

    // A rejected request does not block a new one.
    const second = await cliJson(ks, ['concierge', 'request', 'pinecone', '--project', project.id]);
    assert.equal(second.status, 'open');
    assert.notEqual(second.id, request.id);
  });

  test('second open request for a provider conflicts', async () => {
    const project = await cliJson(ks, ['project', 'create', 'concierge-twice']);
    const first = await cliJson(ks, ['concierge', 'request', 'twilio', '--project', project.id]);
    const second = await ks.api('POST', `/api/v1/projects/${project.id}/concierge`, { provider: 'twilio' });
    assert.equal(second.status, 409, `a second open request is 409: ${second.text}`);
    assert.equal(second.json?.error?.code, 'conflict');
    assert.ok(second.json.error.message.includes(first.id), 'the message names the open request');
    const cli = await cliFails(ks, ['concierge', 'request', 'twilio', '--project', project.id], 1);
    assert.match(cli.stderr, /\(conflict\)/);
  });

  test('only concierge providers take requests', async () => {
    const project = await cliJson(ks, ['project', 'create', 'concierge-tiers']);
    for (const provider of ['openai', 'stripe', 'neon']) {
      const response = await ks.api('POST', `/api/v1/projects/${project.id}/concierge`, { provider });
      assert.equal(response.status, 409, `${provider} is 409: ${response.text}`);
      assert.equal(response.json?.error?.code, 'conflict');
      assert.match(response.json.error.message, /only for providers with availability concierge/);
    }
    const unknown = await ks.api('POST', `/api/v1/projects/${project.id}/concierge`, { provider: 'nope' });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json?.error?.code, 'invalid_request');
    const missing = await ks.api('POST', '/api/v1/projects/prj_000000000000000000000000/concierge', { provider: 'groq' });
    assert.equal(missing.status, 404);
    assert.equal(missing.json?.error?.code, 'not_found');
  });

  test('members file requests, only operators decide', async () => {
    const project = await cliJson(ks, ['project', 'create', 'concierge-members']);
    const member = await createAdminKey(ks, { name: 'member', role: 'member' });
    const env = { withAdminKey: false, env: { KEYSTORE_ADMIN_KEY: member.key } };

    const request = await cliJson(ks, ['concierge', 'request', 'groq', '--project', project.id], env);
    assert.equal(request.status, 'open');
    const own = await cliJson(ks, ['concierge', 'list', '--project', project.id], env);
    assert.deepEqual(own.map((item) => item.id), [request.id]);
    const single = await apiWithKey(ks, member.key, 'GET', `/api/v1/concierge/${request.id}`);
    assert.equal(single.status, 200);
    assert.equal(single.json?.id, request.id);

    const queue = await cliFails(ks, ['concierge', 'list'], 1, env);
    assert.match(queue.stderr, /\(forbidden\)/);
    const fulfil = await cliFails(ks, ['concierge', 'fulfill', request.id], 1, { ...env, input: `${kGroqPoolKey}\n` });
    assert.match(fulfil.stderr, /\(forbidden\)/);
    assert.ok(!fulfil.stderr.includes(kGroqPoolKey), 'stderr does not contain the key');
    const reject = await apiWithKey(ks, member.key, 'POST', `/api/v1/concierge/${request.id}/reject`, { reason: 'no' });
    assert.equal(reject.status, 403);
    assert.equal(reject.json?.error?.code, 'forbidden');

    const still = await ks.api('GET', `/api/v1/concierge/${request.id}`);
    assert.equal(still.json?.status, 'open', 'the refused calls changed nothing');
  });

  test('concierge usage errors exit 2', async () => {
    const cases = [
      ['concierge', 'request', 'groq'],
      ['concierge', 'reject', 'cnc_000000000000000000000000'],
      ['concierge', 'list', '--status', 'closed'],
      ['concierge', 'fulfill'],
      ['concierge', 'fulfill', 'cnc_000000000000000000000000', '--rpm', '1000001'],
      ['concierge'],
    ];
    for (const args of cases) {
      await cliFails(ks, args, 2, { input: `${kGroqPoolKey}\n` });
    }
    const argument = await cliFails(ks, ['concierge', 'fulfill', 'cnc_000000000000000000000000', kGroqPoolKey], 2, { input: '' });
    assert.ok(!argument.stderr.includes(kGroqPoolKey), 'stderr does not repeat a key given as an argument');
  });
});
