// The search, analysis and live tail pages. Every value from the server is put into
// the page as text (never as HTML), so a log line cannot inject markup.

import { api, poolPath, enc, openTail, tailAvailable, ApiError } from './api.js';
import { histogram, chart } from './charts.js';
import { h, errorView } from './ui.js';
import { saveButton, historyList, rememberQuery, openedSaved } from './saved.js';
import { exportControls } from './export.js';

function setHash(path, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') query.set(k, v);
  const next = `#/${path}?${query}`;
  if (location.hash !== next) location.hash = next;
  return next;
}

// Project and pool pickers shared by search, analysis and tail.
async function poolPicker(params, onChange) {
  const projects = (await api('GET', '/v1/projects')).projects;
  const projectSelect = h('select', { 'aria-label': 'Project', name: 'project' },
    projects.map((p) => h('option', { value: p.name, selected: p.name === params.project }, p.name)));
  const poolSelect = h('select', { 'aria-label': 'Pool', name: 'pool' });
  const loadPools = async () => {
    poolSelect.textContent = '';
    if (!projectSelect.value) return;
    const pools = (await api('GET', `/v1/projects/${enc(projectSelect.value)}/pools`)).pools;
    for (const p of pools) poolSelect.appendChild(h('option', { value: p.name, selected: p.name === params.pool }, p.name));
  };
  projectSelect.addEventListener('change', async () => { await loadPools(); onChange(); });
  poolSelect.addEventListener('change', onChange);
  await loadPools();
  return { projectSelect, poolSelect, empty: projects.length === 0 };
}

const RANGES = [['-15m', 'Last 15 minutes'], ['-1h', 'Last hour'], ['-4h', 'Last 4 hours'],
  ['-24h', 'Last 24 hours'], ['-7d', 'Last 7 days'], ['-30d', 'Last 30 days']];

function timePicker(params) {
  const from = h('input', { name: 'from', 'aria-label': 'From', value: params.from || '-15m', size: 22,
    title: 'Relative (-15m, now-2h) or absolute (RFC 3339)' });
  const to = h('input', { name: 'to', 'aria-label': 'To', value: params.to || 'now', size: 22 });
  const preset = h('select', { 'aria-label': 'Time range preset',
    onchange: () => { if (preset.value) { from.value = preset.value; to.value = 'now'; } } },
  h('option', { value: '' }, 'Quick range…'), RANGES.map(([v, label]) => h('option', { value: v }, label)));
  return { from, to, node: h('span', { class: 'row' }, preset, from, '→', to) };
}

// ---------------------------------------------------------------- search

// The server's highlight fragments are HTML-escaped text; they are turned back into
// text here (never parsed as HTML).
function unescapeHtml(text) {
  return text.replace(/&(lt|gt|amp|quot|#39|#x27);/g, (_, name) =>
    ({ lt: '<', gt: '>', amp: '&', quot: '"', '#39': "'", '#x27': "'" }[name]));
}

// Renders a highlighted fragment: only <em> and </em> become marks, all else is text.
function highlighted(fragment) {
  const out = h('span');
  let marked = false;
  for (const part of String(fragment).split(/(<\/?em>)/)) {
    if (part === '<em>') marked = true;
    else if (part === '</em>') marked = false;
    else if (part) {
      const text = unescapeHtml(part);
      out.appendChild(marked ? h('mark', {}, text) : document.createTextNode(text));
    }
  }
  return out;
}

function messageOf(hit) {
  const fragments = hit.highlight && (hit.highlight.message || Object.values(hit.highlight)[0]);
  if (fragments && fragments.length) return highlighted(fragments.join(' … '));
  if (hit.fields.message !== undefined) return String(hit.fields.message);
  return JSON.stringify(hit.fields);
}

function fieldSummary(hits) {
  const counts = new Map();
  for (const hit of hits) {
    for (const [name, value] of Object.entries(hit.fields)) {
      if (name === 'message') continue;
      if (!counts.has(name)) counts.set(name, new Map());
      const values = counts.get(name);
      const key = String(value);
      values.set(key, (values.get(key) || 0) + 1);
    }
  }
  return [...counts.entries()]
    .map(([name, values]) => ({ name, seen: [...values.values()].reduce((a, b) => a + b, 0),
      values: [...values.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([value, count]) => ({ value, count })) }))
    .sort((a, b) => b.seen - a.seen).slice(0, 12);
}

function quoteValue(value) {
  return /^[\w.@-]+$/.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

export async function searchPage(main, params) {
  const picker = await poolPicker(params, () => {});
  if (picker.empty) {
    main.replaceChildren(h('h1', {}, 'Search'), h('div', { class: 'empty panel' }, 'No projects yet. ', h('a', { href: '#/projects' }, 'Create a project and a pool'), ' first.'));
    return;
  }
  const query = h('input', { name: 'query', class: 'grow mono', 'aria-label': 'Query', value: params.q || '',
    placeholder: 'level:ERROR AND "connection refused"' });
  if (params.q) rememberQuery(params.q);
  const time = timePicker(params);
  // Chosen columns travel in the URL (`cols`), so saved searches and exports keep them.
  const columns = (params.cols || '').split(',').map((c) => c.trim()).filter(Boolean);
  const submit = () => setHash('search', { project: picker.projectSelect.value, pool: picker.poolSelect.value,
    q: query.value, from: time.from.value, to: time.to.value, cols: columns.join(','), _: Date.now() % 100000 });
  const current = () => ({ project: picker.projectSelect.value, pool: picker.poolSelect.value, query: query.value,
    from: time.from.value, to: time.to.value, columns,
    base: poolPath(picker.projectSelect.value, picker.poolSelect.value),
    request: { query: query.value, from: time.from.value, to: time.to.value } });
  const form = h('form', { class: 'panel', role: 'search', onsubmit: (e) => { e.preventDefault(); submit(); } },
    h('div', { class: 'row' }, picker.projectSelect, picker.poolSelect, query, historyList(query), time.node, h('button', { type: 'submit' }, 'Search')),
    h('div', { class: 'row' }, saveButton(current, params.saved), exportControls(current),
      columns.length ? h('span', { class: 'muted' }, `Columns: ${columns.join(', ')}`) : null));
  const opened = await openedSaved(picker.projectSelect.value, params.saved).catch(() => null);
  const progress = h('div', { class: 'progress', hidden: true }, h('div'));
  const status = h('div', { class: 'muted', role: 'status' });
  const chartBox = h('div', { class: 'panel', 'aria-label': 'Histogram' });
  const fieldsBox = h('aside', { class: 'panel fields', 'aria-label': 'Fields' });
  const hitsBody = h('tbody');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const results = h('div', { class: 'panel' }, h('table', { class: 'hits' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Record'))), hitsBody), more);
  const errors = h('div');
  main.replaceChildren(h('h1', {}, opened ? `Search: ${opened.name}` : 'Search'), form, progress, errors, status, chartBox,
    h('div', { class: 'layout' }, fieldsBox, results));
  query.focus();
  if (!picker.poolSelect.value) {
    status.textContent = 'This project has no pools yet.';
    return;
  }
  const base = poolPath(picker.projectSelect.value, picker.poolSelect.value);
  const request = { query: query.value, from: time.from.value, to: time.to.value };
  const hits = [];
  const addFilter = (name, value) => {
    query.value = query.value.trim() ? `${query.value.trim()} AND ${name}:${quoteValue(value)}` : `${name}:${quoteValue(value)}`;
    submit();
  };
  // Top values come from the server's field summary over the whole query; until it
  // answers (or if it fails) they are counted over the loaded hits.
  let serverSummary = null;
  const renderFields = () => {
    const summary = serverSummary ? serverSummary.fields.filter((f) => f.name !== 'message').slice(0, 12).map((f) => ({
      name: f.name, type: f.type, values: f.top.slice(0, 5).map((v) => ({ value: String(v.value), count: v.count })) })) : fieldSummary(hits);
    const scope = serverSummary
      ? `top values in ${serverSummary.sampled === serverSummary.total ? 'all' : `a sample of ${serverSummary.sampled} of the`} ${serverSummary.total} matches`
      : `top values in the ${hits.length} loaded records`;
    fieldsBox.replaceChildren(h('h2', {}, 'Fields'), h('p', { class: 'muted' }, scope),
      // The type is the one search gives the field (hint or learned), so a reader
      // knows whether `status:>=500` compares numbers or text.
      h('ul', {}, summary.map((field) => h('li', { dataset: { field: field.name } }, h('strong', {}, field.name),
        field.type ? h('span', { class: 'field-type muted', title: `searched as ${field.type}` }, field.type) : null,
        field.values.map((v) => h('div', { class: 'value', tabindex: 0, role: 'button', title: `Filter on ${field.name}:${v.value}`,
          onclick: () => addFilter(field.name, v.value),
          onkeydown: (e) => { if (e.key === 'Enter') addFilter(field.name, v.value); } },
        h('span', { class: 'mono' }, v.value.slice(0, 40)), h('span', { class: 'badge' }, v.count)))))));
  };
  const renderHit = (hit) => {
    const detail = h('tr', { class: 'detail', hidden: true }, h('td', { colspan: 2 }));
    const row = h('tr', { class: 'hit', tabindex: 0, dataset: { id: hit.id },
      onclick: () => toggle(), onkeydown: (e) => { if (e.key === 'Enter') toggle(); } },
    h('td', { class: 'time mono' }, hit.time), h('td', { class: 'message' }, messageOf(hit)));
    const toggle = () => {
      detail.hidden = !detail.hidden;
      if (detail.hidden) return;
      const cell = detail.firstChild;
      const contextBox = h('div');
      cell.replaceChildren(
        h('table', {}, h('tbody', {}, Object.entries(hit.fields).map(([k, v]) => h('tr', {},
          h('td', { class: 'mono' }, k), h('td', {}, h('pre', {}, String(v))),
          h('td', {}, h('button', { type: 'button', class: 'secondary', onclick: () => addFilter(k, String(v)) }, 'Filter')))))),
        h('div', { class: 'row' }, h('span', { class: 'muted mono' }, `id ${hit.id} · shard ${hit.shard}`),
          h('button', { type: 'button', class: 'secondary', onclick: () => showContext(base, hit, contextBox) }, 'View context')),
        contextBox);
    };
    hitsBody.append(row, detail);
  };
  const load = async (cursor) => {
    const page = await api('POST', `${base}/search`, { ...request, limit: 50, cursor, highlight: true });
    for (const hit of page.hits) { hits.push(hit); renderHit(hit); }
    more.hidden = !page.cursor;
    more.onclick = () => load(page.cursor).catch((error) => errors.replaceChildren(errorView(error, request.query)));
    status.textContent = `${page.total} records match` + (page.partial ? ' (partial: the time budget ran out)' : '');
    if (page.progress) progress.firstChild.style.width = `${(100 * page.progress.scanned) / Math.max(1, page.progress.total)}%`;
    renderFields();
    if (!hits.length) hitsBody.replaceChildren(h('tr', {}, h('td', { colspan: 2, class: 'empty' }, 'No records match this query in this time range.')));
  };
  progress.hidden = false;
  progress.firstChild.style.width = '10%';
  try {
    const [histo] = await Promise.all([
      api('POST', `${base}/histogram`, request),
      load(undefined),
      api('POST', `${base}/fields`, request).then((summary) => { serverSummary = summary; renderFields(); }, () => {}),
    ]);
    histogram(chartBox, histo.buckets, histo.interval_ms, (fromMs, toMs) => {
      time.from.value = new Date(fromMs).toISOString();
      time.to.value = new Date(toMs).toISOString();
      submit();
    });
    progress.firstChild.style.width = '100%';
  } catch (error) {
    errors.replaceChildren(errorView(error, request.query));
  } finally {
    setTimeout(() => { progress.hidden = true; }, 300);
  }
}

async function showContext(base, hit, box) {
  box.replaceChildren(h('p', { class: 'muted' }, 'Loading context…'));
  try {
    const context = await api('GET', `${base}/records/${enc(hit.id)}/context?before=10&after=10`);
    const records = [...(context.before || []), ...(context.anchor ? [context.anchor] : []), ...(context.after || [])];
    box.replaceChildren(h('h2', {}, 'Context'), h('table', { class: 'hits context' }, h('tbody', {},
      records.map((r) => h('tr', { class: r.id === hit.id ? 'current' : '' },
        h('td', { class: 'time mono' }, r.time), h('td', { class: 'message' }, r.id === hit.id ? h('strong', {}, messageOf(r)) : messageOf(r)))))));
  } catch (error) { box.replaceChildren(errorView(error)); }
}

// ---------------------------------------------------------------- analysis

export async function analysisPage(main, params) {
  const picker = await poolPicker(params, () => {});
  const query = h('textarea', { name: 'sql', rows: 3, class: 'mono wide', 'aria-label': 'Query with SQL' },
    params.q || '* | SELECT level, count(*) AS c GROUP BY level ORDER BY c DESC LIMIT 10');
  const time = timePicker(params);
  const kind = h('select', { name: 'chart', 'aria-label': 'Chart type' }, ['table', 'bar', 'line', 'pie'].map((k) => h('option', { value: k, selected: k === (params.chart || 'table') }, k)));
  const output = h('div', { class: 'panel' });
  const errors = h('div');
  const run = () => setHash('analysis', { project: picker.projectSelect.value, pool: picker.poolSelect.value,
    q: query.value, from: time.from.value, to: time.to.value, chart: kind.value, _: Date.now() % 100000 });
  query.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) run(); });
  kind.addEventListener('change', run);
  main.replaceChildren(h('h1', {}, 'Analysis'),
    h('form', { class: 'panel', onsubmit: (e) => { e.preventDefault(); run(); } },
      h('div', { class: 'row' }, picker.projectSelect, picker.poolSelect, time.node, kind, h('button', { type: 'submit' }, 'Run')),
      h('p', { class: 'muted' }, 'search | SELECT … GROUP BY … — Ctrl+Enter runs'), query),
    errors, output);
  if (!params.q || !picker.poolSelect.value) { output.replaceChildren(h('p', { class: 'muted' }, 'Run a query to see its rows.')); return; }
  try {
    const result = await api('POST', `${poolPath(picker.projectSelect.value, picker.poolSelect.value)}/query`,
      { query: query.value, from: time.from.value, to: time.to.value });
    const names = result.columns.map((c) => c.name ?? c);
    if (kind.value === 'table' || !result.rows.length) {
      output.replaceChildren(h('table', { class: 'sql-result' }, h('thead', {}, h('tr', {}, names.map((n) => h('th', {}, n)))),
        h('tbody', {}, result.rows.map((row) => h('tr', {}, row.map((v) => h('td', {}, v === null ? '∅' : String(v))))))),
      result.rows.length ? null : h('p', { class: 'muted' }, 'No rows.'));
      return;
    }
    // Labels from the first column, values from the last numeric one.
    const numeric = names.map((_, i) => result.rows.every((r) => typeof r[i] === 'number' || r[i] === null));
    const valueAt = numeric.lastIndexOf(true);
    if (valueAt < 0) { output.replaceChildren(h('p', { class: 'error' }, 'No numeric column to chart.')); return; }
    const labelAt = valueAt === 0 ? -1 : 0;
    chart(output, kind.value, result.rows.map((r, i) => (labelAt < 0 ? i + 1 : r[labelAt])),
      result.rows.map((r) => Number(r[valueAt] ?? 0)), names[valueAt]);
  } catch (error) { errors.replaceChildren(errorView(error, query.value.split('|')[0])); }
}

// ---------------------------------------------------------------- live tail

let activeTail = null;

export function stopTail() {
  if (activeTail) { activeTail.close(1000, 'left the page'); activeTail = null; }
}

export async function tailPage(main, params) {
  stopTail();
  const picker = await poolPicker(params, () => {});
  const query = h('input', { name: 'tail-query', class: 'grow mono', 'aria-label': 'Tail filter', value: params.q || '', placeholder: 'filter, e.g. level:ERROR' });
  const start = h('button', { type: 'submit' }, 'Start');
  const pause = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Pause');
  const follow = h('input', { type: 'checkbox', checked: true, name: 'autoscroll' });
  const state = h('span', { class: 'badge', role: 'status' }, 'stopped');
  const screen = h('div', { class: 'tail', 'aria-label': 'Live records', 'aria-live': 'off', tabindex: 0 });
  const errors = h('div');
  let paused = false;
  let held = [];
  const MAX_LINES = 2000;
  const append = (node) => {
    screen.appendChild(node);
    while (screen.childNodes.length > MAX_LINES) screen.firstChild.remove();
    if (follow.checked) screen.scrollTop = screen.scrollHeight;
  };
  const show = (record) => append(h('div', { class: 'line', dataset: { id: record.id } }, `${record.time} `, String(record.fields.message ?? JSON.stringify(record.fields))));
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    state.textContent = paused ? 'paused' : 'live';
    if (!paused) { held.forEach(show); held = []; }
  });
  const begin = async () => {
    stopTail();
    errors.textContent = '';
    // A refused key would make the browser log the socket's URL, token included;
    // checking the key first returns to the login page instead.
    try { await api('GET', '/v1/whoami'); } catch (error) {
      if (error.status !== 401) errors.replaceChildren(errorView(error));
      return;
    }
    if (!screen.isConnected) return;
    const socket = openTail(picker.projectSelect.value, picker.poolSelect.value, query.value ? { query: query.value } : {});
    activeTail = socket;
    let refused = false;
    state.textContent = 'connecting';
    socket.addEventListener('open', () => { state.textContent = 'live'; pause.disabled = false; });
    socket.addEventListener('message', (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame.type === 'records') {
        for (const record of frame.records) { if (paused) held.push(record); else show(record); }
        if (held.length > MAX_LINES) held = held.slice(-MAX_LINES);
      } else if (frame.type === 'dropped') {
        append(h('div', { class: 'line notice' }, `— ${frame.count} records dropped: the console could not keep up —`));
      } else if (frame.type === 'error') {
        // A filter the server refused: shown with a caret under its position.
        refused = true;
        errors.replaceChildren(errorView(new ApiError(400, { error: frame.error }), query.value));
      }
    });
    socket.addEventListener('close', (event) => {
      if (activeTail === socket) activeTail = null;
      state.textContent = 'stopped';
      pause.disabled = true;
      if (!refused && event.code !== 1000 && event.code !== 1005) errors.replaceChildren(h('div', { class: 'error', role: 'alert' }, `Tail closed: ${event.reason || `code ${event.code}`}`));
    });
  };
  main.replaceChildren(h('h1', {}, 'Live tail'),
    h('form', { class: 'panel row', onsubmit: (e) => { e.preventDefault(); setHash('tail', { project: picker.projectSelect.value, pool: picker.poolSelect.value, q: query.value, _: Date.now() % 100000 }); } },
      picker.projectSelect, picker.poolSelect, query, start, pause, h('label', {}, follow, ' auto-scroll'), state),
    errors, screen);
  if (!tailAvailable()) {
    start.disabled = true;
    errors.replaceChildren(h('p', { class: 'error', role: 'alert' },
      'Live tail works in your own tenant only: browsers cannot send the tenant header on a WebSocket. Switch back to your tenant, or log in with a key of this tenant.'));
    return;
  }
  if (params.project && params.pool && picker.poolSelect.value) await begin();
}
