// The HTTP API from the browser: same-origin fetch with the session cookie,
// the CSRF token on every state-changing request, and API errors turned into
// ApiError with the server's own message.

let csrfToken = null;
let onUnauthenticated = () => {};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function setCsrfToken(token) {
  csrfToken = token;
}

// For requests made without fetch (an upload through XMLHttpRequest).
export function currentCsrfToken() {
  return csrfToken;
}

export function setUnauthenticatedHandler(fn) {
  onUnauthenticated = fn;
}

export async function request(method, path, body, { quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch('/api/v1' + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'Cannot reach the server: ' + e.message);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    const message = err.message || `${res.status} ${res.statusText}`;
    const e = new ApiError(res.status, err.code || 'http_error', message);
    if (res.status === 401 && !quiet401) onUnauthenticated(e);
    throw e;
  }
  return data;
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body = {}) => request('POST', path, body);
export const patch = (path, body) => request('PATCH', path, body);
export const put = (path, body) => request('PUT', path, body);
export const del = (path) => request('DELETE', path);

// Builds a query string from the defined values of `params`.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;

export function buildPath(app, rel, n) {
  return `/applications/${enc(app)}/releases/${enc(rel)}/builds/${enc(n)}`;
}
