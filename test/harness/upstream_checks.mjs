// Assertions about what a mock upstream received through the proxy: the single expected
// credential and no trace of the agent token.

import assert from 'node:assert/strict';

import { rawHeaderValues } from '../mocks/recorder.mjs';
import { findSecrets } from './secrets.mjs';

const kCredentialHeaders = ['authorization', 'x-api-key', 'api-key', 'proxy-authorization', 'cookie'];

// Asserts that `record` carries exactly one credential header, `name: value`, and none of the
// other credential headers.
export function assertSingleCredential(record, name, value) {
  for (const header of kCredentialHeaders) {
    const values = rawHeaderValues(record, header);
    if (header === name) {
      assert.deepEqual(values, [value], `upstream received exactly one ${name} with the provider key`);
    } else {
      assert.deepEqual(values, [], `upstream received no ${header} header`);
    }
  }
}

// Asserts that the agent token (or its hex part) appears nowhere in the URL, the header names
// and values, or the body of `record`.
export function assertNoToken(record, token) {
  const hex = token.slice('ks_'.length);
  assert.ok(!record.url.includes(hex), 'the agent token is not in the upstream URL');
  const headers = record.rawHeaders.join('\n');
  assert.ok(!headers.includes(hex), 'the agent token is not in any upstream header');
  assert.ok(!record.body.includes(Buffer.from(hex)), 'the agent token is not in the upstream body');
}

// Asserts that the agent token appears in no form (plaintext, percent-encoded, base64 at any
// offset, so also inside a Basic header) in the URL, headers or body of `record`.
export function assertNoTokenInAnyForm(record, token) {
  const hits = findSecrets(
    Buffer.concat([Buffer.from(`${record.url}\n${record.rawHeaders.join('\n')}\n`), record.body]),
    { 'agent token': token },
  );
  assert.deepEqual(hits, [], 'the agent token reaches the upstream in no form');
}

// Asserts for every request in `requests` what assertSingleCredential and
// assertNoTokenInAnyForm assert for one.
export function assertEveryRequestClean(requests, name, value, token) {
  assert.ok(requests.length > 0, 'the upstream received at least one request');
  for (const record of requests) {
    assertSingleCredential(record, name, value);
    assertNoTokenInAnyForm(record, token);
  }
}
