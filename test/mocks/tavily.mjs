// Mock Tavily upstream: POST /search and POST /extract in the wire format of api.tavily.com.
// The credential is `Authorization: Bearer tvly-...`. The mock rejects the `api_key` body field
// that older Tavily clients sent, so that a test notices a client putting its key in the body,
// where the proxy does not look for the agent token.

import { randomUUID } from 'node:crypto';

import { bearerCredential, sendJson, startRecordingServer } from './recorder.mjs';

export const kTavilyResults = Object.freeze([
  Object.freeze({
    title: 'Keystore mock result one',
    url: 'https://example.test/one',
    content: 'The first search result of the mock Tavily upstream.',
    score: 0.91,
  }),
  Object.freeze({
    title: 'Keystore mock result two',
    url: 'https://example.test/two',
    content: 'The second search result of the mock Tavily upstream.',
    score: 0.62,
  }),
]);
export const kTavilyAnswer = 'The mock Tavily upstream answered.';

function errorBody(status, message) {
  return { detail: { error: message } };
}

function search({ res, json, mock }) {
  if (typeof json?.query !== 'string' || json.query.length === 0) {
    sendJson(res, 400, errorBody(400, 'Query is missing.'));
    return;
  }
  const maxResults = json.max_results ?? 5;
  if (!Number.isInteger(maxResults) || maxResults < 0 || maxResults > 20) {
    sendJson(res, 400, errorBody(400, 'max_results must be between 0 and 20.'));
    return;
  }
  const depth = json.search_depth ?? 'basic';
  const requestId = randomUUID();
  mock.requestIds.push(requestId);
  const answer = {
    query: json.query,
    follow_up_questions: null,
    answer: json.include_answer ? kTavilyAnswer : null,
    images: [],
    results: kTavilyResults.slice(0, maxResults).map((result) => ({
      ...result,
      raw_content: json.include_raw_content ? `${result.content} (raw)` : null,
    })),
    response_time: 0.42,
    request_id: requestId,
  };
  if (json.include_usage) {
    answer.usage = { credits: depth === 'advanced' ? 2 : 1 };
  }
  sendJson(res, 200, answer);
}

function extract({ res, json, mock }) {
  const urls = typeof json?.urls === 'string' ? [json.urls] : json?.urls;
  if (!Array.isArray(urls) || urls.length === 0) {
    sendJson(res, 400, errorBody(400, 'urls is missing.'));
    return;
  }
  const requestId = randomUUID();
  mock.requestIds.push(requestId);
  const results = [];
  const failed = [];
  for (const url of urls) {
    if (url.startsWith('https://example.test/')) {
      results.push({ url, raw_content: `Extracted text of ${url}.`, images: [] });
    } else {
      failed.push({ url, error: 'Failed to fetch url' });
    }
  }
  const answer = { results, failed_results: failed, response_time: 0.11, request_id: requestId };
  if (json.include_usage) {
    answer.usage = { credits: Math.ceil(results.length / 5) };
  }
  sendJson(res, 200, answer);
}

function handle(ctx) {
  const { req, res, json } = ctx;
  const path = new URL(req.url, 'http://mock').pathname;

  if (json !== undefined && json !== null && 'api_key' in json) {
    sendJson(res, 400, errorBody(400, 'the mock accepts the API key only as a Bearer token, not as api_key in the body'));
    return;
  }
  if (req.method === 'POST' && path === '/search') {
    search(ctx);
    return;
  }
  if (req.method === 'POST' && path === '/extract') {
    extract(ctx);
    return;
  }
  sendJson(res, 404, errorBody(404, 'Not Found'));
}

// Starts the mock; see startRecordingServer for options and the returned handle. The handle
// also has requestIds, the request_id values it returned, in order.
export async function startMock(options = {}) {
  const mock = await startRecordingServer(
    { name: 'tavily', credentialOf: bearerCredential, errorBody, handle },
    options,
  );
  mock.requestIds = [];
  const clear = mock.clear;
  mock.clear = () => {
    clear();
    mock.requestIds.length = 0;
  };
  return mock;
}
