// HTTP client for tests that need exact control of the request: raw header pairs (duplicates,
// case, order), unnormalized paths, chunked bodies, Expect: 100-continue, and the arrival time
// of every response chunk. Built on node:http with a fresh connection per request.

import assert from 'node:assert/strict';
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const kContinueFallbackMs = 1000;

function hasHeader(pairs, name) {
  for (let i = 0; i < pairs.length; i += 2) {
    if (pairs[i].toLowerCase() === name) {
      return true;
    }
  }
  return false;
}

function toPairs(headers) {
  if (Array.isArray(headers)) {
    return [...headers];
  }
  const pairs = [];
  for (const [name, value] of Object.entries(headers)) {
    for (const item of [].concat(value)) {
      pairs.push(name, String(item));
    }
  }
  return pairs;
}

// Sends one request. Options:
//   method, path        sent as given, without any normalization
//   headers             raw [name, value, ...] pairs or an object; Host is added when absent
//   body                Buffer or string
//   chunked             send the body with Transfer-Encoding: chunked in `chunkSize` pieces
//   expectContinue      send Expect: 100-continue and the body after 100 Continue, or after
//                       one second without it, as curl does
//   keepAlive           ask for a persistent connection, as SDK clients do (default: close)
// Resolves {status, statusMessage, headers, rawHeaders, body, text, json(), chunks: [{at,
// bytes}], sentAt, endedAt}.
export function request(baseUrl, options = {}) {
  const url = new URL(baseUrl);
  const {
    method = 'GET',
    path = '/',
    body,
    chunked = false,
    chunkSize = 1 << 20,
    expectContinue = false,
    timeoutMs = 60000,
    keepAlive = false,
  } = options;
  const payload = body === undefined ? undefined : Buffer.from(body);
  const pairs = toPairs(options.headers ?? []);
  if (!hasHeader(pairs, 'host')) {
    pairs.unshift('Host', url.host);
  }
  if (payload !== undefined && chunked && !hasHeader(pairs, 'transfer-encoding')) {
    pairs.push('Transfer-Encoding', 'chunked');
  }
  if (payload !== undefined && !chunked && !hasHeader(pairs, 'content-length')) {
    pairs.push('Content-Length', String(payload.length));
  }
  if (expectContinue) {
    pairs.push('Expect', '100-continue');
  }
  if (!hasHeader(pairs, 'connection')) {
    pairs.push('Connection', keepAlive ? 'keep-alive' : 'close');
  }

  return new Promise((resolve, reject) => {
    let responded = false;
    const sentAt = performance.now();
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method,
      path,
      headers: pairs,
      agent: false,
      setHost: false,
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`request ${method} ${path} timed out after ${timeoutMs} ms`));
    }, timeoutMs);

    req.on('response', (res) => {
      responded = true;
      const chunks = [];
      res.on('data', (bytes) => chunks.push({ at: performance.now(), bytes }));
      res.on('end', () => {
        clearTimeout(timer);
        if (keepAlive) {
          // Without an agent nothing reuses the connection, so close it once the response ended.
          res.socket?.destroy();
        }
        const endedAt = performance.now();
        const all = Buffer.concat(chunks.map((chunk) => chunk.bytes));
        resolve({
          status: res.statusCode,
          statusMessage: res.statusMessage,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: all,
          text: all.toString('utf8'),
          json() {
            return JSON.parse(all.toString('utf8'));
          },
          chunks,
          sentAt,
          endedAt,
        });
      });
      res.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    req.on('error', (error) => {
      // A server may respond early (413) and close while the body is still being written. The
      // response counts, and the write error after it does not.
      if (!responded) {
        clearTimeout(timer);
        reject(error);
      }
    });

    const writeBody = () => {
      if (payload === undefined) {
        req.end();
        return;
      }
      if (!chunked) {
        req.end(payload);
        return;
      }
      for (let offset = 0; offset < payload.length; offset += chunkSize) {
        req.write(payload.subarray(offset, offset + chunkSize));
      }
      req.end();
    };

    if (!expectContinue) {
      writeBody();
      return;
    }
    req.flushHeaders();
    let written = false;
    const writeOnce = () => {
      if (!written && !responded) {
        written = true;
        writeBody();
      }
    };
    req.on('continue', writeOnce);
    setTimeout(writeOnce, kContinueFallbackMs);
  });
}

// Sends a request to the proxy with the agent token in `Authorization: Bearer` (unless
// `token` is undefined) and a JSON body when `json` is given.
export function proxyRequest(ks, { method = 'POST', path, token, json, headers = [], ...rest }) {
  const pairs = toPairs(headers);
  if (token !== undefined) {
    pairs.push('Authorization', `Bearer ${token}`);
  }
  let body = rest.body;
  if (json !== undefined) {
    pairs.push('Content-Type', 'application/json');
    body = JSON.stringify(json);
  }
  return request(ks.proxyUrl, { ...rest, method, path, headers: pairs, body });
}

// Asserts a Keystore error response: the status, JSON body with type keystore_error, the code,
// and a request id.
export function assertKeystoreError(response, status, code, context = '') {
  const where = context ? `${context}: ` : '';
  assert.equal(response.status, status, `${where}status is ${status}; body: ${response.text}`);
  let body;
  try {
    body = response.json();
  } catch {
    assert.fail(`${where}error body is JSON; body: ${response.text}`);
  }
  assert.equal(body?.error?.type, 'keystore_error', `${where}error.type is keystore_error; body: ${response.text}`);
  assert.equal(body?.error?.code, code, `${where}error.code is ${code}; body: ${response.text}`);
  assert.equal(typeof body?.error?.request_id, 'string', `${where}error.request_id is a string; body: ${response.text}`);
  assert.ok(body.error.request_id.length > 0, `${where}error.request_id is not empty`);
  assert.equal(typeof body?.error?.message, 'string', `${where}error.message is a string`);
  return body;
}

// Every value of a response header, from the raw pairs (case-insensitive).
export function responseHeaderValues(response, name) {
  const wanted = name.toLowerCase();
  const values = [];
  for (let i = 0; i + 1 < response.rawHeaders.length; i += 2) {
    if (response.rawHeaders[i].toLowerCase() === wanted) {
      values.push(response.rawHeaders[i + 1]);
    }
  }
  return values;
}
