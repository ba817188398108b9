// The management API client of the dashboard. The browser authenticates with the HttpOnly
// ks_session cookie only: no API key or session token is ever held in script, storage or the
// DOM. Changing requests carry the CSRF token from the sign-in response, and every request names
// the organization the user acts in.

import type { Session } from './types';

// A failed API call, with the error code and message of the API's error body.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
  }
}

let csrfToken = '';
let organizationId = '';
let onSignedOut: (() => void) | undefined;

// Sets what every later request sends: the CSRF token and the selected organization.
export function setRequestContext(csrf: string, organization: string): void {
  csrfToken = csrf;
  organizationId = organization;
}

// Registers the function called when the server returns 401, so the app can show sign-in.
export function onSessionLost(handler: () => void): void {
  onSignedOut = handler;
}

async function errorFrom(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string; request_id?: string } };
    if (body.error?.code) {
      return new ApiError(response.status, body.error.code, body.error.message ?? '', body.error.request_id);
    }
  } catch {
    // Not JSON: fall through to a generic error naming the status.
  }
  return new ApiError(response.status, `http_${response.status}`, `the server returned ${response.status} ${response.statusText}`);
}

// Calls /api/v1`path` and returns the parsed JSON body (undefined for 204).
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') {
    headers['x-csrf-token'] = csrfToken;
  }
  if (organizationId) {
    headers['x-keystore-organization'] = organizationId;
  }
  let payload: string | undefined;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }

  let response: Response;
  try {
    response = await fetch(`/api/v1${path}`, { method, headers, body: payload, credentials: 'same-origin' });
  } catch (error) {
    throw new ApiError(0, 'network_error', `the request failed before a response arrived: ${String(error)}`);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401 && !path.startsWith('/auth/')) {
      onSignedOut?.();
    }
    throw error;
  }
  if (response.status === 204) {
    return undefined as T;
  }
  return (await response.json()) as T;
}

export function signIn(email: string, password: string): Promise<Session> {
  return api<Session>('POST', '/auth/login', { email, password });
}

export function signOut(): Promise<void> {
  return api<void>('POST', '/auth/logout');
}

export function loadSession(): Promise<Session> {
  return api<Session>('GET', '/auth/session');
}

// Encodes one path segment such as a project or agent id.
export function segment(value: string): string {
  return encodeURIComponent(value);
}
