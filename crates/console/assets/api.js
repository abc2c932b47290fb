// The console's only way to the server: the public /v1 API, with the API key as a
// bearer token. The key is held in this module's memory and nowhere else.

let apiKey = null;

export function setKey(key) { apiKey = key; }
export function hasKey() { return apiKey !== null; }
export function clearKey() { apiKey = null; }

// An API error: status, stable code, message and the detail fields of the answer
// (`field`, `position`, ...).
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || 'http_error';
    this.detail = error;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export const enc = encodeURIComponent;

export function poolPath(project, pool) {
  return `/v1/projects/${enc(project)}/pools/${enc(pool)}`;
}

// Opens the live tail WebSocket. The tail has no per-request authentication yet;
// when API keys arrive, browsers (which cannot set headers on a WebSocket) will pass
// the key as `?token=` of the socket's own URL, never of the page's URL.
export function openTail(project, pool, params) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const query = new URLSearchParams(params);
  return new WebSocket(`${scheme}://${location.host}${poolPath(project, pool)}/tail?${query}`);
}
