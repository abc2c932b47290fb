// The console's only way to the server: the public /v1 API, with the API key as a
// bearer token. The key is held in this module's memory; only when the user asks for
// it at the login is it also kept in the tab's session storage, so that a reload
// does not log out (it is gone when the tab closes, and logging out removes it). It
// is never put into the URL, local storage or a cookie.

// Where a key kept for the tab's session lives (sessionStorage: this tab only).
const TAB_SESSION_ITEM = 'logpool.api-key';

let apiKey = null;
// What `GET /v1/whoami` said about the key: { key_id, role, tenant, project }.
let session = null;
// The tenant an operator acts in (sent as `X-Logpool-Tenant`); null = its own.
let actingTenant = null;
// Called once when the server refuses the key of a logged-in session (disabled or
// deleted meanwhile), so that the app can return to the login page.
let onRefused = () => {};

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

async function send(key, method, path, body) {
  const headers = { Accept: 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (actingTenant) headers['X-Logpool-Tenant'] = actingTenant;
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

// Checks `key` with `GET /v1/whoami` and, when accepted, keeps it as the session's.
// Throws the ApiError (401 for a refused key) otherwise, keeping nothing.
// `keepForTab` keeps the key in the tab's session storage (the user's choice).
export async function logIn(key, keepForTab = false) {
  const who = await send(key, 'GET', '/v1/whoami');
  apiKey = key;
  session = who;
  actingTenant = null;
  try {
    if (keepForTab) sessionStorage.setItem(TAB_SESSION_ITEM, key);
    else sessionStorage.removeItem(TAB_SESSION_ITEM);
  } catch { /* storage refused: the key stays in memory only */ }
  return who;
}

export function logOut() {
  apiKey = null;
  session = null;
  actingTenant = null;
  try { sessionStorage.removeItem(TAB_SESSION_ITEM); } catch { /* nothing kept */ }
}

// Logs in again with a key kept for this tab, if any; a refused one is dropped.
export async function resumeTabSession() {
  let key = null;
  try { key = sessionStorage.getItem(TAB_SESSION_ITEM); } catch { return null; }
  if (!key) return null;
  try { return await logIn(key, true); } catch (error) {
    if (error instanceof ApiError && error.status === 401) logOut();
    return null;
  }
}

export function currentSession() { return session; }
export function onKeyRefused(handler) { onRefused = handler; }

export async function api(method, path, body) {
  if (!apiKey) throw new ApiError(401, { error: { message: 'not logged in' } });
  try {
    return await send(apiKey, method, path, body);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && session) {
      logOut();
      onRefused(error);
    }
    throw error;
  }
}

// ------------------------------------------------------------------ roles

// Which role holds which permission: the same table as the server's `Role::grants`,
// used only to hide what a key cannot do; the server still decides every call.
const GRANTS = {
  read: ['operator', 'tenant_admin', 'project_admin', 'reader'],
  ingest: ['operator', 'tenant_admin', 'project_admin', 'writer'],
  manage_project: ['operator', 'tenant_admin', 'project_admin'],
  manage_tenant: ['operator', 'tenant_admin'],
  operate: ['operator'],
};

export function can(permission) {
  return Boolean(session && (GRANTS[permission] || []).includes(session.role));
}

// ---------------------------------------------------------------- tenants

// The tenant the console acts in: the key's own, or the one an operator switched to.
export function tenant() { return actingTenant || (session && session.tenant); }

export function switchTenant(name) {
  if (!can('operate')) return;
  actingTenant = name && name !== session.tenant ? name : null;
}

export const enc = encodeURIComponent;

export function tenantPath(suffix) {
  return `/v1/tenants/${enc(tenant())}${suffix}`;
}

export function poolPath(project, pool) {
  return `/v1/projects/${enc(project)}/pools/${enc(pool)}`;
}

// Whether a live tail can be opened: browsers cannot set headers on a WebSocket, so
// an operator acting in another tenant has no way to name it on the socket.
export function tailAvailable() { return !actingTenant; }

// Opens the live tail WebSocket. Browsers cannot set headers on a WebSocket, so the
// key goes as a subprotocol entry (`logpool.key.<key>`), never in a URL; offering
// `logpool.tail.v1` also makes the server report a bad filter in-band (an `error`
// frame and the close reason) instead of an HTTP answer the browser would hide.
export const TAIL_PROTOCOL = 'logpool.tail.v1';
export function openTail(project, pool, params) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const query = new URLSearchParams(params);
  return new WebSocket(`${scheme}://${location.host}${poolPath(project, pool)}/tail?${query}`,
    [TAIL_PROTOCOL, `logpool.key.${apiKey || ''}`]);
}

// Starts an export (`POST .../export`) and answers the raw response, so the caller
// can read its headers and save its body; errors are ApiErrors as for `api`.
export async function exportSearch(path, body) {
  if (!apiKey) throw new ApiError(401, { error: { message: 'not logged in' } });
  const headers = { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' };
  if (actingTenant) headers['X-Logpool-Tenant'] = actingTenant;
  const response = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body) });
  if (!response.ok) {
    let parsed = null;
    try { parsed = await response.json(); } catch { parsed = null; }
    throw new ApiError(response.status, parsed);
  }
  return response;
}
