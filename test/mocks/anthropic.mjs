// Mock Anthropic upstream: POST /v1/messages as JSON and as SSE (message_start,
// content_block_start, ping, content_block_delta, content_block_stop, message_delta,
// message_stop), in the wire format of api.anthropic.com. The credential is `x-api-key`.

import { sendJson, sleep, startRecordingServer } from './recorder.mjs';

export const kMessageReplyParts = ['Hello', ' from', ' the', ' mock', ' Anthropic', ' upstream.'];
export const kMessageReply = kMessageReplyParts.join('');
export const kInputTokens = 12;
export const kOutputTokens = 6;

function errorBody(status, message) {
  const types = {
    400: 'invalid_request_error',
    401: 'authentication_error',
    403: 'permission_error',
    404: 'not_found_error',
    413: 'request_too_large',
    429: 'rate_limit_error',
    529: 'overloaded_error',
  };
  return { type: 'error', error: { type: types[status] ?? 'api_error', message } };
}

function credentialOf(req) {
  const value = req.headers['x-api-key'];
  return typeof value === 'string' && value.length > 0 ? value : null;
}

function message(model) {
  return {
    id: 'msg_mock0001',
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text: kMessageReply }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: kInputTokens, output_tokens: kOutputTokens },
  };
}

function sseEvent(name, value) {
  return `event: ${name}\ndata: ${JSON.stringify(value)}\n\n`;
}

function streamParts(behavior) {
  if (behavior.sse === undefined) {
    return kMessageReplyParts;
  }
  return Array.from({ length: behavior.sse.events }, (_, i) => `event-${i} `);
}

async function streamMessage({ res, json, mock, behavior }) {
  const model = json.model ?? 'claude-sonnet-4-5';
  const intervalMs = behavior.sse?.intervalMs ?? 0;
  res.statusCode = 200;
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache');
  res.flushHeaders();

  const start = { ...message(model), content: [], stop_reason: null };
  start.usage = { input_tokens: kInputTokens, output_tokens: 1 };
  mock.writeEvent(res, sseEvent('message_start', { type: 'message_start', message: start }));
  mock.writeEvent(
    res,
    sseEvent('content_block_start', {
      type: 'content_block_start',
      index: 0,
      content_block: { type: 'text', text: '' },
    }),
  );
  mock.writeEvent(res, sseEvent('ping', { type: 'ping' }));
  for (const part of streamParts(behavior)) {
    if (intervalMs > 0) {
      await sleep(intervalMs);
    }
    if (res.destroyed) {
      return;
    }
    mock.writeEvent(
      res,
      sseEvent('content_block_delta', {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'text_delta', text: part },
      }),
    );
  }
  mock.writeEvent(res, sseEvent('content_block_stop', { type: 'content_block_stop', index: 0 }));
  mock.writeEvent(
    res,
    sseEvent('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: kOutputTokens },
    }),
  );
  mock.writeEvent(res, sseEvent('message_stop', { type: 'message_stop' }));
  res.end();
}

async function handle(ctx) {
  const { req, res, json } = ctx;
  const path = new URL(req.url, 'http://mock').pathname;

  if (req.method === 'POST' && path === '/v1/messages') {
    if (json === undefined || typeof json !== 'object' || json === null) {
      sendJson(res, 400, errorBody(400, 'a JSON object body is required'));
      return;
    }
    if (json.stream === true) {
      await streamMessage(ctx);
      return;
    }
    sendJson(res, 200, message(json.model ?? 'claude-sonnet-4-5'));
    return;
  }
  if (req.method === 'GET' && path === '/v1/models') {
    sendJson(res, 200, {
      data: [{ type: 'model', id: 'claude-sonnet-4-5', display_name: 'Claude Sonnet 4.5' }],
      has_more: false,
      first_id: 'claude-sonnet-4-5',
      last_id: 'claude-sonnet-4-5',
    });
    return;
  }
  sendJson(res, 404, errorBody(404, `Not found: ${req.method} ${path}`));
}

// Starts the mock; see startRecordingServer for options and the returned handle.
export function startMock(options = {}) {
  return startRecordingServer({ name: 'anthropic', credentialOf, errorBody, handle }, options);
}
