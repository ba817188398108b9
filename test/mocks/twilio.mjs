// Mock Twilio upstream: the 2010-04-01 Messages resource (create, fetch, list) in the wire
// format of api.twilio.com. Requests are form-encoded. The credential is HTTP Basic with the
// account SID as user name and the auth token as password.
//
// The mock returns 404 for a path that names another account than the authenticated one, so a
// path the proxy failed to rewrite fails the request.

import { randomBytes } from 'node:crypto';

import { basicCredential, parseFormBody, sendJson, startRecordingServer } from './recorder.mjs';

const kApiVersion = '2010-04-01';
const kAccountsPath = /^\/2010-04-01\/Accounts\/([^/]+)(\/.*)?$/;
const kSentAt = 'Thu, 01 Jan 2026 00:00:00 +0000';

// Twilio's numeric error codes for the statuses the mock returns.
const kErrorCodes = { 400: 21602, 401: 20003, 404: 20404, 405: 20004, 429: 20429 };

function errorBody(status, message) {
  const code = kErrorCodes[status] ?? 20500;
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

// The credential as `<account SID>:<auth token>`, so that expectedCredential compares both.
function credentialOf(req) {
  const basic = basicCredential(req);
  if (basic === null || basic.username.length === 0 || basic.password.length === 0) {
    return null;
  }
  return `${basic.username}:${basic.password}`;
}

function messageSid() {
  return `SM${randomBytes(16).toString('hex')}`;
}

function messageResource(accountSid, sid, fields) {
  const uri = `/${kApiVersion}/Accounts/${accountSid}/Messages/${sid}.json`;
  return {
    account_sid: accountSid,
    api_version: kApiVersion,
    body: fields.Body ?? '',
    date_created: kSentAt,
    date_sent: null,
    date_updated: kSentAt,
    direction: 'outbound-api',
    error_code: null,
    error_message: null,
    from: fields.From ?? null,
    messaging_service_sid: fields.MessagingServiceSid ?? null,
    num_media: '0',
    num_segments: '1',
    price: null,
    price_unit: 'USD',
    sid,
    status: 'queued',
    subresource_uris: { media: uri.replace(/\.json$/, '/Media.json') },
    to: fields.To,
    uri,
  };
}

function createMessage({ res, json, mock }, accountSid) {
  if (json === undefined || typeof json.To !== 'string' || json.To.length === 0) {
    sendJson(res, 400, errorBody(400, "A 'To' phone number is required."));
    return;
  }
  if (json.From === undefined && json.MessagingServiceSid === undefined) {
    sendJson(res, 400, { ...errorBody(400, "A 'From' phone number is required."), code: 21603 });
    return;
  }
  if (json.Body === undefined && json.MediaUrl === undefined && json.ContentSid === undefined) {
    sendJson(res, 400, { ...errorBody(400, "A text message body or media urls must be specified."), code: 21619 });
    return;
  }
  const sid = messageSid();
  const message = messageResource(accountSid, sid, json);
  mock.messages.push(message);
  sendJson(res, 201, message, { 'twilio-request-id': `RQ${randomBytes(16).toString('hex')}` });
}

function listMessages({ res, mock }, accountSid) {
  const uri = `/${kApiVersion}/Accounts/${accountSid}/Messages.json?PageSize=50&Page=0`;
  const messages = mock.messages.filter((message) => message.account_sid === accountSid);
  sendJson(res, 200, {
    end: Math.max(messages.length - 1, 0),
    first_page_uri: uri,
    next_page_uri: null,
    page: 0,
    page_size: 50,
    previous_page_uri: null,
    messages,
    start: 0,
    uri,
  });
}

function handle(ctx) {
  const { req, res, mock } = ctx;
  const path = new URL(req.url, 'http://mock').pathname;
  const match = kAccountsPath.exec(path);
  if (match === null) {
    sendJson(res, 404, errorBody(404, `The requested resource ${path} was not found`));
    return;
  }

  const [, accountSid, rest = ''] = match;
  if (accountSid !== basicCredential(req).username) {
    sendJson(res, 404, errorBody(404, `The requested resource ${path} was not found`));
    return;
  }

  if (rest === '/Messages.json' && req.method === 'POST') {
    createMessage(ctx, accountSid);
    return;
  }
  if (rest === '/Messages.json' && req.method === 'GET') {
    listMessages(ctx, accountSid);
    return;
  }
  const single = /^\/Messages\/(SM[0-9a-f]{32})\.json$/.exec(rest);
  if (single !== null && req.method === 'GET') {
    const message = mock.messages.find((item) => item.sid === single[1] && item.account_sid === accountSid);
    if (message === undefined) {
      sendJson(res, 404, errorBody(404, `The requested resource ${path} was not found`));
      return;
    }
    sendJson(res, 200, message);
    return;
  }
  sendJson(res, 404, errorBody(404, `The requested resource ${path} was not found`));
}

// Starts the mock; see startRecordingServer for options and the returned handle. The
// expectedCredential option is `<account SID>:<auth token>`. The handle also has messages,
// the message resources it created, in order.
export async function startMock(options = {}) {
  const mock = await startRecordingServer(
    { name: 'twilio', credentialOf, errorBody, handle, parseBody: parseFormBody },
    options,
  );
  const clear = mock.clear;
  mock.messages = [];
  mock.clear = () => {
    clear();
    mock.messages.length = 0;
  };
  return mock;
}
