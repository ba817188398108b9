// Mock OpenAI upstream: chat completions (JSON and SSE streaming), embeddings and the model
// list, in the wire format of api.openai.com. The credential is `Authorization: Bearer <key>`.

import { bearerCredential, sendJson, sleep, startRecordingServer } from './recorder.mjs';

export const kChatReplyParts = ['Hello', ' from', ' the', ' mock', ' OpenAI', ' upstream.'];
export const kChatReply = kChatReplyParts.join('');
export const kEmbedding = [0.125, -0.25, 0.5, 0.75, -1, 0.0625, 2, -0.5];
export const kUsage = Object.freeze({ prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 });

const kCreated = 1767225600;

function errorBody(status, message) {
  const type = status === 401 ? 'invalid_request_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return { error: { message, type, param: null, code: status === 401 ? 'invalid_api_key' : null } };
}

function chatCompletion(model) {
  return {
    id: 'chatcmpl-mock0001',
    object: 'chat.completion',
    created: kCreated,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: kChatReply, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { ...kUsage },
    service_tier: 'default',
    system_fingerprint: 'fp_mock',
  };
}

function chunk(model, delta, finishReason, includeUsage) {
  const value = {
    id: 'chatcmpl-mock0001',
    object: 'chat.completion.chunk',
    created: kCreated,
    model,
    service_tier: 'default',
    system_fingerprint: 'fp_mock',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
  if (includeUsage) {
    value.usage = null;
  }
  return value;
}

function sseData(value) {
  return `data: ${JSON.stringify(value)}\n\n`;
}

// The content parts a streamed response sends: the fixed reply, or `events` numbered parts when
// the test asked for a slow stream.
function streamParts(behavior) {
  if (behavior.sse === undefined) {
    return kChatReplyParts;
  }
  return Array.from({ length: behavior.sse.events }, (_, i) => `event-${i} `);
}

async function streamChat({ res, json, mock, behavior }) {
  const model = json.model ?? 'gpt-4o-mini';
  const includeUsage = json.stream_options?.include_usage === true;
  const intervalMs = behavior.sse?.intervalMs ?? 0;
  res.statusCode = 200;
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache');
  res.flushHeaders();

  mock.writeEvent(res, sseData(chunk(model, { role: 'assistant', content: '', refusal: null }, null, includeUsage)));
  for (const part of streamParts(behavior)) {
    if (intervalMs > 0) {
      await sleep(intervalMs);
    }
    if (res.destroyed) {
      return;
    }
    mock.writeEvent(res, sseData(chunk(model, { content: part }, null, includeUsage)));
  }
  mock.writeEvent(res, sseData(chunk(model, {}, 'stop', includeUsage)));
  if (includeUsage) {
    mock.writeEvent(
      res,
      sseData({
        id: 'chatcmpl-mock0001',
        object: 'chat.completion.chunk',
        created: kCreated,
        model,
        service_tier: 'default',
        system_fingerprint: 'fp_mock',
        choices: [],
        usage: { ...kUsage },
      }),
    );
  }
  mock.writeEvent(res, 'data: [DONE]\n\n');
  res.end();
}

function embeddingValue(format) {
  if (format === 'base64') {
    return Buffer.from(new Float32Array(kEmbedding).buffer).toString('base64');
  }
  return [...kEmbedding];
}

function embeddings({ res, json }) {
  const inputs = Array.isArray(json.input) ? json.input : [json.input];
  sendJson(res, 200, {
    object: 'list',
    data: inputs.map((_, index) => ({
      object: 'embedding',
      index,
      embedding: embeddingValue(json.encoding_format),
    })),
    model: json.model ?? 'text-embedding-3-small',
    usage: { prompt_tokens: 5, total_tokens: 5 },
  });
}

async function handle(ctx) {
  const { req, res, json } = ctx;
  const path = new URL(req.url, 'http://mock').pathname;

  if (req.method === 'POST' && path === '/v1/chat/completions') {
    if (json === undefined || typeof json !== 'object') {
      sendJson(res, 400, errorBody(400, 'a JSON object body is required'));
      return;
    }
    if (json.stream === true) {
      await streamChat(ctx);
      return;
    }
    sendJson(res, 200, chatCompletion(json.model ?? 'gpt-4o-mini'));
    return;
  }
  if (req.method === 'POST' && path === '/v1/embeddings') {
    if (json === undefined || json.input === undefined) {
      sendJson(res, 400, errorBody(400, "'input' is a required property"));
      return;
    }
    embeddings(ctx);
    return;
  }
  if ((req.method === 'GET' || req.method === 'HEAD') && path === '/v1/models') {
    sendJson(res, 200, {
      object: 'list',
      data: [{ id: 'gpt-4o-mini', object: 'model', created: kCreated, owned_by: 'system' }],
    });
    return;
  }
  sendJson(res, 404, errorBody(404, `Invalid URL (${req.method} ${path})`));
}

// Starts the mock; see startRecordingServer for options and the returned handle.
export function startMock(options = {}) {
  return startRecordingServer(
    { name: 'openai', credentialOf: bearerCredential, errorBody, handle },
    options,
  );
}
