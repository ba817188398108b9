// Shared machinery of the mock provider upstreams: an HTTP or HTTPS server on 127.0.0.1 that
// records every request (headers as parsed and as raw pairs, body as a Buffer, TLS server
// name) and applies the fault behaviours that a test sets before handing the request to the
// provider-specific handler.

import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';

// Bytes that no HTTP/1.1 parser accepts as a status line.
const kGarbageResponse = Buffer.from([
  0x00, 0xff, 0xfe, 0x13, 0x37, 0x0d, 0x0a, 0x47, 0x41, 0x52, 0x42, 0x41, 0x47, 0x45, 0x0d, 0x0a,
  0x0d, 0x0a, 0x80, 0x81, 0x82,
]);

// Fault behaviours a test can set with setBehavior(); every field is optional.
//   status           respond to every request with this status and a provider-shaped error body
//   reset            destroy the connection after reading the request, without a response
//   garbage          write bytes that are not HTTP and close the connection
//   redirect         respond 302 with this Location
//   echoCredential   respond 200 with the received credential in Set-Cookie, x-api-key,
//                    Authorization, api-key and x-echo-credential, and quoted in the body
//   responseHeaders  extra headers (object or raw [name, value] pairs) on every response
//   delayMs          wait this long before responding
//   sse              {events, intervalMs}: streamed responses send `events` content events,
//                    `intervalMs` apart
//   requireHost      respond 421 unless the Host header's host name equals this
//   requireSni       respond 421 unless the TLS server name equals this
const kDefaultBehavior = Object.freeze({});

function collectBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function hostNameOf(hostHeader) {
  if (hostHeader === undefined) {
    return undefined;
  }
  if (hostHeader.startsWith('[')) {
    return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  }
  const colon = hostHeader.lastIndexOf(':');
  return colon === -1 ? hostHeader : hostHeader.slice(0, colon);
}

// Flattens headers given as an object or as raw [name, value, ...] pairs into raw pairs.
function headerPairs(headers) {
  if (headers === undefined) {
    return [];
  }
  return Array.isArray(headers) ? headers : Object.entries(headers).flat();
}

function setHeaders(res, headers) {
  const pairs = headerPairs(headers);
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const name = pairs[i];
    const existing = res.getHeader(name);
    if (existing === undefined) {
      res.setHeader(name, pairs[i + 1]);
    } else {
      res.setHeader(name, [].concat(existing, pairs[i + 1]));
    }
  }
}

// Writes a JSON body with an exact Content-Length.
export function sendJson(res, status, value, headers = {}) {
  const body = Buffer.from(JSON.stringify(value));
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', String(body.length));
  setHeaders(res, headers);
  res.end(body);
}

// Returns the value of the Authorization header after "Bearer ", or null.
export function bearerCredential(req) {
  const value = req.headers.authorization;
  if (typeof value !== 'string' || !value.startsWith('Bearer ')) {
    return null;
  }
  const credential = value.slice('Bearer '.length);
  return credential.length > 0 ? credential : null;
}

// Decodes a JSON body; an empty body is undefined.
export function parseJsonBody(body) {
  if (body.length === 0) {
    return undefined;
  }
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new Error('request body is not valid JSON');
  }
}

// Decodes an application/x-www-form-urlencoded body into an object; a repeated field becomes
// an array of its values, in order.
export function parseFormBody(body) {
  const fields = {};
  for (const [name, value] of new URLSearchParams(body.toString('utf8'))) {
    if (name in fields) {
      fields[name] = [].concat(fields[name], value);
    } else {
      fields[name] = value;
    }
  }
  return fields;
}

// Returns the decoded user name and password of an `Authorization: Basic` header, or null.
export function basicCredential(req) {
  const value = req.headers.authorization;
  if (typeof value !== 'string' || !value.startsWith('Basic ')) {
    return null;
  }
  const decoded = Buffer.from(value.slice('Basic '.length), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) {
    return null;
  }
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Starts a recording server. `provider` supplies:
//   name                        used in logs and assertion messages
//   credentialOf(req)           the credential the request carries in the provider's scheme
//   errorBody(status, message)  the provider's error body for an HTTP status
//   parseBody(body, req)        optional: decodes the body Buffer into ctx.json, throwing an
//                               Error whose message becomes the 400 response; default JSON
//   handle(ctx)                 answers a request that passed the behaviours and the
//                               credential check; ctx = {req, res, body, json, mock, behavior}
// Options: tls = {key, cert} for HTTPS; expectedCredential makes any other credential a 401.
export async function startRecordingServer(provider, options = {}) {
  let behavior = kDefaultBehavior;
  let expectedCredential = options.expectedCredential;
  const requests = [];
  const sseLog = [];
  const sockets = new Set();
  let connections = 0;

  const mock = {
    name: provider.name,
    url: '',
    port: 0,
    requests,
    sseLog,
    get connections() {
      return connections;
    },
    get behavior() {
      return behavior;
    },
    setBehavior(next = {}) {
      behavior = Object.freeze({ ...next });
    },
    // Replaces the expectedCredential option; undefined accepts any credential.
    setExpectedCredential(value) {
      expectedCredential = value;
    },
    clear() {
      requests.length = 0;
      sseLog.length = 0;
      connections = 0;
    },
    // Records one SSE event as written, with the time it was written, and writes it.
    writeEvent(res, text) {
      const bytes = Buffer.from(text);
      sseLog.push({ at: performance.now(), bytes });
      res.write(bytes);
    },
    close() {
      return new Promise((resolve) => {
        for (const socket of sockets) {
          socket.destroy();
        }
        server.close(() => resolve());
      });
    },
  };

  async function onRequest(req, res) {
    const body = await collectBody(req);
    const record = {
      method: req.method,
      url: req.url,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body,
      servername: req.socket.servername,
      receivedAt: performance.now(),
    };
    requests.push(record);
    const current = behavior;

    if (current.delayMs) {
      await sleep(current.delayMs);
    }
    if (current.requireHost !== undefined && hostNameOf(req.headers.host) !== current.requireHost) {
      sendJson(res, 421, provider.errorBody(421, 'misdirected request: unexpected Host'));
      return;
    }
    if (current.requireSni !== undefined && req.socket.servername !== current.requireSni) {
      sendJson(res, 421, provider.errorBody(421, 'misdirected request: unexpected TLS server name'));
      return;
    }
    if (current.reset) {
      req.socket.resetAndDestroy?.() ?? req.socket.destroy();
      return;
    }
    if (current.garbage) {
      req.socket.end(kGarbageResponse);
      return;
    }

    const credential = provider.credentialOf(req);
    const expected = expectedCredential;
    if (credential === null || (expected !== undefined && credential !== expected)) {
      sendJson(res, 401, provider.errorBody(401, 'missing or invalid API key'));
      return;
    }

    if (current.redirect !== undefined) {
      res.statusCode = 302;
      res.setHeader('location', current.redirect);
      res.setHeader('content-length', '0');
      setHeaders(res, current.responseHeaders);
      res.end();
      return;
    }
    if (current.status !== undefined) {
      sendJson(
        res,
        current.status,
        provider.errorBody(current.status, `mock status ${current.status}`),
        current.responseHeaders,
      );
      return;
    }
    if (current.echoCredential) {
      sendJson(
        res,
        200,
        { echo: credential, note: `the upstream received ${credential}` },
        [
          'set-cookie', `session=${credential}; Path=/`,
          'x-api-key', credential,
          'authorization', `Bearer ${credential}`,
          'api-key', credential,
          'x-echo-credential', credential,
          ...headerPairs(current.responseHeaders),
        ],
      );
      return;
    }

    let json;
    try {
      json = provider.parseBody ? provider.parseBody(body, req) : parseJsonBody(body);
    } catch (error) {
      sendJson(res, 400, provider.errorBody(400, error.message));
      return;
    }
    setHeaders(res, current.responseHeaders);
    await provider.handle({ req, res, body, json, mock, behavior: current });
  }

  const listener = (req, res) => {
    onRequest(req, res).catch((error) => {
      if (!res.headersSent) {
        sendJson(res, 500, provider.errorBody(500, `mock failure: ${error.message}`));
      } else {
        res.destroy();
      }
    });
  };
  const server = options.tls
    ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, listener)
    : http.createServer(listener);
  server.keepAliveTimeout = 5000;
  server.on('connection', (socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // A TLS handshake failure is what some tests provoke; it must not crash the test process.
  server.on('tlsClientError', () => {});
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  mock.port = server.address().port;
  mock.url = `${options.tls ? 'https' : 'http'}://${options.tls ? 'localhost' : '127.0.0.1'}:${mock.port}`;
  return mock;
}

// Every value of a header in a recorded request, from the raw pairs (case-insensitive).
export function rawHeaderValues(record, name) {
  const wanted = name.toLowerCase();
  const values = [];
  for (let i = 0; i + 1 < record.rawHeaders.length; i += 2) {
    if (record.rawHeaders[i].toLowerCase() === wanted) {
      values.push(record.rawHeaders[i + 1]);
    }
  }
  return values;
}
