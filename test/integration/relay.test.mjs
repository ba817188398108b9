// The relay's HTTP/1.1 framing, checked byte for byte on raw sockets at both ends. The proxy
// sits between a raw client and a raw upstream whose every response byte the test scripts.
// Covered: chunked re-framing, close-delimited bodies for HTTP/1.0 clients, bodiless responses
// (HEAD, 204, 304, Content-Length 0), pipelined and slowly sent requests and Expect:
// 100-continue. Also the fields the proxy replaces or adds, redaction of the key in split
// bodies, the lingering close, and which upstream connections the pool reuses. Every test runs
// against a plain and a TLS upstream.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { after, before, beforeEach, describe, test } from 'node:test';

import { sleep } from '../mocks/recorder.mjs';
import { makeTempDir, provision, startKeystore } from '../harness/keystore.mjs';
import { kOpenAiKey, kResendKey } from '../harness/secrets.mjs';
import { makeTestCertificates } from '../harness/tls.mjs';

const kEmailsPath = '/v1/resend/emails';
const kChatPath = '/v1/openai/v1/chat/completions';
// The proxy reads upstream bodies in pieces of this many bytes.
const kRelayBufferSize = 16 * 1024;
const kEmail = JSON.stringify({ from: 'a@example.test', to: 'b@example.test', subject: 's', text: 't' });
const kExchangeTimeoutMs = 10000;

// Splits a head (without the blank line) into its start line and [name, value] pairs in order.
function parseHead(text) {
  const [startLine, ...lines] = text.split('\r\n');
  const fields = lines.map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
  });
  return { startLine, fields };
}

function fieldValues(message, name) {
  return message.fields.filter(([fieldName]) => fieldName === name).map(([, value]) => value);
}

function fieldValue(message, name) {
  const values = fieldValues(message, name);
  assert.equal(values.length, 1, `exactly one ${name} field in ${JSON.stringify(message.fields)}`);
  return values[0];
}

// A provider upstream that responds to each request with the bytes the current test scripts in
// `respond(socket, request)`. It handles the requests of one connection one after another and
// records each with the number of the connection it arrived on.
async function startRawUpstream({ secure } = {}) {
  const upstream = {
    requests: [],
    connections: 0,
    sockets: new Set(),
    respond: respondWithJson,
    url: '',
    // Resets the script and closes every connection. The proxy takes a connection that went
    // back to its pool less than a millisecond ago without checking it, because servers usually
    // close an idle kept-alive connection only after seconds. The pause after the close makes
    // the proxy check, and drop, the connections closed here.
    async clear() {
      upstream.requests = [];
      upstream.connections = 0;
      upstream.respond = respondWithJson;
      for (const socket of upstream.sockets) {
        socket.destroy();
      }
      await sleep(5);
    },
    close() {
      for (const socket of upstream.sockets) {
        socket.destroy();
      }
      return new Promise((resolve) => server.close(resolve));
    },
  };

  const onConnection = (socket) => {
    upstream.connections += 1;
    const connection = upstream.connections;
    upstream.sockets.add(socket);
    socket.on('close', () => upstream.sockets.delete(socket));
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    let busy = false;

    const nextRequest = () => {
      if (busy) {
        return;
      }
      const headEnd = pending.indexOf('\r\n\r\n');
      if (headEnd < 0) {
        return;
      }
      const head = parseHead(pending.subarray(0, headEnd).toString('latin1'));
      const lengthValues = fieldValues(head, 'content-length');
      const length = lengthValues.length > 0 ? Number(lengthValues[0]) : 0;
      if (pending.length < headEnd + 4 + length) {
        return;
      }
      const request = { connection, ...head, body: pending.subarray(headEnd + 4, headEnd + 4 + length) };
      pending = pending.subarray(headEnd + 4 + length);
      upstream.requests.push(request);
      busy = true;
      Promise.resolve(upstream.respond(socket, request)).then(() => {
        busy = false;
        nextRequest();
      });
    };
    socket.on('data', (bytes) => {
      pending = Buffer.concat([pending, bytes]);
      nextRequest();
    });
  };

  const server = secure
    ? tls.createServer({ key: secure.key, cert: secure.cert }, onConnection)
    : net.createServer(onConnection);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  upstream.url = secure ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
  return upstream;
}

function respondWithJson(socket) {
  const body = '{"id":"email-1"}';
  socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
}

// Writes `parts` to the socket `gapMs` apart, so that each arrives in its own read.
async function writeParts(socket, parts, gapMs = 60) {
  for (let i = 0; i < parts.length; ++i) {
    if (i > 0) {
      await sleep(gapMs);
    }
    socket.write(parts[i]);
  }
}

// The raw bytes of one client request to the resend route. With `body: null` it has no body.
function clientRequest(token, { method = 'POST', path = kEmailsPath, version = '1.1', body = kEmail, headers = [], close = false } = {}) {
  const lines = [`${method} ${path} HTTP/${version}`, 'Host: proxy.test', `Authorization: Bearer ${token}`];
  if (body !== null) {
    lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
  }
  lines.push(...headers);
  if (close) {
    lines.push('Connection: close');
  }
  return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`;
}

// Opens one connection to the proxy, writes `parts` `gapMs` apart, and resolves with every
// byte the proxy sent until it ended the connection. `waitBefore[i](received)`, when given,
// delays part i until the bytes received so far satisfy it.
function rawExchange(ks, parts, { gapMs = 0, waitBefore } = {}) {
  const { hostname, port } = new URL(ks.proxyUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let received = Buffer.alloc(0);
    let waiter;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the proxy did not end the connection within ${kExchangeTimeoutMs} ms. Received: ${received.toString('latin1')}`));
    }, kExchangeTimeoutMs);
    socket.on('data', (bytes) => {
      received = Buffer.concat([received, bytes]);
      waiter?.();
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    });
    socket.on('connect', async () => {
      for (let i = 0; i < parts.length; ++i) {
        if (i > 0 && gapMs > 0) {
          await sleep(gapMs);
        }
        const condition = waitBefore?.[i];
        if (condition) {
          await new Promise((resume) => {
            waiter = () => {
              if (condition(received)) {
                waiter = undefined;
                resume();
              }
            };
            waiter();
          });
        }
        socket.write(parts[i]);
      }
    });
  });
}

// Sends one request and reads nothing until `pauseMs` passed, so that the proxy's writes to
// the client stall, then resolves with every byte until the proxy ended the connection.
function slowReadExchange(ks, request, pauseMs) {
  const { hostname, port } = new URL(ks.proxyUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: Number(port), host: hostname });
    const pieces = [];
    socket.on('error', reject);
    socket.on('connect', () => {
      socket.pause();
      socket.write(request);
      setTimeout(() => socket.resume(), pauseMs);
    });
    socket.on('data', (bytes) => pieces.push(bytes));
    socket.on('end', () => {
      socket.destroy();
      resolve(Buffer.concat(pieces));
    });
  });
}

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

// Decodes a chunked body strictly: every size line is lowercase hex, every chunk ends in CRLF,
// no chunk is empty before the last, and the body ends with `0\r\n\r\n`. Returns {data, end}
// where `end` is the offset after the body.
function decodeChunked(bytes, start) {
  const pieces = [];
  let offset = start;
  while (true) {
    const lineEnd = bytes.indexOf('\r\n', offset);
    assert.ok(lineEnd >= 0, 'every chunk size line ends in CRLF');
    const sizeText = bytes.subarray(offset, lineEnd).toString('latin1');
    assert.match(sizeText, /^[0-9a-f]+$/, `chunk size line '${sizeText}' is bare lowercase hex`);
    const size = parseInt(sizeText, 16);
    offset = lineEnd + 2;
    if (size === 0) {
      assert.equal(bytes.subarray(offset, offset + 2).toString('latin1'), '\r\n', 'the last chunk has no trailer');
      return { data: Buffer.concat(pieces), end: offset + 2, chunks: pieces.length };
    }
    pieces.push(bytes.subarray(offset, offset + size));
    assert.equal(bytes.subarray(offset + size, offset + size + 2).toString('latin1'), '\r\n', 'chunk data ends in CRLF');
    offset += size + 2;
  }
}

// Splits the bytes of one connection into responses. `bodiless[i]` marks a response without
// a body (to a HEAD request). Interim 1xx responses are listed as responses of their own.
function parseResponses(bytes, { bodiless = [] } = {}) {
  const responses = [];
  let offset = 0;
  let finalIndex = 0;
  while (offset < bytes.length) {
    const headEnd = bytes.indexOf('\r\n\r\n', offset);
    assert.ok(headEnd >= 0, `a complete head at offset ${offset}: ${bytes.subarray(offset).toString('latin1')}`);
    const head = parseHead(bytes.subarray(offset, headEnd).toString('latin1'));
    const [version, statusText] = head.startLine.split(' ');
    const response = { ...head, version, status: Number(statusText), headText: bytes.subarray(offset, headEnd + 4).toString('latin1') };
    offset = headEnd + 4;
    const lengths = fieldValues(response, 'content-length');
    const codings = fieldValues(response, 'transfer-encoding');
    if (response.status < 200) {
      response.body = Buffer.alloc(0);
    } else if (bodiless[finalIndex] || response.status === 204 || response.status === 304) {
      response.body = Buffer.alloc(0);
      finalIndex += 1;
    } else if (codings.length > 0) {
      const decoded = decodeChunked(bytes, offset);
      response.rawBody = bytes.subarray(offset, decoded.end);
      response.body = decoded.data;
      response.chunkCount = decoded.chunks;
      offset = decoded.end;
      finalIndex += 1;
    } else if (lengths.length > 0) {
      const length = Number(lengths[0]);
      response.body = bytes.subarray(offset, offset + length);
      offset += length;
      finalIndex += 1;
    } else {
      response.body = bytes.subarray(offset);
      response.closeDelimited = true;
      offset = bytes.length;
      finalIndex += 1;
    }
    responses.push(response);
  }
  return responses;
}

// Asserts the proxy's own fields: one x-request-id equal to the one the upstream received.
function assertRequestIdOf(response, upstreamRequest) {
  const sent = fieldValue(upstreamRequest, 'x-request-id');
  assert.match(sent, /^req_[0-9a-f]+$/, 'the upstream receives a proxy request id');
  assert.deepEqual(fieldValues(response, 'x-request-id'), [sent], 'the client receives the request id the upstream received, once');
}

function describeRelay(name, { secure }) {
  describe(name, () => {
    let certDir;
    let caFile;
    let upstream;
    let ks;
    let token;

    before(async () => {
      let certificates;
      if (secure) {
        certDir = await makeTempDir('keystore-relay-tls-');
        certificates = makeTestCertificates(certDir);
        caFile = certificates.caFile;
      }
      upstream = await startRawUpstream({ secure: certificates });
      const extraArgs = ['--threads', '1'];
      if (secure) {
        extraArgs.push('--upstream-ca-file', certificates.caFile);
      }
      ks = await startKeystore({ upstreams: { resend: upstream.url, openai: upstream.url }, extraArgs });
      ({ token } = await provision(ks, { keys: { resend: kResendKey, openai: kOpenAiKey } }));
    });

    after(async () => {
      await ks?.close();
      await upstream?.close();
      if (certDir) {
        await rm(certDir, { recursive: true, force: true });
      }
    });

    beforeEach(async () => {
      await upstream.clear();
    });

    test('close-delimited body re-framed as chunked', async () => {
      upstream.respond = async (socket) => {
        await writeParts(socket, ['HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n', 'first ', 'second ', 'third']);
        socket.end();
      };
      const bytes = await rawExchange(ks, [clientRequest(token, { close: true })]);
      const [response, ...rest] = parseResponses(bytes);
      assert.equal(rest.length, 0, 'one response');
      assert.equal(response.startLine, 'HTTP/1.1 200 OK');
      assert.deepEqual(fieldValues(response, 'transfer-encoding'), ['chunked'], 'Transfer-Encoding: chunked exactly once');
      assert.deepEqual(fieldValues(response, 'content-length'), [], 'no Content-Length');
      assert.deepEqual(fieldValues(response, 'connection'), ['close'], 'Connection: close once');
      assert.equal(response.body.toString(), 'first second third', 'the decoded body is the upstream body');
      assertRequestIdOf(response, upstream.requests[0]);
    });

    test('chunked upstream body framed once', async () => {
      upstream.respond = async (socket) => {
        await writeParts(socket, [
          'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n',
          '5\r\nhello\r\n',
          '1;ext=1\r\n \r\n5\r\nworld\r\n',
          '0\r\nX-Trailer: dropped\r\n\r\n',
        ]);
      };
      const bytes = await rawExchange(ks, [clientRequest(token, { close: true })]);
      const [response] = parseResponses(bytes);
      assert.equal(response.status, 200);
      assert.deepEqual(fieldValues(response, 'transfer-encoding'), ['chunked'], 'Transfer-Encoding: chunked exactly once');
      assert.equal(response.body.toString(), 'hello world', 'the decoded body is the upstream body');
      assert.ok(!bytes.toString('latin1').includes('X-Trailer'), 'the upstream trailer is not relayed');
      assert.ok(!response.rawBody.toString('latin1').includes('ext=1'), 'chunk extensions are not relayed');
    });

    test('repeated Content-Length relayed once', async () => {
      const body = '{"id":"email-1"}';
      upstream.respond = (socket) => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      };
      const bytes = await rawExchange(ks, [clientRequest(token, { close: true })]);
      const [response, ...rest] = parseResponses(bytes);
      assert.equal(rest.length, 0, 'one response');
      assert.equal(response.status, 200);
      assert.deepEqual(fieldValues(response, 'content-length'), [String(body.length)], 'Content-Length exactly once');
      assert.equal(response.body.toString(), body);
    });

    test('upstream gzip transfer coding is 502', async () => {
      upstream.respond = (socket) => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n');
      };
      const bytes = await rawExchange(ks, [clientRequest(token), clientRequest(token, { close: true })], {
        waitBefore: [null, (received) => received.includes('}}')],
      });
      const [refused, next] = parseResponses(bytes);
      assert.equal(refused.status, 502);
      assert.equal(JSON.parse(refused.body.toString()).error.code, 'upstream_invalid_response');
      assert.deepEqual(fieldValues(refused, 'transfer-encoding'), [], 'no Transfer-Encoding on the error');
      assert.equal(next.status, 502, 'the second request met the same upstream answer');
      assert.equal(upstream.requests.length, 2);
      assert.equal(upstream.connections, 2, 'the connection that sent gzip was not pooled');
    });

    test('request in gzip transfer coding is 400', async () => {
      const request = clientRequest(token, { body: null, headers: ['Content-Type: application/json', 'Transfer-Encoding: gzip, chunked'], close: true });
      const bytes = await rawExchange(ks, [`${request}4\r\nabcd\r\n0\r\n\r\n`]);
      const [response, ...rest] = parseResponses(bytes);
      assert.equal(rest.length, 0, 'one response');
      assert.equal(response.status, 400);
      assert.equal(JSON.parse(response.body.toString()).error.code, 'invalid_request');
      assert.equal(upstream.requests.length, 0, 'nothing reached the upstream');
    });

    test('HTTP/1.0 client gets close-delimited body', async () => {
      upstream.respond = async (socket) => {
        await writeParts(socket, ['HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n', '5\r\nhello\r\n', '6\r\n world\r\n0\r\n\r\n']);
      };
      const bytes = await rawExchange(ks, [clientRequest(token, { version: '1.0', headers: ['Connection: keep-alive'] })]);
      const headEnd = bytes.indexOf('\r\n\r\n');
      const head = parseHead(bytes.subarray(0, headEnd).toString('latin1'));
      assert.equal(head.startLine, 'HTTP/1.0 200 OK');
      assert.deepEqual(fieldValues(head, 'transfer-encoding'), [], 'no Transfer-Encoding for HTTP/1.0');
      assert.deepEqual(fieldValues(head, 'content-length'), [], 'no Content-Length');
      assert.deepEqual(fieldValues(head, 'connection'), [], 'no Connection: keep-alive, because the close ends the body');
      assert.equal(bytes.subarray(headEnd + 4).toString('latin1'), 'hello world', 'the raw body is the upstream body, unframed');
    });

    test('HTTP/1.0 keep-alive with Content-Length', async () => {
      const parts = [
        clientRequest(token, { version: '1.0', headers: ['Connection: keep-alive'] }),
        clientRequest(token, { version: '1.0' }),
      ];
      const bytes = await rawExchange(ks, parts, { waitBefore: [undefined, (received) => received.includes('email-1')] });
      const responses = parseResponses(bytes);
      assert.equal(responses.length, 2, 'both requests get responses on one connection');
      assert.equal(responses[0].startLine, 'HTTP/1.0 200 OK');
      assert.deepEqual(fieldValues(responses[0], 'connection'), ['keep-alive'], 'the first response keeps the connection');
      assert.deepEqual(fieldValues(responses[1], 'connection'), [], 'the second response closes by HTTP/1.0 default');
      assert.equal(responses[1].body.toString(), '{"id":"email-1"}');
    });

    test('HEAD keeps Content-Length without body', async () => {
      const parts = [
        clientRequest(token, { method: 'HEAD', path: '/v1/resend/emails/email-1', body: null }),
        clientRequest(token, { method: 'GET', path: '/v1/resend/emails/email-1', body: null, close: true }),
      ];
      upstream.respond = (socket, request) => {
        if (request.startLine.startsWith('HEAD ')) {
          socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 42\r\n\r\n');
        } else {
          respondWithJson(socket);
        }
      };
      const bytes = await rawExchange(ks, [parts.join('')]);
      const responses = parseResponses(bytes, { bodiless: [true, false] });
      assert.equal(responses.length, 2, 'two responses');
      assert.deepEqual(fieldValues(responses[0], 'content-length'), ['42'], 'HEAD keeps the upstream Content-Length');
      assert.deepEqual(fieldValues(responses[0], 'transfer-encoding'), [], 'HEAD gets no Transfer-Encoding');
      assert.equal(responses[1].status, 200, 'the GET after HEAD gets a response on the same connection');
      assert.equal(responses[1].body.toString(), '{"id":"email-1"}', 'the GET response is not shifted by HEAD bytes');
      assert.equal(upstream.requests.length, 2);
      assert.ok(upstream.requests[0].startLine.startsWith('HEAD /emails/email-1 '), `the upstream receives HEAD: ${upstream.requests[0].startLine}`);
    });

    for (const [status, reason, extra] of [
      [204, 'No Content', ''],
      [304, 'Not Modified', 'ETag: "v1"\r\nContent-Length: 99\r\n'],
      [200, 'OK', 'Content-Length: 0\r\n'],
    ]) {
      test(`${status} without body keeps connection`, async () => {
        upstream.respond = (socket, request) => {
          if (request.body.length > 0) {
            socket.write(`HTTP/1.1 ${status} ${reason}\r\n${extra}\r\n`);
          } else {
            respondWithJson(socket);
          }
        };
        const parts = [
          clientRequest(token),
          clientRequest(token, { method: 'GET', path: '/v1/resend/emails/email-1', body: null, close: true }),
        ];
        const bytes = await rawExchange(ks, [parts.join('')]);
        const responses = parseResponses(bytes);
        assert.equal(responses.length, 2, `two responses: ${bytes.toString('latin1')}`);
        assert.equal(responses[0].startLine, `HTTP/1.1 ${status} ${reason}`);
        assert.deepEqual(fieldValues(responses[0], 'transfer-encoding'), [], 'no Transfer-Encoding');
        const expectedLength = extra.match(/Content-Length: (\d+)/)?.[1];
        assert.deepEqual(fieldValues(responses[0], 'content-length'), expectedLength ? [expectedLength] : [], 'Content-Length as the upstream sent it');
        assert.equal(responses[1].body.toString(), '{"id":"email-1"}', `the next response follows directly: ${bytes.toString('latin1')}`);
        assert.equal(upstream.connections, 1, 'the upstream connection is reused after a bodiless response');
      });
    }

    test('pipelined requests in one packet', async () => {
      const bodies = ['{"n":1}', '{"n":2}', '{"n":3}'];
      upstream.respond = (socket, request) => {
        const body = `{"echo":${request.body.toString()}}`;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      };
      const packet = bodies.map((body, i) => clientRequest(token, { body, close: i === bodies.length - 1 })).join('');
      const bytes = await rawExchange(ks, [packet]);
      const responses = parseResponses(bytes);
      assert.deepEqual(responses.map((response) => response.body.toString()), bodies.map((body) => `{"echo":${body}}`), 'each response matches its request, in order');
      assert.deepEqual(upstream.requests.map((request) => request.body.toString()), bodies, 'the upstream receives each body once, in order');
      const ids = responses.map((response) => fieldValue(response, 'x-request-id'));
      assert.equal(new Set(ids).size, 3, 'each response has its own request id');
    });

    test('body after header in several packets', async () => {
      const body = JSON.stringify({ from: 'a@example.test', to: 'b@example.test', subject: 'slow', text: 'x'.repeat(3000) });
      const request = clientRequest(token, { body, close: true });
      const headEnd = request.indexOf('\r\n\r\n') + 4;
      const parts = [request.slice(0, headEnd - 2), request.slice(headEnd - 2, headEnd + 10), request.slice(headEnd + 10, headEnd + 1500), request.slice(headEnd + 1500)];
      const bytes = await rawExchange(ks, parts, { gapMs: 80 });
      const [response] = parseResponses(bytes);
      assert.equal(response.status, 200, `status: ${bytes.toString('latin1')}`);
      assert.equal(upstream.requests.length, 1);
      assert.equal(upstream.requests[0].body.toString(), body, 'the upstream receives the whole body');
      assert.deepEqual(fieldValues(upstream.requests[0], 'content-length'), [String(Buffer.byteLength(body))]);
    });

    test('Expect 100-continue gets interim response', async () => {
      const request = clientRequest(token, { headers: ['Expect: 100-continue'], close: true });
      const headEnd = request.indexOf('\r\n\r\n') + 4;
      const bytes = await rawExchange(ks, [request.slice(0, headEnd), request.slice(headEnd)], {
        waitBefore: [undefined, (received) => received.includes('\r\n\r\n')],
      });
      assert.ok(bytes.toString('latin1').startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n'), `100 Continue, then 200: ${bytes.toString('latin1')}`);
      assert.equal(upstream.requests[0].body.toString(), kEmail, 'the body sent after 100 Continue arrives');
      assert.deepEqual(fieldValues(upstream.requests[0], 'expect'), [], 'Expect is not forwarded');
    });

    test('HTTP/1.0 Expect gets no interim response', async () => {
      const bytes = await rawExchange(ks, [clientRequest(token, { version: '1.0', headers: ['Expect: 100-continue'] })]);
      assert.ok(bytes.toString('latin1').startsWith('HTTP/1.0 200 OK\r\n'), `no 100 Continue: ${bytes.toString('latin1')}`);
    });

    test('proxy fields replace upstream fields', async () => {
      upstream.respond = async (socket) => {
        await writeParts(socket, [
          'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: max-age=60\r\nX-Accel-Buffering: yes\r\n'
            + 'X-Request-Id: upstream-1\r\nx-request-id: upstream-2\r\nX-Keystore-Overhead-Ms: 999\r\nConnection: keep-alive, X-Hop\r\n'
            + 'X-Hop: secret-hop\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nX-Custom: kept\r\n\r\n',
          '7\r\ndata: 1\r\n2\r\n\n\n\r\n',
          '0\r\n\r\n',
        ]);
      };
      const bytes = await rawExchange(ks, [clientRequest(token, { close: true })]);
      const [response] = parseResponses(bytes);
      assertRequestIdOf(response, upstream.requests[0]);
      assert.deepEqual(fieldValues(response, 'cache-control'), ['no-cache'], 'Cache-Control: no-cache replaces the upstream value');
      assert.deepEqual(fieldValues(response, 'x-accel-buffering'), ['no'], 'x-accel-buffering: no replaces the upstream value');
      assert.equal(fieldValues(response, 'x-keystore-overhead-ms').length, 1, 'one overhead field');
      assert.notEqual(fieldValue(response, 'x-keystore-overhead-ms'), '999', 'the overhead field is the proxy own');
      assert.deepEqual(fieldValues(response, 'x-hop'), [], 'a field named in Connection is dropped');
      assert.deepEqual(fieldValues(response, 'keep-alive'), [], 'Keep-Alive is dropped');
      assert.deepEqual(fieldValues(response, 'connection'), ['close'], 'one Connection field, the proxy own');
      assert.deepEqual(fieldValues(response, 'transfer-encoding'), ['chunked'], 'Transfer-Encoding: chunked exactly once');
      assert.deepEqual(fieldValues(response, 'x-custom'), ['kept']);
      assert.equal(response.body.toString(), 'data: 1\n\n');
    });

    test('HTTP/1.1 keep-alive response has no Connection field', async () => {
      const parts = [clientRequest(token), clientRequest(token, { close: true })];
      const bytes = await rawExchange(ks, [parts.join('')]);
      const responses = parseResponses(bytes);
      assert.equal(responses.length, 2);
      assert.deepEqual(fieldValues(responses[0], 'connection'), [], 'keep-alive is the HTTP/1.1 default');
      assert.deepEqual(fieldValues(responses[1], 'connection'), ['close']);
    });

    test('key split across reads is redacted', async () => {
      const half = Math.floor(kResendKey.length / 2);
      const body = `{"echo":"${kResendKey}"}`;
      const splitAt = body.indexOf(kResendKey) + half;
      upstream.respond = async (socket) => {
        await writeParts(socket, [
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, splitAt)}`,
          body.slice(splitAt),
        ], 150);
      };
      const bytes = await rawExchange(ks, [clientRequest(token, { close: true })]);
      const [response] = parseResponses(bytes);
      assert.deepEqual(fieldValues(response, 'content-length'), [String(body.length)], 'Content-Length is unchanged');
      assert.equal(response.body.toString(), `{"echo":"${'*'.repeat(kResendKey.length)}"}`, 'the key is masked with asterisks of its length');
      assert.ok(!bytes.toString('latin1').includes(kResendKey), 'the key appears nowhere in the bytes sent');
    });

    test('key in chunked body is redacted', async () => {
      const half = Math.floor(kResendKey.length / 2);
      upstream.respond = async (socket) => {
        await writeParts(socket, [
          'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Echo: key=' + kResendKey + '\r\n\r\n',
          `key=${kResendKey.slice(0, half)}`,
          `${kResendKey.slice(half)};`,
        ], 150);
        socket.end();
      };
      const bytes = await rawExchange(ks, [clientRequest(token, { close: true })]);
      const [response] = parseResponses(bytes);
      assert.deepEqual(fieldValues(response, 'x-echo'), [], 'a field holding the key is dropped');
      assert.equal(response.body.toString(), `key=${'*'.repeat(kResendKey.length)};`);
      assert.ok(!bytes.toString('latin1').includes(kResendKey), 'the key appears nowhere in the bytes sent');
    });

    test('upstream connection reused', async () => {
      for (let i = 0; i < 3; ++i) {
        const bytes = await rawExchange(ks, [clientRequest(token, { close: true })]);
        assert.equal(parseResponses(bytes)[0].status, 200);
      }
      assert.equal(upstream.requests.length, 3);
      assert.deepEqual(upstream.requests.map((request) => request.connection), [1, 1, 1], 'all three requests share one upstream connection');
      assert.deepEqual(upstream.requests.map((request) => fieldValues(request, 'authorization')), Array(3).fill([`Bearer ${kResendKey}`]), 'each request carries the key once');
      for (const request of upstream.requests) {
        assert.ok(!`${request.startLine}\n${JSON.stringify(request.fields)}\n${request.body}`.includes(token), 'the agent token never reaches the upstream');
      }
    });

    test('connection with stray bytes not reused', async () => {
      let round = 0;
      upstream.respond = (socket) => {
        round += 1;
        const body = `{"round":${round}}`;
        const stray = round === 1 ? 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{"x":"y"}' : '';
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}${stray}`);
      };
      const first = parseResponses(await rawExchange(ks, [clientRequest(token, { close: true })]));
      const second = parseResponses(await rawExchange(ks, [clientRequest(token, { close: true })]));
      assert.equal(first[0].body.toString(), '{"round":1}');
      assert.equal(second[0].body.toString(), '{"round":2}', 'the second request gets its own response, not the stray one');
      assert.deepEqual(upstream.requests.map((request) => request.connection), [1, 2], 'the second request uses a new connection');
    });

    test('stray bytes after HEAD response not reused', async () => {
      upstream.respond = async (socket, request) => {
        if (request.startLine.startsWith('HEAD ')) {
          // A HEAD response with a body the proxy must not count as the next response.
          await writeParts(socket, ['HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n', '{"x":"y"}'], 100);
        } else {
          respondWithJson(socket);
        }
      };
      const head = clientRequest(token, { method: 'HEAD', path: '/v1/resend/emails/email-1', body: null, close: true });
      const headBytes = await rawExchange(ks, [head]);
      assert.equal(parseResponses(headBytes, { bodiless: [true] }).length, 1);
      await sleep(200);
      const bytes = await rawExchange(ks, [clientRequest(token, { close: true })]);
      const [response] = parseResponses(bytes);
      assert.equal(response.body.toString(), '{"id":"email-1"}', 'the next request gets its own response');
      assert.deepEqual(upstream.requests.map((request) => request.connection), [1, 2], 'the connection with the stray body is dropped');
    });

    test('upstream cut mid-body ends client body early', async () => {
      upstream.respond = async (socket) => {
        await writeParts(socket, ['HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n', 'only part']);
        socket.destroy();
      };
      const bytes = await rawExchange(ks, [clientRequest(token)]);
      const headEnd = bytes.indexOf('\r\n\r\n');
      const head = parseHead(bytes.subarray(0, headEnd).toString('latin1'));
      assert.deepEqual(fieldValues(head, 'content-length'), ['100']);
      assert.equal(bytes.subarray(headEnd + 4).toString(), 'only part', 'the client receives what arrived, then the close');
      upstream.respond = respondWithJson;
      const next = parseResponses(await rawExchange(ks, [clientRequest(token, { close: true })]));
      assert.equal(next[0].status, 200, 'the proxy keeps serving');
    });

    test('chunked upstream cut has no last chunk', async () => {
      upstream.respond = async (socket) => {
        await writeParts(socket, ['HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n', '4\r\npart\r\n']);
        socket.destroy();
      };
      const bytes = await rawExchange(ks, [clientRequest(token)]);
      const text = bytes.toString('latin1');
      assert.ok(text.includes('\r\n\r\n4\r\npart\r\n'), `the part that arrived is relayed as a chunk: ${text}`);
      assert.ok(!text.endsWith('0\r\n\r\n'), 'no last chunk, so the client sees the body as incomplete');
    });

    for (const framing of ['Content-Length', 'close-delimited']) {
      test(`slow client gets whole ${framing} body`, async () => {
        const body = Buffer.alloc(3 * 1024 * 1024 + 123);
        for (let i = 0; i < body.length; ++i) {
          body[i] = 97 + ((i * 7) % 26);
        }
        upstream.respond = (socket) => {
          const length = framing === 'Content-Length' ? `Content-Length: ${body.length}\r\n` : 'Connection: close\r\n';
          socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n${length}\r\n`);
          socket.write(body);
          if (framing !== 'Content-Length') {
            socket.end();
          }
        };
        const bytes = await slowReadExchange(ks, clientRequest(token, { close: true }), 1000);
        const [response] = parseResponses(bytes);
        assert.equal(response.status, 200);
        assert.equal(response.body.length, body.length, 'every byte arrives');
        assert.equal(sha256(response.body), sha256(body), 'the bytes arrive in order');
        if (framing !== 'Content-Length') {
          assert.deepEqual(fieldValues(response, 'transfer-encoding'), ['chunked']);
          assert.ok(response.chunkCount >= 2, `the body went out in several chunks: ${response.chunkCount}`);
        }
      });
    }

    test('key across relay buffer boundary redacted', async () => {
      // One write that the proxy reads in 16 KB pieces, with the key straddling the first
      // boundary and again at the very end of the body.
      const prefix = 'a'.repeat(kRelayBufferSize - 5);
      const body = `${prefix}${kResendKey}${'b'.repeat(kRelayBufferSize)}${kResendKey}`;
      upstream.respond = (socket) => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      };
      const bytes = await rawExchange(ks, [clientRequest(token, { close: true })]);
      const [response] = parseResponses(bytes);
      const mask = '*'.repeat(kResendKey.length);
      assert.equal(response.body.length, body.length, 'the body keeps its length');
      assert.equal(response.body.toString(), `${prefix}${mask}${'b'.repeat(kRelayBufferSize)}${mask}`);
      assert.ok(!bytes.toString('latin1').includes(kResendKey), 'the key appears nowhere in the bytes sent');
    });

    test('chunked request body then pipelined request', async () => {
      const first = [
        `POST ${kEmailsPath} HTTP/1.1`, 'Host: proxy.test', `Authorization: Bearer ${token}`,
        'Content-Type: application/json', 'Transfer-Encoding: chunked', '', '',
      ].join('\r\n');
      const chunkedBody = '5\r\n{"a":\r\n3\r\n"b"\r\n1\r\n}\r\n0\r\n\r\n';
      const second = clientRequest(token, { body: '{"c":1}', close: true });
      upstream.respond = (socket, request) => {
        const reply = `{"echo":${request.body.toString()}}`;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${reply.length}\r\n\r\n${reply}`);
      };
      const bytes = await rawExchange(ks, [first + chunkedBody + second]);
      const responses = parseResponses(bytes);
      assert.deepEqual(responses.map((response) => response.body.toString()), ['{"echo":{"a":"b"}}', '{"echo":{"c":1}}']);
      assert.deepEqual(fieldValues(upstream.requests[0], 'content-length'), ['9'], 'the upstream gets the de-chunked body with its length');
      assert.deepEqual(fieldValues(upstream.requests[0], 'transfer-encoding'), [], 'no Transfer-Encoding upstream');
    });

    test('request trailers not forwarded', async () => {
      const head = [
        `POST ${kEmailsPath} HTTP/1.1`, 'Host: proxy.test', `Authorization: Bearer ${token}`,
        'Content-Type: application/json', 'Transfer-Encoding: chunked', 'Connection: close', '', '',
      ].join('\r\n');
      // Trailers that would change the request if they became header fields upstream.
      const trailers = ['X-Trailer: 1', 'X-HTTP-Method-Override: DELETE', 'Host: elsewhere.test'];
      const chunkedBody = `7\r\n{"a":1}\r\n0\r\n${trailers.join('\r\n')}\r\n\r\n`;
      const bytes = await rawExchange(ks, [head + chunkedBody]);
      const [response] = parseResponses(bytes);
      assert.equal(response.status, 200, `status is 200: ${bytes.toString('latin1')}`);
      const [received] = upstream.requests;
      assert.equal(received.body.toString(), '{"a":1}', 'the upstream gets the whole body');
      assert.deepEqual(fieldValues(received, 'content-length'), ['7'], 'the upstream gets the body length, not the trailer');
      assert.deepEqual(fieldValues(received, 'x-trailer'), [], 'a trailer is not a header field upstream');
      assert.deepEqual(fieldValues(received, 'x-http-method-override'), [], 'a method override in a trailer is dropped');
      assert.equal(fieldValues(received, 'host').length, 1, 'one Host field upstream');
      assert.notEqual(fieldValues(received, 'host')[0], 'elsewhere.test', 'Host is not taken from a trailer');
    });

    test('Content-Length trailer is 400', async () => {
      const head = [
        `POST ${kEmailsPath} HTTP/1.1`, 'Host: proxy.test', `Authorization: Bearer ${token}`,
        'Content-Type: application/json', 'Transfer-Encoding: chunked', '', '',
      ].join('\r\n');
      const bytes = await rawExchange(ks, [`${head}7\r\n{"a":1}\r\n0\r\nContent-Length: 1\r\n\r\n`]);
      const [response] = parseResponses(bytes);
      assert.equal(response.status, 400, `status is 400: ${bytes.toString('latin1')}`);
      assert.equal(JSON.parse(response.body.toString()).error.code, 'invalid_request');
      assert.equal(upstream.requests.length, 0, 'the upstream received no request');
    });

    for (const sizeLine of ['ZZ', 'ffffffffffffffffff1']) {
      test(`invalid chunk size ${sizeLine.slice(0, 4)} is 400`, async () => {
        const head = [
          `POST ${kEmailsPath} HTTP/1.1`, 'Host: proxy.test', `Authorization: Bearer ${token}`,
          'Content-Type: application/json', 'Transfer-Encoding: chunked', '', '',
        ].join('\r\n');
        const bytes = await rawExchange(ks, [`${head}${sizeLine}\r\n{"a":1}\r\n0\r\n\r\n`]);
        const [response] = parseResponses(bytes);
        assert.equal(response.status, 400, `status is 400: ${bytes.toString('latin1')}`);
        assert.equal(JSON.parse(response.body.toString()).error.code, 'invalid_request');
        assert.deepEqual(fieldValues(response, 'connection'), ['close'], 'the connection closes after the error');
        assert.equal(upstream.requests.length, 0, 'the upstream received no request');
      });
    }

    test('upstream head split across packets', async () => {
      upstream.respond = async (socket) => {
        await writeParts(socket, ['HTTP/1.1 20', '1 Created\r\nContent-Type: application/json\r\nContent-Le', 'ngth: 2\r\n\r', '\n{}']);
      };
      const bytes = await rawExchange(ks, [clientRequest(token, { close: true })]);
      const [response] = parseResponses(bytes);
      assert.equal(response.startLine, 'HTTP/1.1 201 Created');
      assert.deepEqual(fieldValues(response, 'content-length'), ['2']);
      assert.equal(response.body.toString(), '{}');
    });

    test('keep-alive connection serves after idle pause', async () => {
      const parts = [clientRequest(token), clientRequest(token, { close: true })];
      const bytes = await rawExchange(ks, parts, { gapMs: 1500 });
      const responses = parseResponses(bytes);
      assert.deepEqual(responses.map((response) => response.status), [200, 200]);
      assert.deepEqual(upstream.requests.map((request) => request.connection), [1, 1], 'the pooled upstream connection is reused after the pause');
    });

    for (const version of ['1.1', '1.0']) {
      test(`usage filter re-frames Content-Length stream (HTTP/${version})`, async () => {
        const event = (data) => `data: ${data}\n\n`;
        const content = event('{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}');
        const usage = event('{"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}');
        const done = event('[DONE]');
        const stream = content + usage + done;
        upstream.respond = (socket) => {
          socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: ${stream.length}\r\n\r\n${stream}`);
        };
        const chat = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] });
        const bytes = await rawExchange(ks, [clientRequest(token, { path: kChatPath, version, body: chat, close: version === '1.1' })]);
        assert.match(upstream.requests[0].body.toString(), /"include_usage":true/, 'the proxy asks the upstream for usage');
        const headEnd = bytes.indexOf('\r\n\r\n');
        const head = parseHead(bytes.subarray(0, headEnd).toString('latin1'));
        assert.deepEqual(fieldValues(head, 'content-length'), [], 'the upstream Content-Length no longer fits and is dropped');
        if (version === '1.1') {
          assert.deepEqual(fieldValues(head, 'transfer-encoding'), ['chunked'], 'Transfer-Encoding: chunked exactly once');
          assert.equal(decodeChunked(bytes, headEnd + 4).data.toString(), content + done, 'the usage event is removed');
        } else {
          assert.deepEqual(fieldValues(head, 'transfer-encoding'), [], 'no Transfer-Encoding for HTTP/1.0');
          assert.equal(bytes.subarray(headEnd + 4).toString(), content + done, 'the usage event is removed and the close ends the body');
        }
      });
    }

    test('HTTP/1.0 upstream body keeps client connection', async () => {
      let round = 0;
      upstream.respond = (socket) => {
        round += 1;
        socket.end(`HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nround ${round}`);
      };
      const parts = [clientRequest(token), clientRequest(token, { close: true })];
      const bytes = await rawExchange(ks, [parts.join('')]);
      const responses = parseResponses(bytes);
      assert.deepEqual(responses.map((response) => response.body.toString()), ['round 1', 'round 2'], 'both requests get responses on one client connection');
      assert.deepEqual(fieldValues(responses[0], 'transfer-encoding'), ['chunked']);
      assert.deepEqual(fieldValues(responses[0], 'connection'), [], 'the client connection stays open');
      assert.deepEqual(upstream.requests.map((request) => request.connection), [1, 2], 'a connection the upstream closed is not reused');
    });

    test('upstream Connection close not pooled', async () => {
      // The upstream announces the close, reads nothing more, and closes a moment later, as
      // servers do. A request sent on that connection in the meantime would get no response.
      upstream.respond = (socket) => {
        socket.removeAllListeners('data');
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
        setTimeout(() => socket.destroy(), 300);
      };
      const first = parseResponses(await rawExchange(ks, [clientRequest(token, { close: true })]));
      const second = parseResponses(await rawExchange(ks, [clientRequest(token, { close: true })]));
      assert.equal(first[0].status, 200);
      assert.equal(second[0].status, 200, `the second request gets a response: ${second[0].body.toString()}`);
      assert.deepEqual(upstream.requests.map((request) => request.connection), [1, 2], 'the second request uses a new connection');
    });

    test('close in second upstream Connection field', async () => {
      // A close named in any Connection field, not only the first, ends the connection.
      upstream.respond = (socket) => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n'
          + 'Content-Length: 2\r\nConnection: close\r\n\r\n{}');
      };
      const first = parseResponses(await rawExchange(ks, [clientRequest(token, { close: true })]));
      const second = parseResponses(await rawExchange(ks, [clientRequest(token, { close: true })]));
      assert.equal(first[0].status, 200);
      assert.equal(second[0].status, 200);
      assert.deepEqual(upstream.requests.map((request) => request.connection), [1, 2], 'the second request uses a new connection');
    });

    test('close in second client Connection field', async () => {
      const request = clientRequest(token, { headers: ['Connection: keep-alive', 'Connection: close'] });
      const bytes = await rawExchange(ks, [request + clientRequest(token)]);
      const responses = parseResponses(bytes);
      assert.equal(responses.length, 1, 'only the request naming close gets a response');
      assert.deepEqual(fieldValues(responses[0], 'connection'), ['close']);
      assert.equal(upstream.requests.length, 1, 'the pipelined request after it never reaches the upstream');
    });

    test('requests after Connection close ignored', async () => {
      const parts = [clientRequest(token, { close: true }), clientRequest(token)];
      const bytes = await rawExchange(ks, [parts.join('')]);
      const responses = parseResponses(bytes);
      assert.equal(responses.length, 1, 'only the request with Connection: close gets a response');
      assert.equal(upstream.requests.length, 1, 'the pipelined request after it never reaches the upstream');
    });

    test('malformed request gets 400 and close', async () => {
      const bytes = await rawExchange(ks, ['POST /v1/resend/emails HTTP/1.1\r\nHost proxy.test\r\n\r\n']);
      const [response] = parseResponses(bytes);
      assert.equal(response.startLine, 'HTTP/1.1 400 Bad Request');
      assert.deepEqual(fieldValues(response, 'connection'), ['close']);
      assert.equal(JSON.parse(response.body.toString()).error.code, 'invalid_request');
      assert.equal(upstream.requests.length, 0);
    });

    test('lingering close ends after two seconds', async () => {
      // After a response with Connection: close the proxy half-closes and discards what the
      // client still sends for two seconds, so that the response is not lost to a reset.
      const { hostname, port } = new URL(ks.proxyUrl);
      const socket = net.connect(Number(port), hostname);
      let received = '';
      let endedAt;
      let writer;
      const closed = new Promise((resolve) => {
        socket.on('error', () => {});
        socket.on('close', resolve);
      });
      socket.on('data', (bytes) => {
        received += bytes.toString('latin1');
      });
      socket.on('end', () => {
        endedAt = performance.now();
        // Keep the client's half open and keep sending, as a client still uploading does.
        writer = setInterval(() => socket.write('x'.repeat(100)), 100);
      });
      socket.allowHalfOpen = true;
      socket.write(clientRequest(token, { close: true }));
      await closed;
      clearInterval(writer);
      const lingeredMs = performance.now() - endedAt;
      assert.match(received, /^HTTP\/1\.1 200 OK\r\n/, 'the response arrives whole before the close');
      assert.ok(received.endsWith('{"id":"email-1"}'), 'the response body is complete');
      assert.ok(lingeredMs >= 1800, `the proxy reads on for about two seconds: ${lingeredMs} ms`);
      assert.ok(lingeredMs < 4000, `the proxy closes after about two seconds: ${lingeredMs} ms`);
    });

    test('slow upstream header keeps the client', async () => {
      upstream.respond = async (socket) => {
        await sleep(1500);
        respondWithJson(socket);
      };
      const parts = [clientRequest(token), clientRequest(token, { close: true })];
      const bytes = await rawExchange(ks, [parts.join('')]);
      const responses = parseResponses(bytes);
      assert.deepEqual(responses.map((response) => response.status), [200, 200], 'both requests get responses after the waits');
    });

    // Sends a request through `proxy`, hangs up after the first bytes of a 400,000-byte response
    // that the upstream writes over about 400 ms, and resolves whether the upstream's connection
    // was closed before it wrote the last piece.
    async function hangUpMidResponse(proxy, agentToken) {
      let finished;
      const upstreamFinished = new Promise((resolve) => {
        finished = resolve;
      });
      upstream.respond = async (socket) => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 400000\r\n\r\n');
        for (let i = 0; i < 40; ++i) {
          if (i > 0) {
            await sleep(10);
          }
          if (socket.destroyed) {
            break;
          }
          socket.write('x'.repeat(10000));
        }
        // Checked before the last piece can arrive, after which the proxy closes the connection.
        finished(socket.destroyed);
      };
      const { hostname, port } = new URL(proxy.proxyUrl);
      const client = net.connect(Number(port), hostname);
      client.on('error', () => {});
      client.write(clientRequest(agentToken));
      await new Promise((resolve) => client.once('data', resolve));
      client.destroy();
      const closedEarly = await upstreamFinished;
      upstream.respond = respondWithJson;
      return closedEarly;
    }

    test('client hang-up drains upstream response', async () => {
      assert.equal(await hangUpMidResponse(ks, token), false, 'the proxy keeps reading the upstream after the client left');
      const next = parseResponses(await rawExchange(ks, [clientRequest(token, { close: true })]));
      assert.equal(next[0].status, 200, 'the proxy keeps serving');
      assert.equal(upstream.requests.at(-1).connection, 2, 'the drained connection is not reused');
    });

    test('zero abort drain closes upstream', async () => {
      const extraArgs = ['--threads', '1', '--abort-drain-timeout', '0'];
      if (secure) {
        extraArgs.push('--upstream-ca-file', caFile);
      }
      const noDrain = await startKeystore({ upstreams: { resend: upstream.url, openai: upstream.url }, extraArgs });
      try {
        const provisioned = await provision(noDrain, { keys: { resend: kResendKey, openai: kOpenAiKey } });
        assert.equal(
          await hangUpMidResponse(noDrain, provisioned.token),
          true,
          'the proxy closed the upstream connection before the response ended',
        );
        const next = parseResponses(await rawExchange(noDrain, [clientRequest(provisioned.token, { close: true })]));
        assert.equal(next[0].status, 200, 'the proxy keeps serving');
      } finally {
        await noDrain.close();
      }
    });
  });
}

describeRelay('relay over plain upstream', { secure: false });
describeRelay('relay over TLS upstream', { secure: true });
