// An upstream may send interim 1xx responses (103 Early Hints) before the final one. The proxy
// must relay the final response, and a pooled upstream connection must never hand one
// request's response to the next request, which may belong to another project.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startRecordingServer, sendJson, bearerCredential } from '../mocks/recorder.mjs';
import { proxyRequest } from '../harness/http.mjs';
import { provision, startKeystore } from '../harness/keystore.mjs';

const kKeyA = 'sk-test-OPENAI-A-0001';
const kKeyB = 'sk-test-OPENAI-B-0001';

describe('interim responses', () => {
  let mock;
  let ks;
  let projectA;
  let projectB;

  before(async () => {
    mock = await startRecordingServer({
      name: 'openai-early-hints',
      credentialOf: bearerCredential,
      errorBody(status, message) {
        return { error: { message, type: 'invalid_request_error', code: status } };
      },
      handle({ req, res }) {
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        sendJson(res, 200, { owner: bearerCredential(req) === kKeyA ? 'project-a' : 'project-b' });
      },
    });
    ks = await startKeystore({ upstreams: { openai: mock.url }, extraArgs: ['--threads', '1'] });
    projectA = await provision(ks, { project: 'tenant-a', keys: { openai: kKeyA } });
    projectB = await provision(ks, { project: 'tenant-b', keys: { openai: kKeyB } });
  });

  after(async () => {
    await ks?.close();
    await mock?.close();
  });

  test('final response follows early hints', async () => {
    const response = await proxyRequest(ks, {
      path: '/v1/openai/v1/chat/completions',
      token: projectA.token,
      json: { model: 'gpt-4o-mini', messages: [] },
    });
    assert.equal(response.status, 200, `final status relayed: ${response.text}`);
    assert.deepEqual(JSON.parse(response.text), { owner: 'project-a' });
  });

  test('next project gets its own response', async () => {
    for (let round = 0; round < 5; ++round) {
      for (const [project, owner] of [[projectA, 'project-a'], [projectB, 'project-b']]) {
        const response = await proxyRequest(ks, {
          path: '/v1/openai/v1/chat/completions',
          token: project.token,
          json: { model: 'gpt-4o-mini', messages: [] },
        });
        assert.equal(response.status, 200, `round ${round}, ${owner}: ${response.text}`);
        assert.deepEqual(JSON.parse(response.text), { owner }, `round ${round}: ${owner} gets its own body`);
      }
    }
  });
});
