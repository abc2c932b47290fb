// The search, analysis and live tail pages. Every value from the server is put into
// the page as text (never as HTML), so a log line cannot inject markup.

import { api, poolPath, enc, openTail, tailAvailable, ApiError } from './api.js';
import { histogram, chart } from './charts.js';
import { h, errorView } from './ui.js';
import { formatNumber, formatTime, onTimeZoneChange } from './format.js';
import { resultsTable, logLine } from './results.js';
import { fieldList } from './fieldlist.js';
import { queryHelp } from './queryhelp.js';
import { saveButton, queryHistory, rememberQuery, openedSaved } from './saved.js';
import { exportControls } from './export.js';
import { addToDashboardButton } from './dashedit.js';

function setHash(path, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') query.set(k, v);
  const next = `#/${path}?${query}`;
  if (location.hash !== next) location.hash = next;
  return next;
}

// Project and pool pickers shared by search, analysis and tail. A project or pool
// the URL names but the key cannot see (or that does not exist) is not replaced by
// another: the pickers then show a placeholder and `problem` says what is wrong, so
// no page shows another project's records under the first one's name.
async function poolPicker(params, onChange) {
  const projects = (await api('GET', '/v1/projects')).projects;
  let problem = null;
  const projectKnown = !params.project || projects.some((p) => p.name === params.project);
  if (!projectKnown) problem = `Project “${params.project}” does not exist or this key cannot see it. Choose a project.`;
  const projectSelect = h('select', { 'aria-label': 'Project', name: 'project' },
    projectKnown ? null : h('option', { value: '', selected: true }, '— choose a project —'),
    projects.map((p) => h('option', { value: p.name, selected: p.name === params.project }, p.name)));
  const poolSelect = h('select', { 'aria-label': 'Pool', name: 'pool' });
  const loadPools = async (wanted) => {
    poolSelect.textContent = '';
    if (!projectSelect.value) return;
    const pools = (await api('GET', `/v1/projects/${enc(projectSelect.value)}/pools`)).pools;
    if (wanted && !pools.some((p) => p.name === wanted)) {
      problem = `Pool “${wanted}” does not exist in project “${projectSelect.value}”. Choose a pool.`;
      poolSelect.appendChild(h('option', { value: '', selected: true }, '— choose a pool —'));
    }
    for (const p of pools) poolSelect.appendChild(h('option', { value: p.name, selected: p.name === wanted }, p.name));
  };
  projectSelect.addEventListener('change', async () => { await loadPools(); onChange(); });
  poolSelect.addEventListener('change', onChange);
  await loadPools(params.pool);
  return { projectSelect, poolSelect, empty: projects.length === 0, problem,
    problemView: () => (problem ? h('div', { class: 'error panel scope-error', role: 'alert' }, problem) : document.createTextNode('')) };
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

function quoteValue(value) {
  return /^[\w.@-]+$/.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

// The chosen columns, as the URL's `cols` (comma-separated field names).
const columnsOf = (params) => (params.cols ? params.cols.split(',').filter(Boolean) : []);

// Every field the pool has typed (hinted, or learned from a record): what the query
// warning checks names against. Null when unknown, so nothing is flagged then.
async function knownFields(base) {
  try {
    const schema = await api('GET', `${base}/schema`);
    return new Set(['message', 'time', '@timestamp', ...schema.fields.map((f) => f.name)]);
  } catch { return null; }
}

export async function searchPage(main, params) {
  const picker = await poolPicker(params, () => {});
  if (picker.empty) {
    main.replaceChildren(h('h1', {}, 'Search'), h('div', { class: 'empty panel' }, 'No projects yet. ', h('a', { href: '#/projects' }, 'Create a project and a pool'), ' first.'));
    return;
  }
  const query = h('input', { name: 'query', class: 'wide mono', 'aria-label': 'Query', value: params.q || '',
    placeholder: 'level:ERROR AND "connection refused"   (press / to focus)' });
  if (params.q) rememberQuery(params.q);
  const time = timePicker(params);
  // Chosen columns travel in the URL (`cols`), so saved searches and exports keep them.
  let columns = columnsOf(params);
  // The time order of the results travels in the URL too (`order=asc`; newest first
  // is the default and not written).
  let order = params.order === 'asc' ? 'asc' : 'desc';
  const state = () => ({ project: picker.projectSelect.value, pool: picker.poolSelect.value,
    q: query.value, from: time.from.value, to: time.to.value, cols: columns.join(','), order: order === 'asc' ? 'asc' : '' });
  const submit = () => setHash('search', { ...state(), _: Date.now() % 100000 });
  const current = () => ({ project: picker.projectSelect.value, pool: picker.poolSelect.value, query: query.value,
    from: time.from.value, to: time.to.value, columns,
    base: poolPath(picker.projectSelect.value, picker.poolSelect.value),
    request: { query: query.value, from: time.from.value, to: time.to.value } });
  let known = null;
  const help = queryHelp(query, {
    // The field list's names (the server's summary, else the loaded records), then
    // every other field the pool has typed.
    names: () => [...new Set([...fields.names(), ...(known || [])])].filter((n) => n !== 'time' && n !== '@timestamp'),
    values: (name) => (((fields.summary() || { fields: [] }).fields.find((f) => f.name === name)) || { top: [] }).top.map((v) => String(v.value)),
    known: () => known,
    history: queryHistory,
  });
  const form = h('form', { class: 'panel', role: 'search', onsubmit: (e) => { e.preventDefault(); submit(); } },
    // The query gets a line of its own: it is what the page is about.
    h('div', { class: 'row' }, help.node, help.helpButton, h('button', { type: 'submit' }, 'Search')),
    h('div', { class: 'row form-second-row' }, picker.projectSelect, picker.poolSelect, time.node,
      saveButton(current, params.saved), exportControls(current),
      addToDashboardButton(() => ({ project: picker.projectSelect.value, pool: picker.poolSelect.value, query: query.value,
        from: time.from.value, to: time.to.value, columns, kinds: ['histogram', 'count', 'table'] }))),
    help.warning);
  const opened = await openedSaved(picker.projectSelect.value, params.saved).catch(() => null);
  const progress = h('div', { class: 'progress', hidden: true }, h('div'));
  const status = h('div', { class: 'muted', role: 'status' });
  const chartBox = h('div', { class: 'panel', 'aria-label': 'Histogram' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const errors = h('div');
  const filter = (name, value, negate) => {
    const term = `${negate ? 'NOT ' : ''}${name}:${quoteValue(value)}`;
    query.value = query.value.trim() && query.value.trim() !== '*' ? `${query.value.trim()} AND ${term}` : term;
    submit();
  };
  const actions = {
    filter,
    exists: (name) => { query.value = query.value.trim() ? `${query.value.trim()} AND _exists_:${name}` : `_exists_:${name}`; submit(); },
    // A column change only rewrites the URL: the records on screen stay.
    setColumns: (next) => { columns = next; history.replaceState(null, '', `#/search?${new URLSearchParams(Object.entries(state()).filter(([, v]) => v))}`); fields.redraw(); },
    columns: () => columns,
    // Sorting by time searches again in the other order: the pages then follow it.
    order: () => order,
    toggleOrder: () => { order = order === 'asc' ? 'desc' : 'asc'; submit(); },
    context: (hit, box) => showContext(base, hit, box),
  };
  const table = resultsTable(columns, actions);
  actions.toggleColumn = (name) => table.toggleColumn(name);
  const fields = fieldList(actions);
  const results = h('div', { class: 'panel results' }, table.node, more);
  main.replaceChildren(h('h1', {}, opened ? `Search: ${opened.name}` : 'Search'), picker.problemView(), form, progress, errors, status, chartBox,
    h('div', { class: 'layout' }, fields.node, results));
  query.focus();
  if (picker.problem) return;
  if (!picker.poolSelect.value) {
    status.textContent = 'This project has no pools yet.';
    return;
  }
  const base = poolPath(picker.projectSelect.value, picker.poolSelect.value);
  knownFields(base).then((set) => { known = set; help.check(); });
  const request = { query: query.value, from: time.from.value, to: time.to.value };
  const hits = [];
  const load = async (cursor) => {
    const page = await api('POST', `${base}/search`, { ...request, order, limit: 50, cursor, highlight: true });
    hits.push(...page.hits);
    table.add(page.hits);
    more.hidden = !page.cursor;
    more.onclick = () => load(page.cursor).catch((error) => errors.replaceChildren(errorView(error, request.query)));
    status.textContent = `${page.total} records match` + (page.partial ? ' (partial: the time budget ran out)' : '');
    if (page.progress) progress.firstChild.style.width = `${(100 * page.progress.scanned) / Math.max(1, page.progress.total)}%`;
    fields.setHits(hits);
    if (!hits.length) table.empty('No records match this query in this time range.');
  };
  progress.hidden = false;
  progress.firstChild.style.width = '10%';
  const drawHistogram = (histo) => histogram(chartBox, histo.buckets, histo.interval_ms, (fromMs, toMs) => {
    time.from.value = new Date(fromMs).toISOString();
    time.to.value = new Date(toMs).toISOString();
    submit();
  });
  try {
    const [histo] = await Promise.all([
      api('POST', `${base}/histogram`, request),
      load(undefined),
      api('POST', `${base}/fields`, request).then((answer) => fields.setSummary(answer), () => {}),
    ]);
    drawHistogram(histo);
    // The time zone toggle redraws the histogram's axis too.
    const stop = onTimeZoneChange(() => { if (chartBox.isConnected) drawHistogram(histo); else stop(); });
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
        h('td', { class: 'time mono' }, formatTime(r.time)), h('td', { class: 'message' }, r.id === hit.id ? h('strong', {}, logLine({ ...r, highlight: hit.highlight })) : logLine(r)))))));
  } catch (error) { box.replaceChildren(errorView(error)); }
}

// ---------------------------------------------------------------- analysis

// A SQL result as a table: every column, nulls as ∅, numbers formatted.
function resultTable(result) {
  const names = result.columns.map((c) => c.name ?? c);
  return h('table', { class: 'sql-result' },
    h('thead', {}, h('tr', {}, names.map((n) => h('th', { scope: 'col' }, n)))),
    h('tbody', {}, result.rows.map((row) => h('tr', {}, row.map((v) => h('td', { class: typeof v === 'number' ? 'number' : '' },
      v === null ? '∅' : typeof v === 'number' ? formatNumber(v) : typeof v === 'object' ? JSON.stringify(v) : String(v)))))));
}

export async function analysisPage(main, params) {
  const picker = await poolPicker(params, () => {});
  const query = h('textarea', { name: 'sql', rows: 3, class: 'mono wide', 'aria-label': 'Query with SQL' },
    params.q || '* | SELECT level, count(*) AS c GROUP BY level ORDER BY c DESC LIMIT 10');
  const time = timePicker(params);
  const kind = h('select', { name: 'chart', 'aria-label': 'Chart type' }, ['table', 'bar', 'line', 'area', 'pie'].map((k) => h('option', { value: k, selected: k === (params.chart || 'table') }, k)));
  const output = h('div', { class: 'panel' });
  const errors = h('div');
  const run = () => setHash('analysis', { project: picker.projectSelect.value, pool: picker.poolSelect.value,
    q: query.value, from: time.from.value, to: time.to.value, chart: kind.value, _: Date.now() % 100000 });
  query.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) run(); });
  kind.addEventListener('change', run);
  main.replaceChildren(h('h1', {}, 'Analysis'), picker.problemView(),
    h('form', { class: 'panel', onsubmit: (e) => { e.preventDefault(); run(); } },
      h('div', { class: 'row' }, picker.projectSelect, picker.poolSelect, time.node, kind, h('button', { type: 'submit' }, 'Run'),
        addToDashboardButton(() => {
          const split = query.value.indexOf('|');
          return { project: picker.projectSelect.value, pool: picker.poolSelect.value, from: time.from.value, to: time.to.value,
            query: split < 0 ? query.value.trim() : query.value.slice(0, split).trim(), sql: split < 0 ? '' : query.value.slice(split + 1).trim(),
            chart: kind.value, kinds: ['sql'] };
        })),
      h('p', { class: 'muted' }, 'search | SELECT … GROUP BY … — Ctrl+Enter runs'), query),
    errors, output);
  if (picker.problem) return;
  if (!params.q || !picker.poolSelect.value) { output.replaceChildren(h('p', { class: 'muted' }, 'Run a query to see its rows.')); return; }
  try {
    const result = await api('POST', `${poolPath(picker.projectSelect.value, picker.poolSelect.value)}/query`,
      { query: query.value, from: time.from.value, to: time.to.value });
    if (!result.rows.length) { output.replaceChildren(h('p', { class: 'muted' }, 'No rows.')); return; }
    if (kind.value === 'table') { output.replaceChildren(resultTable(result)); return; }
    const sql = query.value.slice(query.value.indexOf('|') + 1);
    chart(output, kind.value, result, sql);
    // The rows stay readable under the chart.
    output.appendChild(h('details', {}, h('summary', {}, `${result.rows.length} rows`), resultTable(result)));
  } catch (error) { errors.replaceChildren(errorView(error, query.value)); }
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
  const screen = h('div', { class: 'tail', role: 'log', 'aria-label': 'Live records', 'aria-live': 'off', tabindex: 0 });
  const errors = h('div');
  let paused = false;
  let held = [];
  const MAX_LINES = 2000;
  const append = (node) => {
    screen.appendChild(node);
    while (screen.childNodes.length > MAX_LINES) screen.firstChild.remove();
    if (follow.checked) screen.scrollTop = screen.scrollHeight;
  };
  const show = (record) => append(h('div', { class: 'line', dataset: { id: record.id } }, `${formatTime(record.time)} `, String(record.fields.message ?? JSON.stringify(record.fields))));
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
  main.replaceChildren(h('h1', {}, 'Live tail'), picker.problemView(),
    h('form', { class: 'panel row', onsubmit: (e) => { e.preventDefault(); setHash('tail', { project: picker.projectSelect.value, pool: picker.poolSelect.value, q: query.value, _: Date.now() % 100000 }); } },
      picker.projectSelect, picker.poolSelect, query, start, pause, h('label', {}, follow, ' auto-scroll'), state),
    errors, screen);
  if (!tailAvailable()) {
    start.disabled = true;
    errors.replaceChildren(h('p', { class: 'error', role: 'alert' },
      'Live tail works in your own tenant only: browsers cannot send the tenant header on a WebSocket. Switch back to your tenant, or log in with a key of this tenant.'));
    return;
  }
  if (params.project && params.pool && picker.poolSelect.value && !picker.problem) await begin();
}
