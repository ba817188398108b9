// Mock Resend upstream: POST /emails answers {"id": "<uuid>"} as api.resend.com does. The
// credential is `Authorization: Bearer <key>`.

import { randomUUID } from 'node:crypto';

import { bearerCredential, sendJson, startRecordingServer } from './recorder.mjs';

function errorBody(status, message) {
  const names = { 400: 'validation_error', 401: 'missing_api_key', 403: 'invalid_api_key', 422: 'validation_error', 429: 'rate_limit_exceeded' };
  return { statusCode: status, name: names[status] ?? 'application_error', message };
}

function missingEmailField(json) {
  for (const field of ['from', 'to', 'subject']) {
    if (json[field] === undefined) {
      return field;
    }
  }
  return undefined;
}

function handle({ req, res, json, mock }) {
  const path = new URL(req.url, 'http://mock').pathname;

  if (req.method === 'POST' && path === '/emails') {
    if (json === undefined || typeof json !== 'object' || json === null) {
      sendJson(res, 422, errorBody(422, 'a JSON object body is required'));
      return;
    }
    const missing = missingEmailField(json);
    if (missing !== undefined) {
      sendJson(res, 422, errorBody(422, `Missing \`${missing}\` field.`));
      return;
    }
    const id = randomUUID();
    mock.sentEmailIds.push(id);
    sendJson(res, 200, { id });
    return;
  }
  sendJson(res, 404, errorBody(404, 'The requested endpoint does not exist.'));
}

// Starts the mock; see startRecordingServer for options and the returned handle. The handle
// also has sentEmailIds, the ids it answered in order.
export async function startMock(options = {}) {
  const mock = await startRecordingServer(
    { name: 'resend', credentialOf: bearerCredential, errorBody, handle },
    options,
  );
  mock.sentEmailIds = [];
  return mock;
}
