// Saved searches (shared by a project's team, kept by the server) and the query
// history (this browser's own, in localStorage, per key id).
//
// Readers list and open saved searches; keys that manage the project save, replace
// and delete them (the server decides; the buttons only follow `can`).

import { api, can, enc, ApiError, currentSession } from './api.js';
import { h, dialog, toast, fieldErrors, errorView } from './ui.js';
import { addToDashboardButton } from './dashedit.js';

// One history per key id, so that people sharing a browser do not see each
// other's queries (the id is public; the key itself is never stored).
function historyKey() {
  const session = currentSession();
  return `logpool.queryHistory.${session ? session.key_id : ''}`;
}
// Queries kept in the history, newest first.
export const HISTORY_SIZE = 20;

function savedPath(project, id) {
  const base = `/v1/projects/${enc(project)}/saved-searches`;
  return id === undefined ? base : `${base}/${enc(id)}`;
}

// The hash of the search page that a saved search opens.
export function searchHash(saved, project) {
  const query = new URLSearchParams();
  query.set('project', project);
  if (saved.pool) query.set('pool', saved.pool);
  if (saved.query) query.set('q', saved.query);
  query.set('from', saved.from);
  query.set('to', saved.to);
  if (saved.columns && saved.columns.length) query.set('cols', saved.columns.join(','));
  query.set('saved', saved.id);
  return `#/search?${query}`;
}

// ------------------------------------------------------------ history

export function queryHistory() {
  try {
    const stored = JSON.parse(localStorage.getItem(historyKey()) || '[]');
    return Array.isArray(stored) ? stored.filter((q) => typeof q === 'string') : [];
  } catch { return []; }
}

// Puts `query` first in the history (once), keeping the newest HISTORY_SIZE.
export function rememberQuery(query) {
  const text = (query || '').trim();
  if (!text) return;
  const next = [text, ...queryHistory().filter((q) => q !== text)].slice(0, HISTORY_SIZE);
  try { localStorage.setItem(historyKey(), JSON.stringify(next)); } catch { /* storage full or off */ }
}

// ------------------------------------------------------------ save action

// The search page's "Save" button: `current()` gives { project, pool, query, from,
// to, columns }. With `savedId` (a search opened from the list) it offers to
// replace that one too.
export function saveButton(current, savedId) {
  if (!can('manage_project')) return null;
  return h('button', { type: 'button', class: 'secondary', name: 'save-search', onclick: () => openSaveDialog(current(), savedId) }, 'Save');
}

function openSaveDialog(search, savedId) {
  const name = h('input', { name: 'saved-name', 'aria-label': 'Name', required: true, maxlength: 100, class: 'grow' });
  const formErrors = h('div');
  const body = h('div', {}, h('label', { class: 'field' }, 'Name ', name),
    h('p', { class: 'muted' }, `Query, time range (${search.from} → ${search.to}) and columns are saved for project ${search.project}.`),
    formErrors);
  const errors = fieldErrors({ name }, formErrors);
  const payload = () => ({ name: name.value, query: search.query, from: search.from, to: search.to,
    pool: search.pool, columns: search.columns || [] });
  const done = (saved) => {
    box.close();
    toast(`Saved “${saved.name}”.`);
    location.hash = searchHash(saved, search.project);
  };
  const submit = async (method, path) => {
    errors.clear();
    try { done(await api(method, path, payload())); } catch (error) { errors.report(error); }
  };
  const actions = [
    h('button', { type: 'button', name: 'saved-create', onclick: () => submit('POST', savedPath(search.project)) }, 'Save as new'),
    savedId ? h('button', { type: 'button', class: 'secondary', name: 'saved-replace', onclick: () => submit('PUT', savedPath(search.project, savedId)) }, 'Replace opened search') : null,
    h('button', { type: 'button', class: 'secondary', onclick: () => box.close() }, 'Cancel'),
  ];
  const box = dialog('Save search', body, actions);
  name.focus();
}

// ------------------------------------------------------------ saved searches page

export async function savedPage(main, params) {
  const projects = (await api('GET', '/v1/projects')).projects;
  if (!projects.length) {
    main.replaceChildren(h('h1', {}, 'Saved searches'), h('div', { class: 'empty panel' }, 'No projects yet.'));
    return;
  }
  const project = projects.some((p) => p.name === params.project) ? params.project : projects[0].name;
  if (params.project && project !== params.project) {
    main.replaceChildren(h('h1', {}, 'Saved searches'), h('div', { class: 'error panel', role: 'alert' },
      `Project ${params.project} does not exist or this key cannot see it.`));
    return;
  }
  const select = h('select', { name: 'project', 'aria-label': 'Project', onchange: () => { location.hash = `#/saved?project=${enc(select.value)}`; } },
    projects.map((p) => h('option', { value: p.name, selected: p.name === project }, p.name)));
  const list = h('tbody');
  const errors = h('div');
  main.replaceChildren(h('h1', {}, 'Saved searches'),
    h('div', { class: 'panel row' }, h('label', {}, 'Project ', select),
      h('span', { class: 'muted' }, can('manage_project') ? 'Save a search from the Search page.' : 'Your key can open saved searches; project admins save them.')),
    errors,
    h('div', { class: 'panel' }, h('table', { class: 'saved-searches' },
      h('thead', {}, h('tr', {}, ['Name', 'Query', 'Range', 'Columns', 'Saved by', 'Changed', ''].map((t) => h('th', {}, t)))), list)));
  let saved;
  try { saved = (await api('GET', savedPath(project))).saved_searches; } catch (error) {
    errors.replaceChildren(errorView(error));
    return;
  }
  if (!saved.length) {
    list.replaceChildren(h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No saved searches in this project yet.')));
    return;
  }
  list.replaceChildren(...saved.map((s) => h('tr', { dataset: { id: s.id } },
    h('td', {}, h('a', { href: searchHash(s, project), class: 'saved-open' }, s.name)),
    h('td', { class: 'mono' }, s.query || '*'),
    h('td', { class: 'mono' }, `${s.from} → ${s.to}`),
    h('td', {}, (s.columns || []).join(', ') || '—'),
    h('td', { class: 'mono', title: 'key id' }, s.updated_by === s.created_by ? s.created_by : `${s.created_by}, ${s.updated_by}`),
    h('td', {}, new Date(s.updated_at).toLocaleString()),
    h('td', {}, addToDashboardButton(() => ({ project, pool: s.pool, query: s.query, from: s.from, to: s.to, title: s.name,
      columns: s.columns, kinds: ['histogram', 'count', 'table'] })), ' ', can('manage_project') ? h('button', { type: 'button', class: 'secondary', onclick: async () => {
      if (!window.confirm(`Delete the saved search “${s.name}”?`)) return;
      try { await api('DELETE', savedPath(project, s.id)); toast(`Deleted “${s.name}”.`); await savedPage(main, { project }); } catch (error) {
        errors.replaceChildren(errorView(error));
      }
    } }, 'Delete') : null))));
}

// Loads a saved search named in the search page's URL (`saved=<id>`), for its name.
export async function openedSaved(project, id) {
  if (!id) return null;
  try { return await api('GET', savedPath(project, id)); } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}
