// Entry point: login, navigation and the hash router. The whole state of a page is
// in the URL hash (`#/search?project=…&pool=…&q=…&from=…&to=…`), so a search can
// be shared; the API key is not, it stays in memory.

import { api, ApiError, setKey, hasKey, clearKey } from './api.js';
import { h, projectsPage, searchPage, analysisPage, tailPage, stopTail } from './pages.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const logout = document.getElementById('logout');

const PAGES = { projects: projectsPage, search: searchPage, analysis: analysisPage, tail: tailPage };

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  return { page: path || 'projects', params: Object.fromEntries(new URLSearchParams(query || '')) };
}

function loginPage(message) {
  const key = h('input', { type: 'password', name: 'api-key', autocomplete: 'off', 'aria-label': 'API key', class: 'grow', required: true });
  const errors = h('div', {}, message ? h('p', { class: 'error', role: 'alert' }, message) : null);
  const form = h('form', { class: 'panel login', onsubmit: async (e) => {
    e.preventDefault();
    setKey(key.value);
    try {
      await api('GET', '/v1/projects');
      render();
    } catch (error) {
      clearKey();
      errors.replaceChildren(h('p', { class: 'error', role: 'alert' },
        error instanceof ApiError && (error.status === 401 || error.status === 403) ? 'This key was refused.' : error.message));
    }
  } }, h('h1', {}, 'Log in to logpool'), h('p', { class: 'muted' }, 'Paste an API key. It is kept in this tab’s memory only.'),
  h('div', { class: 'row' }, key, h('button', { type: 'submit' }, 'Log in')), errors);
  nav.hidden = true;
  logout.hidden = true;
  main.replaceChildren(form);
  key.focus();
}

async function render() {
  stopTail();
  if (!hasKey()) { loginPage(); return; }
  nav.hidden = false;
  logout.hidden = false;
  const { page, params } = parseHash();
  for (const link of nav.querySelectorAll('a')) link.classList.toggle('active', link.dataset.nav === page);
  const show = PAGES[page];
  if (!show) { main.replaceChildren(h('div', { class: 'empty panel' }, 'No such page. ', h('a', { href: '#/projects' }, 'Go to projects'))); return; }
  try {
    await show(main, params);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) { clearKey(); loginPage('Your key is no longer accepted; log in again.'); return; }
    main.replaceChildren(h('div', { class: 'error panel', role: 'alert' }, error.message || String(error)));
  }
}

logout.addEventListener('click', () => { clearKey(); stopTail(); location.hash = '#/projects'; loginPage('Logged out.'); });
window.addEventListener('hashchange', render);
render();
