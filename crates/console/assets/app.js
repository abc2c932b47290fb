// Entry point: login, the header (who is logged in, the operator's tenant switcher,
// navigation) and the hash router. The whole state of a page is in the URL hash
// (`#/search?project=…&pool=…&q=…&from=…&to=…`), so a search can be shared; the API
// key is not, it stays in memory, or in the tab's session storage when the user
// chooses so at the login (see api.js).

import { ApiError, logIn, logOut, resumeTabSession, currentSession, onKeyRefused, can, tenant, switchTenant, api } from './api.js';
import { h } from './ui.js';
import { projectsPage } from './projects.js';
import { searchPage, analysisPage, tailPage, stopTail } from './pages.js';
import { keysPage, quotasPage, usagePage, TENANTS_CHANGED } from './admin.js';
import { savedPage } from './saved.js';
import { dashboardsPage } from './dashboards.js';
import { alertsPage } from './alerts.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const identity = document.getElementById('identity');
const tenantBox = document.getElementById('tenant-switcher');
const logout = document.getElementById('logout');

// Each page with the permission it needs; links to pages the key cannot use are
// hidden (the server refuses them anyway).
const PAGES = {
  projects: { show: projectsPage, needs: 'read' },
  search: { show: searchPage, needs: 'read' },
  saved: { show: savedPage, needs: 'read' },
  analysis: { show: analysisPage, needs: 'read' },
  dashboards: { show: dashboardsPage, needs: 'read' },
  alerts: { show: alertsPage, needs: 'read' },
  tail: { show: tailPage, needs: 'read' },
  keys: { show: keysPage, needs: 'manage_tenant' },
  quotas: { show: quotasPage, needs: 'read' },
  usage: { show: usagePage, needs: 'manage_tenant' },
};

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  return { page: path || 'projects', params: Object.fromEntries(new URLSearchParams(query || '')) };
}

function showHeader(loggedIn) {
  nav.hidden = !loggedIn;
  logout.hidden = !loggedIn;
  identity.hidden = !loggedIn;
  tenantBox.hidden = !loggedIn || !can('operate');
  if (!loggedIn) { identity.textContent = ''; tenantBox.textContent = ''; return; }
  const who = currentSession();
  identity.replaceChildren(
    h('span', { class: 'badge role' }, who.role),
    ` tenant ${who.tenant}`,
    who.project ? ` · project ${who.project}` : ' · all projects',
    h('span', { class: 'key-id' }, ` · key ${who.key_id}`));
  for (const link of nav.querySelectorAll('a')) link.hidden = !can(PAGES[link.dataset.nav].needs);
}

// The operator's tenant switcher: every call then acts in the chosen tenant.
async function loadTenantSwitcher() {
  if (!can('operate')) return;
  const tenants = (await api('GET', '/v1/tenants')).tenants;
  const select = h('select', { 'aria-label': 'Act in tenant', name: 'acting-tenant', onchange: () => {
    switchTenant(select.value);
    render();
  } }, tenants.map((t) => h('option', { value: t.name, selected: t.name === tenant() }, t.name)));
  tenantBox.replaceChildren(h('label', {}, 'Tenant ', select));
}

// The login page; `message` says why it is shown, as a warning when `warn` is set.
function loginPage(message, warn = false) {
  stopTail();
  showHeader(false);
  // Nothing of the previous session stays on screen.
  document.getElementById('toast').textContent = '';
  for (const open of document.querySelectorAll('dialog')) open.close();
  const key = h('input', { type: 'password', name: 'api-key', id: 'api-key', autocomplete: 'off', 'aria-label': 'API key', class: 'grow', required: true,
    'aria-describedby': 'login-error' });
  const error = h('p', { class: 'error', id: 'login-error', role: 'alert', hidden: true });
  const notice = message ? h('p', { class: warn ? 'warning' : 'notice', role: 'status' }, message) : null;
  const keep = h('input', { type: 'checkbox', name: 'keep-key', id: 'keep-key' });
  const submit = h('button', { type: 'submit' }, 'Log in');
  const form = h('form', { class: 'panel login', onsubmit: async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await logIn(key.value, keep.checked);
      key.value = '';
      await loadTenantSwitcher().catch(() => {});
      render();
    } catch (refusal) {
      key.setAttribute('aria-invalid', 'true');
      error.textContent = refusal instanceof ApiError && refusal.status === 401
        ? 'This key was refused: it is unknown, wrong, disabled or deleted.'
        : `Could not check the key: ${refusal.message}`;
      error.hidden = false;
      key.select();
    } finally { submit.disabled = false; }
  } }, h('h1', {}, 'Log in to logpool'), notice,
  h('p', { class: 'muted' }, 'Paste an API key. It is kept in this tab’s memory only, so reloading or closing the tab logs out, unless you tick the box below.'),
  h('div', { class: 'row' }, key, submit),
  h('p', {}, h('label', { for: 'keep-key' }, keep, ' Stay logged in in this tab until it closes (the key is kept in the tab’s session storage; Log out removes it)')),
  error);
  main.replaceChildren(form);
  key.focus();
}

async function render() {
  stopTail();
  if (!currentSession()) {
    // Keep a login page that is already up (with its message, e.g. "Logged out.").
    if (!main.querySelector('form.login')) loginPage();
    return;
  }
  showHeader(true);
  const { page, params } = parseHash();
  for (const link of nav.querySelectorAll('a')) link.classList.toggle('active', link.dataset.nav === page);
  const target = PAGES[page];
  if (!target) { main.replaceChildren(h('div', { class: 'empty panel' }, 'No such page. ', h('a', { href: '#/projects' }, 'Go to projects'))); return; }
  if (!can(target.needs)) {
    main.replaceChildren(h('div', { class: 'empty panel', role: 'alert' }, can('read')
      ? `A ${currentSession().role} key cannot open this page.`
      : `A ${currentSession().role} key can only put logs; the console needs a key that can read.`));
    return;
  }
  // Each render draws into a view of its own: a page still loading when the user
  // logs out or moves on then fills a view that is no longer on screen, instead of
  // replacing the login page or the next page.
  const view = h('div', { class: 'view' });
  main.replaceChildren(view);
  try {
    await target.show(view, params);
  } catch (error) {
    // A refused key has already brought the login page back.
    if (error instanceof ApiError && error.status === 401) return;
    const message = error instanceof ApiError && error.status === 403 ? `Not allowed: ${error.message}` : (error.message || String(error));
    view.replaceChildren(h('div', { class: 'error panel', role: 'alert' }, message));
  }
}

onKeyRefused(() => loginPage('Your key is no longer accepted (disabled or deleted); log in again.', true));
window.addEventListener(TENANTS_CHANGED, () => { loadTenantSwitcher().catch(() => {}); });
logout.addEventListener('click', () => {
  logOut();
  location.hash = '#/projects';
  loginPage('Logged out.');
});
window.addEventListener('hashchange', render);
// `/` jumps to the page's query box (search, analysis or tail), as in most log tools.
document.addEventListener('keydown', (e) => {
  if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.closest('input, textarea, select, [contenteditable]')) return;
  const box = main.querySelector('input[name=query], textarea[name=sql], input[name=tail-query]');
  if (box) { e.preventDefault(); box.focus(); box.select(); }
});
resumeTabSession().then(async (who) => {
  if (who) await loadTenantSwitcher().catch(() => {});
  render();
});
