// `provider enable` and `provider disable` against each availability tier: openai (both),
// stripe (byok), neon (marketplace) and groq (concierge). Also BYOK keys with several fields
// read from standard input, GET /catalog, and a mode switch that changes the injected key on
// the next request.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startMock as startOpenAi } from '../mocks/openai.mjs';
import { proxyRequest } from '../harness/http.mjs';
import { cliFails, cliJson, maskOf, mintToken, startKeystore, waitForLedger } from '../harness/keystore.mjs';

const kByokKey = 'sk-byok-OPENAI-0123456789abcdef0001';
const kPoolKey = 'sk-pool-OPENAI-0123456789abcdef0002';
const kStripeKey = 'sk_test_STRIPE0123456789abcdef01';
const kGroqKey = 'gsk_byok_GROQ0123456789abcdef0001';
const kAccountSid = 'AC0123456789abcdef0123456789abcdef';
const kAuthToken = 'twilio-auth-token-0123456789abcdef';

describe('provider modes by tier', () => {
  let mock;
  let ks;

  before(async () => {
    mock = await startOpenAi();
    ks = await startKeystore({ upstreams: { openai: mock.url } });
  });

  after(async () => {
    await ks?.close();
    await mock?.close();
  });

  async function newProject(name) {
    const project = await cliJson(ks, ['project', 'create', name]);
    return project.id;
  }

  function enable(project, provider, mode) {
    return ks.cli(['provider', 'enable', provider, '--project', project, '--mode', mode, '--json']);
  }

  test('openai (both) takes either mode', async () => {
    const project = await newProject('modes-both');
    const byok = await cliJson(ks, ['provider', 'enable', 'openai', '--project', project, '--mode', 'byok']);
    assert.equal(byok.provider, 'openai');
    assert.equal(byok.availability, 'both');
    assert.equal(byok.mode, 'byok');
    assert.equal(byok.status, 'enabled');

    const marketplace = await cliJson(ks, ['provider', 'enable', 'openai', '--project', project, '--mode', 'marketplace']);
    assert.equal(marketplace.mode, 'marketplace');
    assert.equal(marketplace.status, 'enabled');

    const disabled = await cliJson(ks, ['provider', 'disable', 'openai', '--project', project]);
    assert.equal(disabled.status, 'disabled');
    assert.equal(disabled.mode, 'marketplace', 'disabling keeps the mode');

    const text = await ks.cli(['provider', 'enable', 'openai', '--project', project, '--mode', 'byok']);
    assert.equal(text.code, 0, `provider enable exits 0; stderr: ${text.stderr}`);
    assert.equal(text.stdout, `openai in project ${project} is now enabled (mode byok, key -)\n`);
  });

  test('stripe (byok) refuses marketplace', async () => {
    const project = await newProject('modes-byok');
    const refused = await enable(project, 'stripe', 'marketplace');
    assert.equal(refused.code, 1, `marketplace on a byok provider exits 1; stderr: ${refused.stderr}`);
    assert.match(refused.stderr, /provider stripe has availability byok/);
    assert.match(refused.stderr, /\(conflict\)/);

    const api = await ks.api('PATCH', `/api/v1/projects/${project}/providers/stripe`, { mode: 'marketplace' });
    assert.equal(api.status, 409);
    assert.equal(api.json?.error?.code, 'conflict');
    const unchanged = await ks.api('GET', `/api/v1/projects/${project}/providers/stripe`);
    assert.equal(unchanged.json?.status, 'not_configured', 'the refused switch stored nothing');

    const key = await ks.cli(['provider', 'set-key', 'stripe', '--project', project, '--json'], { input: `${kStripeKey}\n` });
    assert.equal(key.code, 0, `set-key exits 0; stderr: ${key.stderr}`);
    assert.equal(JSON.parse(key.stdout).key, maskOf(kStripeKey));
    const byok = await cliJson(ks, ['provider', 'enable', 'stripe', '--project', project, '--mode', 'byok']);
    assert.equal(byok.mode, 'byok');
    assert.equal(byok.status, 'enabled');
    const disabled = await cliJson(ks, ['provider', 'disable', 'stripe', '--project', project]);
    assert.equal(disabled.status, 'disabled');
  });

  test('neon (marketplace) refuses BYOK', async () => {
    const project = await newProject('modes-marketplace');
    const refused = await enable(project, 'neon', 'byok');
    assert.equal(refused.code, 1, `byok on a marketplace provider exits 1; stderr: ${refused.stderr}`);
    assert.match(refused.stderr, /provider neon has availability marketplace/);
    assert.match(refused.stderr, /\(conflict\)/);

    const key = await cliFails(ks, ['provider', 'set-key', 'neon', '--project', project], 1, {
      input: 'napi_test_0123456789abcdef0123456789\n',
    });
    assert.match(key.stderr, /has availability marketplace: it takes no BYOK key; use mode marketplace/);
    assert.match(key.stderr, /\(conflict\)/);
    assert.ok(!key.stderr.includes('napi_test_0123456789abcdef0123456789'), 'stderr does not contain the key');

    const marketplace = await cliJson(ks, ['provider', 'enable', 'neon', '--project', project, '--mode', 'marketplace']);
    assert.equal(marketplace.availability, 'marketplace');
    assert.equal(marketplace.mode, 'marketplace');
    assert.equal(marketplace.status, 'enabled');
    assert.equal(marketplace.key, null);
    const disabled = await cliJson(ks, ['provider', 'disable', 'neon', '--project', project]);
    assert.equal(disabled.status, 'disabled');
    assert.equal(disabled.mode, 'marketplace');
  });

  test('groq (concierge) needs a fulfilled request for marketplace', async () => {
    const project = await newProject('modes-concierge');
    const refused = await enable(project, 'groq', 'marketplace');
    assert.equal(refused.code, 1, `marketplace before fulfilment exits 1; stderr: ${refused.stderr}`);
    assert.match(refused.stderr, /provider groq has availability concierge/);
    assert.match(refused.stderr, /\(conflict\)/);

    await cliJson(ks, ['provider', 'set-key', 'groq', '--project', project], { input: `${kGroqKey}\n` });
    const byok = await cliJson(ks, ['provider', 'enable', 'groq', '--project', project, '--mode', 'byok']);
    assert.equal(byok.mode, 'byok', 'BYOK needs no concierge request');
    assert.equal(byok.key, maskOf(kGroqKey));

    const request = await cliJson(ks, ['concierge', 'request', 'groq', '--project', project]);
    assert.equal((await enable(project, 'groq', 'marketplace')).code, 1, 'an open request is not enough');
    await cliJson(ks, ['concierge', 'fulfill', request.id], { input: 'gsk_pool_GROQ0123456789abcdef0002\n' });

    // The project had chosen BYOK, so fulfilment left that choice alone.
    const kept = await ks.api('GET', `/api/v1/projects/${project}/providers/groq`);
    assert.equal(kept.json?.mode, 'byok');
    const marketplace = await cliJson(ks, ['provider', 'enable', 'groq', '--project', project, '--mode', 'marketplace']);
    assert.equal(marketplace.mode, 'marketplace');
    assert.equal(marketplace.status, 'enabled');
  });

  test('set-key reads a credential with several fields', async () => {
    const project = await newProject('modes-fields');
    const input = `${JSON.stringify({ account_sid: kAccountSid, auth_token: kAuthToken })}\n`;
    const result = await ks.cli(['provider', 'set-key', 'twilio', '--project', project, '--json'], { input });
    assert.equal(result.code, 0, `set-key exits 0; stderr: ${result.stderr}`);
    assert.ok(!result.stdout.includes(kAuthToken), 'output does not contain the auth token');
    const entry = JSON.parse(result.stdout);
    assert.equal(entry.key, maskOf(kAuthToken), 'the mask is of the auth token');
    assert.match(entry.key_fingerprint, /^sha256:[0-9a-f]{16}$/);
    assert.equal(entry.mode, 'byok');

    const plain = await cliFails(ks, ['provider', 'set-key', 'twilio', '--project', project], 1, { input: `${kAuthToken}\n` });
    assert.match(plain.stderr, /needs a credential with the fields account_sid, auth_token/);
    assert.ok(!plain.stderr.includes(kAuthToken), 'stderr does not contain the token');

    const missing = await cliFails(ks, ['provider', 'set-key', 'twilio', '--project', project], 1, {
      input: JSON.stringify({ account_sid: kAccountSid }),
    });
    assert.match(missing.stderr, /"credential.auth_token" is required/);

    const broken = await cliFails(ks, ['provider', 'set-key', 'twilio', '--project', project], 2, { input: '{"account_sid": ' });
    assert.match(broken.stderr, /is not a JSON object/);

    const object = await cliFails(ks, ['provider', 'set-key', 'openai', '--project', project], 1, {
      input: JSON.stringify({ api_key: kByokKey }),
    });
    assert.match(object.stderr, /provider openai takes one key/);
  });

  test('catalog lists tiers and credential fields', async () => {
    const response = await ks.api('GET', '/api/v1/catalog');
    assert.equal(response.status, 200);
    const byId = Object.fromEntries(response.json.data.map((entry) => [entry.id, entry]));
    assert.deepEqual(byId.twilio.credential_fields, ['account_sid', 'auth_token']);
    assert.equal(byId.twilio.auth_scheme, 'basic');
    assert.equal(byId.twilio.availability, 'concierge');
    assert.deepEqual(byId.openai.credential_fields, []);
    assert.equal(byId.openai.auth_scheme, 'bearer');
    assert.equal(byId.openai.availability, 'both');
    assert.equal(byId.stripe.availability, 'byok');
    assert.equal(byId.neon.availability, 'marketplace');
    assert.equal(byId.groq.availability, 'concierge');
    for (const entry of response.json.data) {
      assert.deepEqual(
        Object.keys(entry).sort(),
        ['auth_scheme', 'availability', 'category', 'credential_fields', 'display_name', 'id', 'metering'],
        `catalog entry ${entry.id} has exactly the documented fields`,
      );
    }
  });

  test('switching mode changes the next request', async () => {
    const project = await newProject('modes-switch');
    await cliJson(ks, ['provider', 'set-key', 'openai', '--project', project], { input: `${kByokKey}\n` });
    const pool = await cliJson(ks, ['pool', 'add', 'openai', '--shared'], { input: `${kPoolKey}\n` });
    const agent = await cliJson(ks, ['agent', 'create', 'switcher', '--project', project]);
    const token = await mintToken(ks, agent.id);
    const send = () =>
      proxyRequest(ks, {
        path: '/v1/openai/v1/chat/completions',
        token: token.token,
        json: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
      });

    mock.clear();
    assert.equal((await send()).status, 200);
    assert.equal(mock.requests.at(-1).headers.authorization, `Bearer ${kByokKey}`, 'BYOK mode injects the project key');

    await cliJson(ks, ['provider', 'enable', 'openai', '--project', project, '--mode', 'marketplace']);
    assert.equal((await send()).status, 200);
    assert.equal(mock.requests.at(-1).headers.authorization, `Bearer ${kPoolKey}`, 'marketplace mode injects the pool key');

    const rows = await waitForLedger(ks, project, 2);
    const modes = rows.map((row) => row.mode).sort();
    assert.deepEqual(modes, ['byok', 'marketplace']);
    const marketplaceRow = rows.find((row) => row.mode === 'marketplace');
    assert.equal(marketplaceRow.credential_id, pool.id);

    await cliJson(ks, ['provider', 'disable', 'openai', '--project', project]);
    mock.clear();
    const refused = await send();
    assert.ok(refused.status >= 400, `a disabled provider is refused: ${refused.status}`);
    assert.equal(mock.requests.length, 0, 'nothing reached the upstream');
    await cliJson(ks, ['pool', 'disable', pool.id]);
  });

  test('provider usage errors exit 2', async () => {
    const cases = [
      ['provider', 'enable', 'openai', '--project', 'p'],
      ['provider', 'enable', 'openai', '--project', 'p', '--mode', 'free'],
      ['provider', 'enable', '--project', 'p', '--mode', 'byok'],
      ['provider', 'disable', 'openai'],
    ];
    for (const args of cases) {
      await cliFails(ks, args, 2);
    }
    const pasted = 'sk-Pasted-Key-0123456789ABCDEF';
    const key = await cliFails(ks, ['provider', 'enable', pasted, '--project', 'p', '--mode', 'byok'], 2);
    assert.ok(!key.stderr.includes(pasted), 'a key typed in place of the provider is not repeated');
  });
});
