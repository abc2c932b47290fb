// The projects page: projects and their pools (create, edit, delete), each pool with
// its live statistics and ingest rate. What the key's role cannot do is not offered;
// the server still checks every call, and its 403 is shown if reached.

import { api, can, poolPath, enc } from './api.js';
import { h, toast, errorView, dialog, formatBytes, formatAge, formatRate } from './ui.js';

// The ingest rate is the difference of two stats reads this far apart.
const RATE_WINDOW_MS = 5000;

export async function projectsPage(main) {
  const projects = (await api('GET', '/v1/projects')).projects;
  main.replaceChildren(h('h1', {}, 'Projects'));
  if (can('manage_tenant')) main.appendChild(createProjectForm(main));
  if (!projects.length) {
    main.appendChild(h('div', { class: 'empty panel' }, can('manage_tenant')
      ? 'No projects yet. Create one above, then a pool to send logs to.'
      : 'No projects visible to this key.'));
  }
  const watched = [];
  for (const project of projects) main.appendChild(await projectPanel(main, project, watched));
  watchPoolStats(watched);
}

function createProjectForm(main) {
  const nameInput = h('input', { name: 'project-name', placeholder: 'new-project', 'aria-label': 'New project name', required: true });
  const errors = h('div');
  const form = h('form', { class: 'row panel', onsubmit: async (e) => {
    e.preventDefault();
    errors.textContent = '';
    try {
      await api('POST', '/v1/projects', { name: nameInput.value.trim() });
      toast(`Project ${nameInput.value} created`);
      await projectsPage(main);
    } catch (error) { errors.replaceChildren(errorView(error)); }
  } }, h('label', {}, 'Project name ', nameInput), h('button', { type: 'submit' }, 'Create project'), errors);
  return form;
}

function hintsText(hints) {
  return Object.entries(hints || {}).map(([k, v]) => `${k}:${v}`).join(', ');
}

function parseHints(text) {
  const hints = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, type] = part.split(':').map((s) => s.trim());
    hints[name] = type;
  }
  return hints;
}

// "12,345 records · backlog 0 · newest 3 s old · 3.2 MB"
function statsText(stats) {
  const parts = [`${stats.records.toLocaleString('en-US')} records`];
  for (const [subscription, backlog] of Object.entries(stats.backlog || {})) {
    const name = subscription === 'loghub' ? 'backlog' : `${subscription} backlog`;
    parts.push(`${name} ${backlog.messages.toLocaleString('en-US')}`);
  }
  if (stats.lag && Number.isFinite(stats.lag.newest_record_age_ms)) parts.push(`newest ${formatAge(stats.lag.newest_record_age_ms)} old`);
  if (Number.isFinite(stats.storage_bytes)) parts.push(formatBytes(stats.storage_bytes));
  return parts.join(' · ');
}

// The ingest rate between two reads, each stamped with the middle of its round trip.
export function ingestRate(earlier, later) {
  const seconds = (later.at - earlier.at) / 1000;
  if (!(seconds > 0)) return null;
  return {
    seconds,
    records: Math.max(0, later.stats.records - earlier.stats.records) / seconds,
  };
}

async function readStats(project, pool) {
  const sent = performance.now();
  const stats = await api('GET', `${poolPath(project, pool)}/stats`);
  return { stats, at: (sent + performance.now()) / 2 };
}

// Reads every watched pool's stats now and then every RATE_WINDOW_MS, showing the
// numbers and the rate over the last window. Stops once the page is left (its lines
// are no longer in the document) or the session ends (a call fails with 401).
function watchPoolStats(watched) {
  if (!watched.length) return;
  const previous = new Map();
  const round = async () => {
    const live = watched.filter((w) => w.line.isConnected);
    if (!live.length) return;
    let loggedOut = false;
    await Promise.all(live.map(async (w) => {
      try {
        const read = await readStats(w.project, w.pool);
        w.line.textContent = statsText(read.stats);
        w.line.title = 'Backlog: queue batches put but not yet indexed (or archived). Newest: event time of the newest indexed record.';
        const before = previous.get(w);
        previous.set(w, read);
        const rate = before && ingestRate(before, read);
        if (rate) {
          // Only the indexed rate: a shard's end position counts messages on the
          // embedded queue but is an opaque message id on Pulsar, so a queued rate
          // derived from it would be meaningless there.
          w.rate.textContent = `ingest ${formatRate(rate.records)} records/s indexed (measured over the last ${rate.seconds.toFixed(1)} s)`;
          w.rate.dataset.recordsPerS = rate.records.toFixed(3);
        }
      } catch (error) {
        if (error.status === 401) loggedOut = true;
        w.line.textContent = `stats unavailable: ${error.message || error}`;
      }
    }));
    if (!loggedOut) setTimeout(round, RATE_WINDOW_MS);
  };
  round();
}

async function projectPanel(main, project, watched) {
  const pools = (await api('GET', `/v1/projects/${enc(project.name)}/pools`)).pools;
  const manage = can('manage_project');
  const rows = pools.map((pool) => {
    const line = h('div', { class: 'muted pool-stats', 'aria-live': 'polite' }, 'loading stats…');
    const rate = h('div', { class: 'muted pool-rate' }, `ingest rate: measuring over ${RATE_WINDOW_MS / 1000} s…`);
    watched.push({ project: project.name, pool: pool.name, line, rate });
    return h('tr', { dataset: { pool: pool.name } },
      h('td', {}, h('strong', {}, pool.name), line, rate),
      h('td', {}, String(pool.shards ?? (pool.partitions || []).length)),
      h('td', {}, `${pool.retention_days} d`),
      h('td', { class: 'mono' }, hintsText(pool.field_hints) || '—'),
      h('td', {}, h('span', { class: 'row' },
        h('a', { href: `#/search?project=${enc(project.name)}&pool=${enc(pool.name)}` }, 'Search'),
        h('a', { href: `#/tail?project=${enc(project.name)}&pool=${enc(pool.name)}` }, 'Tail'),
        manage ? h('button', { type: 'button', class: 'secondary', onclick: () => editPool(main, project, pool) }, 'Edit') : null,
        manage ? h('button', { type: 'button', class: 'danger', onclick: () => confirmDelete(main, project, pool) }, 'Delete') : null)));
  });
  return h('section', { class: 'panel', dataset: { project: project.name } },
    h('div', { class: 'row' }, h('h2', { class: 'grow' }, project.name),
      can('manage_tenant') ? h('button', { type: 'button', class: 'danger', onclick: () => confirmDelete(main, project) }, 'Delete project') : null),
    project.description ? h('p', { class: 'muted' }, project.description) : null,
    pools.length
      ? h('table', {}, h('thead', {}, h('tr', {}, ['Pool', 'Shards', 'Retention', 'Field hints', ''].map((t) => h('th', {}, t)))), h('tbody', {}, rows))
      : h('p', { class: 'muted' }, 'No pools in this project yet.'),
    manage ? createPoolForm(main, project) : null);
}

function createPoolForm(main, project) {
  const poolName = h('input', { name: 'pool-name', placeholder: 'pool name', 'aria-label': `New pool name in ${project.name}`, required: true });
  const shards = h('input', { name: 'shards', type: 'number', min: 1, max: 64, value: 2, 'aria-label': 'Shards', class: 'narrow' });
  const retention = h('input', { name: 'retention', type: 'number', min: 1, value: 7, 'aria-label': 'Retention days', class: 'narrow' });
  const hints = h('input', { name: 'hints', placeholder: 'status:long, host:keyword', 'aria-label': 'Field hints' });
  const errors = h('div');
  const form = h('form', { class: 'row', onsubmit: async (e) => {
    e.preventDefault();
    errors.textContent = '';
    try {
      await api('POST', `/v1/projects/${enc(project.name)}/pools`, {
        name: poolName.value.trim(), shards: Number(shards.value),
        retention_days: Number(retention.value), field_hints: parseHints(hints.value) });
      toast(`Pool ${poolName.value} created`);
      await projectsPage(main);
    } catch (error) { errors.appendChild(errorView(error)); }
  } }, poolName, h('label', {}, 'shards ', shards), h('label', {}, 'retention (days) ', retention),
  h('label', { class: 'grow' }, 'field hints ', hints), h('button', { type: 'submit' }, 'Create pool'));
  return h('div', {}, form, errors);
}

function confirmDelete(main, project, pool) {
  const what = pool ? `pool ${project.name}/${pool.name}` : `project ${project.name} and all its pools`;
  const expected = pool ? pool.name : project.name;
  const input = h('input', { 'aria-label': 'Type the name to confirm', name: 'confirm-name' });
  const errors = h('div');
  const remove = h('button', { type: 'button', class: 'danger', disabled: true, onclick: async () => {
    try {
      const path = pool ? poolPath(project.name, pool.name) : `/v1/projects/${enc(project.name)}`;
      await api('DELETE', path);
      box.close();
      toast(`Deleted ${what}`);
      await projectsPage(main);
    } catch (error) { errors.replaceChildren(errorView(error)); }
  } }, 'Delete for good');
  input.addEventListener('input', () => { remove.disabled = input.value !== expected; });
  const box = dialog(`Delete ${what}?`, h('div', {},
    h('p', {}, 'Its logs in the queue and the index are deleted. This cannot be undone.'),
    h('label', {}, `Type “${expected}” to confirm: `, input), errors),
  [remove, h('button', { type: 'button', class: 'secondary', onclick: () => box.close() }, 'Cancel')]);
  input.focus();
}

function editPool(main, project, pool) {
  const shards = h('input', { type: 'number', name: 'edit-shards', min: pool.shards ?? 1, max: 64, value: pool.shards ?? (pool.partitions || []).length });
  const retention = h('input', { type: 'number', name: 'edit-retention', min: 1, value: pool.retention_days });
  const hints = h('input', { name: 'edit-hints', value: hintsText(pool.field_hints), size: 40 });
  const errors = h('div');
  const box = dialog(`Edit pool ${pool.name}`, h('div', {},
    h('p', {}, h('label', {}, 'Shards (can only grow) ', shards)),
    h('p', {}, h('label', {}, 'Retention (days) ', retention)),
    h('p', {}, h('label', {}, 'Field hints ', hints)), errors),
  [h('button', { type: 'button', onclick: async () => {
    try {
      await api('PATCH', poolPath(project.name, pool.name), {
        shards: Number(shards.value), retention_days: Number(retention.value), field_hints: parseHints(hints.value) });
      box.close();
      toast(`Pool ${pool.name} saved`);
      await projectsPage(main);
    } catch (error) { errors.replaceChildren(errorView(error)); }
  } }, 'Save'), h('button', { type: 'button', class: 'secondary', onclick: () => box.close() }, 'Cancel')]);
}
