// The proxy's three timeouts, set short with the serve flags: an upstream that never sends its
// response header, a body that falls silent halfway, and an agent that never finishes its
// request header. A wait on the upstream that outlasts the stream idle timeout must not cost
// the agent its connection, because that timeout applies only while bytes are expected.

import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, beforeEach, describe, test } from 'node:test';

import { makeTempDir, provision, startKeystore, waitForLedger } from '../harness/keystore.mjs';
import { kResendKey } from '../harness/secrets.mjs';

const kEmailsPath = '/v1/resend/emails';
const kEmail = JSON.stringify({ from: 'a@example.test', to: 'b@example.test', subject: 's', text: 't' });
const kTimeoutMs = 1000;
// Deadlines are swept every 100 ms; the rest is slack for a busy test machine.
const kLateMs = 1500;

// An upstream whose behaviour per request the current test sets in `respond(socket)`.
async function startScriptedUpstream() {
  const upstream = {
    respond: () => {},
    requests: 0,
    sockets: new Set(),
  };
  const server = net.createServer((socket) => {
    upstream.sockets.add(socket);
    socket.on('close', () => upstream.sockets.delete(socket));
    socket.on('error', () => {});
    let pending = '';
    socket.on('data', (bytes) => {
      pending += bytes.toString('latin1');
      const headEnd = pending.indexOf('\r\n\r\n');
      if (headEnd < 0) {
        return;
      }
      const length = Number(/content-length:\s*(\d+)/i.exec(pending.slice(0, headEnd))?.[1] ?? 0);
      if (pending.length < headEnd + 4 + length) {
        return;
      }
      pending = pending.slice(headEnd + 4 + length);
      upstream.requests += 1;
      upstream.respond(socket);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.url = `http://127.0.0.1:${server.address().port}`;
  upstream.close = () => {
    for (const socket of upstream.sockets) {
      socket.destroy();
    }
    return new Promise((resolve) => server.close(resolve));
  };
  return upstream;
}

// Writes `request` on a new connection to the proxy and resolves with every byte received and
// the milliseconds until the proxy ended the connection.
function exchange(ks, request) {
  const { hostname, port } = new URL(ks.proxyUrl);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect(Number(port), hostname);
    const pieces = [];
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error('the proxy did not end the connection within 10 s'));
    }, 10000);
    socket.on('error', reject);
    socket.on('data', (bytes) => pieces.push(bytes));
    socket.on('end', () => {
      clearTimeout(guard);
      socket.destroy();
      resolve({ text: Buffer.concat(pieces).toString('latin1'), elapsedMs: performance.now() - started });
    });
    socket.on('connect', () => socket.write(request));
  });
}

function emailRequest(token) {
  return [
    `POST ${kEmailsPath} HTTP/1.1`,
    'Host: proxy.test',
    `Authorization: Bearer ${token}`,
    'Content-Type: application/json',
    `Content-Length: ${kEmail.length}`,
    'Connection: close',
    '',
    kEmail,
  ].join('\r\n');
}

describe('proxy timeouts', () => {
  let dataDir;
  let upstream;
  let ks;
  let token;
  let projectId;

  before(async () => {
    dataDir = await makeTempDir();
    upstream = await startScriptedUpstream();
    ks = await startKeystore({
      dataDir,
      upstreams: { resend: upstream.url },
      extraArgs: [
        '--upstream-timeout', `${kTimeoutMs}ms`,
        '--stream-idle-timeout', `${kTimeoutMs}ms`,
        '--client-header-timeout', `${kTimeoutMs}ms`,
      ],
    });
    ({ token, projectId } = await provision(ks, { keys: { resend: kResendKey } }));
  });

  after(async () => {
    await ks?.close();
    await upstream?.close();
    if (dataDir) {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  beforeEach(() => {
    upstream.respond = () => {};
  });

  test('silent upstream is 504 upstream_timeout', async () => {
    upstream.respond = () => {};  // reads the request and never responds

    const { text, elapsedMs } = await exchange(ks, emailRequest(token));

    assert.match(text, /^HTTP\/1\.1 504 /);
    assert.match(text, /"code":"upstream_timeout"/);
    assert.ok(elapsedMs >= kTimeoutMs - 50, `answered after ${elapsedMs} ms, before the timeout`);
    assert.ok(elapsedMs < kTimeoutMs + kLateMs, `answered after ${elapsedMs} ms`);
    const rows = await waitForLedger(ks, projectId, 1);
    assert.equal(rows[0].outcome, 'upstream_timeout');
    assert.equal(rows[0].upstream_status, 0);
  });

  test('upstream wait longer than idle timeout succeeds', async () => {
    // The final response comes 1.2 s after the request, later than the 1 s stream idle
    // timeout. An interim 103 at 0.6 s keeps each wait for a response header under the 1 s
    // upstream timeout, which applies to each header on its own.
    upstream.respond = (socket) => {
      setTimeout(() => socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n'), 600);
      setTimeout(() => {
        const body = '{"id":"email-1"}';
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      }, 1200);
    };

    const { text, elapsedMs } = await exchange(ks, emailRequest(token));

    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.ok(text.endsWith('{"id":"email-1"}'), text);
    assert.ok(elapsedMs >= 1200, `answered after ${elapsedMs} ms`);
  });

  test('stalled body is cut after idle timeout', async () => {
    upstream.respond = (socket) => {
      // A declared body of 100 bytes of which only 10 ever come.
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id":"em');
    };

    const { text, elapsedMs } = await exchange(ks, emailRequest(token));

    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /content-length: 100\r\n/i);
    assert.ok(text.endsWith('\r\n\r\n{"id":"em'), `the client got the 10 bytes and no more: ${text}`);
    assert.ok(elapsedMs >= kTimeoutMs - 50, `closed after ${elapsedMs} ms, before the timeout`);
    assert.ok(elapsedMs < kTimeoutMs + kLateMs, `closed after ${elapsedMs} ms`);
  });

  test('unfinished request header is closed', async () => {
    const { text, elapsedMs } = await exchange(ks, `POST ${kEmailsPath} HTTP/1.1\r\nHost: proxy.test\r\n`);

    assert.equal(text, '');
    assert.ok(elapsedMs >= kTimeoutMs - 50, `closed after ${elapsedMs} ms, before the timeout`);
    assert.ok(elapsedMs < kTimeoutMs + kLateMs, `closed after ${elapsedMs} ms`);
  });
});

describe('proxy timeout flags', () => {
  test('timeout under 500ms is rejected', async () => {
    const dataDir = await makeTempDir();
    try {
      await assert.rejects(
        startKeystore({ dataDir, extraArgs: ['--upstream-timeout', '100ms'] }),
        /--upstream-timeout '100ms' must be a duration of at least 500ms/,
      );
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('invalid abort drain timeout is rejected', async () => {
    const dataDir = await makeTempDir();
    try {
      await assert.rejects(
        startKeystore({ dataDir, extraArgs: ['--abort-drain-timeout', '-1s'] }),
        /--abort-drain-timeout '-1s' must be a duration, e.g. 0s, 30s or 2m/,
      );
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
