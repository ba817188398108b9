// TEMPORARY test-only stand-in for the accounts backend, until its /api/v1/auth routes are merged
// into the admin listener. Delete this file and point the dashboard tests at the keystore
// admin listener directly once they are.
//
// It fronts a running keystore admin listener on its own loopback port and follows the sign-in
// contract: POST /api/v1/auth/login, POST /api/v1/auth/logout and GET /api/v1/auth/session with
// an HttpOnly ks_session cookie, X-CSRF-Token on every changing request and
// X-Keystore-Organization choosing one of the user's memberships. Every other /api request of a
// signed-in user is forwarded with the server's admin key, which never reaches the browser.
// Everything else (the dashboard's files) is forwarded unchanged.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';

const kSessionLifetimeMs = 12 * 60 * 60 * 1000;
// Operator-only routes, as the accounts backend enforces them with is_operator.
const kOperatorRoutes = [/^\/api\/v1\/pools(\/|$)/, /^\/api\/v1\/prices(\/|$)/, /^\/api\/v1\/concierge(\/|$|\?)/];

function sendError(response, status, code, message, extraHeaders = {}) {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...extraHeaders });
  response.end(JSON.stringify({ error: { type: 'keystore_error', code, message } }));
}

function sameText(a, b) {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function cookieValue(header, name) {
  for (const part of (header ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) {
      return rest.join('=');
    }
  }
  return undefined;
}

// Starts the shim. Options: adminUrl and adminKey of the keystore server; users, a list of
// {email, password, is_operator, memberships: [{organization_id, organization_name, role}]}.
// Returns {url, sessions, close()}.
export async function startAuthShim({ adminUrl, adminKey, users }) {
  const upstream = new URL(adminUrl);
  const sessions = new Map();
  const userRecords = users.map((user, index) => ({ id: `usr_test${index}`, ...user }));

  const sessionBody = (session) => ({
    user: { id: session.user.id, email: session.user.email, is_operator: Boolean(session.user.is_operator) },
    memberships: session.user.memberships,
    csrf_token: session.csrf,
    expires_at: new Date(session.expiresAt).toISOString(),
  });

  const currentSession = (request) => {
    const token = cookieValue(request.headers.cookie, 'ks_session');
    const session = token ? sessions.get(token) : undefined;
    if (!session || session.expiresAt < Date.now()) {
      return undefined;
    }
    return { token, session };
  };

  const forward = (request, response, body, headers) => {
    const outgoing = http.request(
      { host: upstream.hostname, port: upstream.port, method: request.method, path: request.url, headers },
      (answer) => {
        response.writeHead(answer.statusCode, answer.headers);
        answer.pipe(response);
      },
    );
    outgoing.on('error', (error) => sendError(response, 502, 'upstream_unreachable', `the keystore admin listener failed: ${error.message}`));
    outgoing.end(body);
  };

  const handleAuth = async (request, response, path) => {
    if (path === '/api/v1/auth/login' && request.method === 'POST') {
      let body;
      try {
        body = JSON.parse((await readBody(request)).toString('utf8'));
      } catch {
        sendError(response, 400, 'invalid_request', 'the body must be JSON');
        return;
      }
      const email = String(body.email ?? '').toLowerCase();
      const user = userRecords.find((candidate) => candidate.email.toLowerCase() === email);
      if (!user || !sameText(user.password, String(body.password ?? ''))) {
        sendError(response, 401, 'invalid_credentials', 'the email or password is wrong');
        return;
      }
      const token = `kss_${randomBytes(32).toString('hex')}`;
      const session = { user, csrf: randomBytes(24).toString('hex'), expiresAt: Date.now() + kSessionLifetimeMs };
      sessions.set(token, session);
      const answer = sessionBody(session);
      if (body.client === 'cli') {
        answer.session_token = token;
      }
      response.writeHead(200, {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'set-cookie': `ks_session=${token}; HttpOnly; SameSite=Strict; Path=/`,
      });
      response.end(JSON.stringify(answer));
      return;
    }
    if (path === '/api/v1/auth/logout' && request.method === 'POST') {
      const current = currentSession(request);
      if (current) {
        sessions.delete(current.token);
      }
      response.writeHead(204, { 'set-cookie': 'ks_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0' });
      response.end();
      return;
    }
    if (path === '/api/v1/auth/session' && request.method === 'GET') {
      const current = currentSession(request);
      if (!current) {
        sendError(response, 401, 'unauthenticated', 'not signed in');
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify(sessionBody(current.session)));
      return;
    }
    sendError(response, 404, 'not_found', `API route not found: ${path}`);
  };

  const handleApi = async (request, response, path) => {
    const current = currentSession(request);
    if (!current) {
      sendError(response, 401, 'unauthenticated', 'not signed in', { 'www-authenticate': 'Bearer' });
      return;
    }
    const { session } = current;
    if (request.method !== 'GET' && request.method !== 'HEAD' && !sameText(String(request.headers['x-csrf-token'] ?? ''), session.csrf)) {
      sendError(response, 403, 'csrf_failed', 'the X-CSRF-Token header is missing or wrong');
      return;
    }
    const organization = request.headers['x-keystore-organization'];
    if (organization && !session.user.memberships.some((membership) => membership.organization_id === organization)) {
      sendError(response, 403, 'forbidden', `not a member of organization ${organization}`);
      return;
    }
    if (!session.user.is_operator && kOperatorRoutes.some((pattern) => pattern.test(path))) {
      sendError(response, 403, 'forbidden', 'this route needs an operator');
      return;
    }
    const body = await readBody(request);
    const headers = { ...request.headers, authorization: `Bearer ${adminKey}`, host: upstream.host };
    delete headers.cookie;
    delete headers['x-csrf-token'];
    forward(request, response, body, headers);
  };

  const server = http.createServer((request, response) => {
    const path = new URL(request.url, 'http://shim').pathname;
    let work;
    if (path.startsWith('/api/v1/auth/')) {
      work = handleAuth(request, response, path);
    } else if (path.startsWith('/api/')) {
      work = handleApi(request, response, path);
    } else {
      work = readBody(request).then((body) => forward(request, response, body, { ...request.headers, host: upstream.host }));
    }
    work.catch((error) => sendError(response, 500, 'internal', String(error)));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    sessions,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
