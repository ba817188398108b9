// Mock Groq upstream: the OpenAI-compatible chat completions endpoint under /openai/v1, as JSON
// and as SSE, and the model list, in the wire format of api.groq.com. The credential is
// `Authorization: Bearer <key>`.
//
// Groq reports a streamed request's usage in `x_groq.usage` of the chunk that carries the
// finish reason. With `stream_options.include_usage` the mock also sends the OpenAI-style
// chunk with empty `choices` and a top-level `usage` before [DONE].
// NOTE: that second form follows the OpenAI-compatible contract; it was not checked against the
// live api.groq.com.

import { bearerCredential, sendJson, sleep, startRecordingServer } from './recorder.mjs';

export const kGroqReplyParts = ['Hello', ' from', ' the', ' mock', ' Groq', ' upstream.'];
export const kGroqReply = kGroqReplyParts.join('');
export const kGroqUsage = Object.freeze({
  queue_time: 0.0125,
  prompt_tokens: 14,
  prompt_time: 0.0021,
  completion_tokens: 6,
  completion_time: 0.0048,
  total_tokens: 20,
  total_time: 0.0069,
});
export const kGroqRequestId = 'req_01mockgroq0000000000000001';

const kCreated = 1767225600;
const kCompletionId = 'chatcmpl-mockgroq0001';
const kFingerprint = 'fp_mockgroq';

function errorBody(status, message) {
  const codes = { 401: 'invalid_api_key', 404: 'unknown_url', 429: 'rate_limit_exceeded' };
  const type = status >= 500 ? 'internal_server_error' : 'invalid_request_error';
  return { error: { message, type, code: codes[status] ?? null } };
}

function chatCompletion(model) {
  return {
    id: kCompletionId,
    object: 'chat.completion',
    created: kCreated,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: kGroqReply },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { ...kGroqUsage },
    usage_breakdown: null,
    system_fingerprint: kFingerprint,
    x_groq: { id: kGroqRequestId },
    service_tier: 'on_demand',
  };
}

function chunk(model, delta, finishReason, xGroq) {
  const value = {
    id: kCompletionId,
    object: 'chat.completion.chunk',
    created: kCreated,
    model,
    system_fingerprint: kFingerprint,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
  if (xGroq !== undefined) {
    value.x_groq = xGroq;
  }
  return value;
}

function sseData(value) {
  return `data: ${JSON.stringify(value)}\n\n`;
}

function streamParts(behavior) {
  if (behavior.sse === undefined) {
    return kGroqReplyParts;
  }
  return Array.from({ length: behavior.sse.events }, (_, i) => `event-${i} `);
}

async function streamChat({ res, json, mock, behavior }) {
  const model = json.model ?? 'llama-3.3-70b-versatile';
  const includeUsage = json.stream_options?.include_usage === true;
  const intervalMs = behavior.sse?.intervalMs ?? 0;
  res.statusCode = 200;
  res.setHeader('content-type', 'text/event-stream');
  res.setHeader('cache-control', 'no-cache');
  res.setHeader('x-groq-region', 'mock');
  res.flushHeaders();

  mock.writeEvent(res, sseData(chunk(model, { role: 'assistant', content: '' }, null, { id: kGroqRequestId })));
  for (const part of streamParts(behavior)) {
    if (intervalMs > 0) {
      await sleep(intervalMs);
    }
    if (res.destroyed) {
      return;
    }
    mock.writeEvent(res, sseData(chunk(model, { content: part }, null)));
  }
  mock.writeEvent(res, sseData(chunk(model, {}, 'stop', { id: kGroqRequestId, usage: { ...kGroqUsage } })));
  if (includeUsage) {
    mock.writeEvent(
      res,
      sseData({
        id: kCompletionId,
        object: 'chat.completion.chunk',
        created: kCreated,
        model,
        system_fingerprint: kFingerprint,
        choices: [],
        usage: { ...kGroqUsage },
      }),
    );
  }
  mock.writeEvent(res, 'data: [DONE]\n\n');
  res.end();
}

async function handle(ctx) {
  const { req, res, json } = ctx;
  const path = new URL(req.url, 'http://mock').pathname;

  if (req.method === 'POST' && path === '/openai/v1/chat/completions') {
    if (json === undefined || typeof json !== 'object' || json === null) {
      sendJson(res, 400, errorBody(400, 'a JSON object body is required'));
      return;
    }
    if (typeof json.model !== 'string' || !Array.isArray(json.messages)) {
      sendJson(res, 400, errorBody(400, "'model' and 'messages' are required properties"));
      return;
    }
    if (json.stream === true) {
      await streamChat(ctx);
      return;
    }
    sendJson(res, 200, chatCompletion(json.model), { 'x-groq-region': 'mock' });
    return;
  }
  if (req.method === 'GET' && path === '/openai/v1/models') {
    sendJson(res, 200, {
      object: 'list',
      data: [
        {
          id: 'llama-3.3-70b-versatile',
          object: 'model',
          created: kCreated,
          owned_by: 'Meta',
          active: true,
          context_window: 131072,
          public_apps: null,
        },
      ],
    });
    return;
  }
  sendJson(res, 404, errorBody(404, 'Unknown request URL: ' + `${req.method} ${path}`));
}

// Starts the mock; see startRecordingServer for options and the returned handle.
export function startMock(options = {}) {
  return startRecordingServer(
    { name: 'groq', credentialOf: bearerCredential, errorBody, handle },
    options,
  );
}
