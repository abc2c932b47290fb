// Editing dashboards: the panel dialog (add or change one panel), and "Add to
// dashboard" from the explorer, the saved searches and the analysis page, which puts
// a panel for what is on screen below the panels of a chosen (or new) dashboard.
// The server checks every panel; its error names the field (`panels[3].query`),
// which is shown next to that input.

import { api, enc, can } from './api.js';
import { h, dialog, toast, fieldErrors } from './ui.js';
import { nextRow } from './dashgrid.js';

export const dashboardsPath = (project, id) => `/v1/projects/${enc(project)}/dashboards${id === undefined ? '' : `/${enc(id)}`}`;

// The chart types each panel kind draws as (the server's rule too).
export const CHARTS = {
  histogram: ['bar', 'line', 'area'],
  count: ['number'],
  table: ['table'],
  sql: ['line', 'area', 'bar', 'pie', 'table', 'number'],
};
const KIND_LABELS = { histogram: 'Histogram of a search', count: 'Count of a search', table: 'Records of a search', sql: 'Pipe SQL chart' };

export const newPanelId = () => `p${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

// What PUT / POST take: the dashboard without what the server adds.
export function bodyOf(dashboard) {
  const { name, description, from, to, refresh, panels } = dashboard;
  return { name, description: description || '', from, to, refresh, panels };
}

// "0:green, 100:#dc2626" ⇄ [{value, color}].
const thresholdsText = (list) => (list || []).map((t) => `${t.value}:${t.color}`).join(', ');
function parseThresholds(text) {
  return text.split(',').map((part) => part.trim()).filter(Boolean).map((part) => {
    const at = part.lastIndexOf(':');
    return { value: Number(part.slice(0, at)), color: part.slice(at + 1).trim() };
  });
}

// The dialog that adds a panel to `dashboard` (or changes `panel`, at `index`), then
// saves the whole dashboard; `done(saved)` gets the server's answer.
export async function panelDialog(project, dashboard, panel, done) {
  const pools = (await api('GET', `/v1/projects/${enc(project)}/pools`)).pools;
  const editing = Boolean(panel);
  const current = panel || { id: newPanelId(), title: '', kind: 'histogram', pool: (pools[0] || {}).name || '', query: '',
    chart: { type: 'bar' }, grid: { x: 0, y: nextRow(dashboard.panels), w: 6, h: 4 } };
  const index = editing ? dashboard.panels.indexOf(panel) : dashboard.panels.length;
  const title = h('input', { name: 'panel-title', 'aria-label': 'Title', value: current.title || '', maxlength: 200, class: 'grow' });
  const kind = h('select', { name: 'panel-kind', 'aria-label': 'Panel kind' },
    Object.entries(KIND_LABELS).map(([k, label]) => h('option', { value: k, selected: k === current.kind }, label)));
  const pool = h('select', { name: 'panel-pool', 'aria-label': 'Pool' },
    pools.map((p) => h('option', { value: p.name, selected: p.name === current.pool }, p.name)));
  const query = h('input', { name: 'panel-query', 'aria-label': 'Query', class: 'wide mono', value: current.query || '', placeholder: 'level:ERROR (empty: every record)' });
  const sql = h('textarea', { name: 'panel-sql', 'aria-label': 'SQL', rows: 3, class: 'wide mono', placeholder: 'SELECT level, count(*) AS c GROUP BY level' }, current.sql || '');
  const chartType = h('select', { name: 'panel-chart', 'aria-label': 'Chart type' });
  const thresholds = h('input', { name: 'panel-thresholds', 'aria-label': 'Thresholds', class: 'grow mono',
    value: thresholdsText(current.chart.thresholds), placeholder: '0:green, 100:orange, 1000:red' });
  const unit = h('input', { name: 'panel-unit', 'aria-label': 'Unit', size: 8, maxlength: 16, value: current.chart.unit || '' });
  const sqlRow = h('label', { class: 'field' }, 'SQL after the pipe ', sql);
  const numberRow = h('div', { class: 'row' }, h('label', { class: 'field grow' }, 'Thresholds (value:colour) ', thresholds), h('label', { class: 'field' }, 'Unit ', unit));
  const sync = () => {
    const allowed = CHARTS[kind.value];
    const keep = allowed.includes(chartType.value) ? chartType.value : (allowed.includes(current.chart.type) ? current.chart.type : allowed[0]);
    chartType.replaceChildren(...allowed.map((t) => h('option', { value: t, selected: t === keep }, t)));
    sqlRow.hidden = kind.value !== 'sql';
    numberRow.hidden = chartType.value !== 'number';
  };
  kind.addEventListener('change', sync);
  chartType.addEventListener('change', sync);
  sync();
  const formErrors = h('div');
  const body = h('div', { class: 'panel-form' },
    h('label', { class: 'field' }, 'Title ', title),
    h('div', { class: 'row' }, h('label', {}, 'Shows ', kind), h('label', {}, 'Pool ', pool), h('label', {}, 'Chart ', chartType)),
    h('label', { class: 'field' }, 'Query ', query), sqlRow, numberRow, formErrors);
  const field = (name) => `panels[${index}].${name}`;
  const errors = fieldErrors({ [field('title')]: title, [field('query')]: query, [field('sql')]: sql, [field('pool')]: pool,
    [field('chart.type')]: chartType, [field('chart.thresholds')]: thresholds, [field('chart.unit')]: unit }, formErrors);
  const save = async () => {
    errors.clear();
    const next = {
      ...current, title: title.value.trim(), kind: kind.value, pool: pool.value, query: query.value,
      chart: { type: chartType.value, ...(chartType.value === 'number' ? { thresholds: parseThresholds(thresholds.value), unit: unit.value } : {}) },
    };
    if (kind.value === 'sql') next.sql = sql.value; else delete next.sql;
    const panels = [...dashboard.panels];
    panels[index] = next;
    try {
      const saved = await api('PUT', dashboardsPath(project, dashboard.id), { ...bodyOf(dashboard), panels });
      box.close();
      done(saved);
    } catch (error) { errors.report(error); }
  };
  const box = dialog(editing ? 'Change panel' : 'Add panel', body, [
    h('button', { type: 'button', name: 'panel-save', onclick: save }, editing ? 'Save panel' : 'Add panel'),
    h('button', { type: 'button', class: 'secondary', onclick: () => box.close() }, 'Cancel'),
  ]);
  title.focus();
}

// "Add to dashboard": `current()` gives { project, pool, query, sql?, title, kinds
// (the panel kinds that fit, first preferred), chart (for sql), columns? }.
export function addToDashboardButton(current) {
  if (!can('manage_project')) return null;
  return h('button', { type: 'button', class: 'secondary', name: 'add-to-dashboard', onclick: () => {
    const what = current();
    if (!what.project || !what.pool) { toast('Choose a project and a pool first.'); return; }
    addToDashboardDialog(what).catch((error) => toast(error.message));
  } }, 'Add to dashboard');
}

async function addToDashboardDialog(what) {
  const dashboards = (await api('GET', dashboardsPath(what.project))).dashboards;
  const target = h('select', { name: 'dashboard-target', 'aria-label': 'Dashboard' },
    dashboards.map((d) => h('option', { value: d.id }, d.name)), h('option', { value: '' }, 'New dashboard…'));
  const newName = h('input', { name: 'dashboard-new-name', 'aria-label': 'New dashboard name', maxlength: 100, class: 'grow' });
  const newRow = h('label', { class: 'field' }, 'Name of the new dashboard ', newName);
  const kind = h('select', { name: 'dashboard-panel-kind', 'aria-label': 'Panel kind' },
    what.kinds.map((k) => h('option', { value: k }, KIND_LABELS[k])));
  const title = h('input', { name: 'dashboard-panel-title', 'aria-label': 'Panel title', maxlength: 200, class: 'grow', value: what.title || '' });
  const syncTarget = () => { newRow.hidden = target.value !== ''; };
  target.addEventListener('change', syncTarget);
  syncTarget();
  const formErrors = h('div');
  const body = h('div', {}, h('label', { class: 'field' }, 'Dashboard ', target), newRow,
    h('div', { class: 'row' }, h('label', {}, 'Panel ', kind), h('label', { class: 'field grow' }, 'Title ', title)),
    h('p', { class: 'muted' }, `Pool ${what.pool}; query ${what.query || '*'}${what.sql ? ` | ${what.sql}` : ''}.`), formErrors);
  const errors = fieldErrors({ name: newName, 'panels[0].title': title }, formErrors);
  const add = async () => {
    errors.clear();
    try {
      // A new dashboard is created with its panel in one call, so a panel the server
      // refuses leaves no empty dashboard behind.
      const dashboard = target.value
        ? await api('GET', dashboardsPath(what.project, target.value))
        : { name: newName.value, from: what.from || 'now-24h', to: what.to || 'now', refresh: 'off', panels: [] };
      const chartType = kind.value === 'sql' ? (CHARTS.sql.includes(what.chart) ? what.chart : 'table') : CHARTS[kind.value][0];
      const panel = { id: newPanelId(), title: title.value.trim(), kind: kind.value, pool: what.pool, query: what.query || '',
        chart: { type: chartType }, grid: { x: 0, y: nextRow(dashboard.panels), w: kind.value === 'count' ? 3 : 6, h: kind.value === 'count' ? 3 : 5 } };
      if (kind.value === 'sql') panel.sql = what.sql;
      if (kind.value === 'table' && what.columns && what.columns.length) panel.columns = what.columns;
      const next = { ...bodyOf(dashboard), panels: [...dashboard.panels, panel] };
      const saved = dashboard.id
        ? await api('PUT', dashboardsPath(what.project, dashboard.id), next)
        : await api('POST', dashboardsPath(what.project), next);
      box.close();
      toast(`Added to “${saved.name}”.`);
      location.hash = `#/dashboards?project=${enc(what.project)}&id=${enc(saved.id)}`;
    } catch (error) { errors.report(error); }
  };
  const box = dialog('Add to dashboard', body, [
    h('button', { type: 'button', name: 'dashboard-add', onclick: add }, 'Add'),
    h('button', { type: 'button', class: 'secondary', onclick: () => box.close() }, 'Cancel'),
  ]);
  title.focus();
}
