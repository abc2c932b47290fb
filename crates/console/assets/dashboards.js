// The dashboards page: a project's dashboards (create, rename, delete, import), and
// one dashboard as a grid of panels that load in parallel, each with its own error,
// under a dashboard-wide time range and auto-refresh. Keys that manage the project
// move, resize, add, change and remove panels, and every change is saved at once;
// readers see the same dashboards and may change the range for themselves.

import { api, can, enc } from './api.js';
import { h, dialog, toast, fieldErrors, errorView } from './ui.js';
import { place, makeMovable, heightOf, ROW_PX, GAP_PX, COLUMNS } from './dashgrid.js';
import { drawPanel } from './dashpanels.js';
import { panelDialog, dashboardsPath, bodyOf } from './dashedit.js';

const REFRESH = { off: 0, '10s': 10000, '30s': 30000, '1m': 60000, '5m': 300000 };
const RANGES = [['now-15m', 'Last 15 minutes'], ['now-1h', 'Last hour'], ['now-4h', 'Last 4 hours'],
  ['now-24h', 'Last 24 hours'], ['now-7d', 'Last 7 days'], ['now-30d', 'Last 30 days']];

const listHash = (project) => `#/dashboards?project=${enc(project)}`;
const viewHash = (project, id) => `${listHash(project)}&id=${enc(id)}`;

export async function dashboardsPage(main, params) {
  const projects = (await api('GET', '/v1/projects')).projects;
  if (!projects.length) {
    main.replaceChildren(h('h1', {}, 'Dashboards'), h('div', { class: 'empty panel' }, 'No projects yet. ', h('a', { href: '#/projects' }, 'Create a project'), ' first.'));
    return;
  }
  const project = params.project || projects[0].name;
  if (!projects.some((p) => p.name === project)) {
    main.replaceChildren(h('h1', {}, 'Dashboards'), h('div', { class: 'error panel', role: 'alert' },
      `Project ${project} does not exist or this key cannot see it.`));
    return;
  }
  if (params.id) { await dashboardView(main, project, params.id); return; }
  await dashboardList(main, projects, project);
}

// ---------------------------------------------------------------- the list

async function dashboardList(main, projects, project) {
  const select = h('select', { name: 'project', 'aria-label': 'Project', onchange: () => { location.hash = listHash(select.value); } },
    projects.map((p) => h('option', { value: p.name, selected: p.name === project }, p.name)));
  const list = h('tbody');
  const errors = h('div');
  const manage = can('manage_project');
  const reload = () => dashboardList(main, projects, project);
  main.replaceChildren(h('h1', {}, 'Dashboards'),
    h('div', { class: 'panel row' }, h('label', {}, 'Project ', select), h('span', { class: 'spacer' }),
      manage ? h('button', { type: 'button', name: 'dashboard-create', onclick: () => nameDialog('New dashboard', '', async (name) => {
        const created = await api('POST', dashboardsPath(project), { name });
        location.hash = viewHash(project, created.id);
      }) }, 'New dashboard') : null,
      manage ? h('button', { type: 'button', class: 'secondary', name: 'dashboard-import', onclick: () => importDialog(project) }, 'Import JSON') : null),
    errors,
    h('div', { class: 'panel' }, h('table', { class: 'dashboards' },
      h('thead', {}, h('tr', {}, ['Name', 'Panels', 'Range', 'Refresh', 'Changed', ''].map((t) => h('th', {}, t)))), list)));
  let dashboards;
  try { dashboards = (await api('GET', dashboardsPath(project))).dashboards; } catch (error) {
    errors.replaceChildren(errorView(error));
    return;
  }
  if (!dashboards.length) {
    list.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, manage
      ? 'No dashboards yet: create one, or use “Add to dashboard” on the Search and Analysis pages.'
      : 'No dashboards in this project yet.')));
    return;
  }
  list.replaceChildren(...dashboards.map((d) => h('tr', { dataset: { id: d.id } },
    h('td', {}, h('a', { href: viewHash(project, d.id), class: 'dashboard-open' }, d.name)),
    h('td', {}, String(d.panels.length)),
    h('td', { class: 'mono' }, `${d.from} → ${d.to}`),
    h('td', {}, d.refresh),
    h('td', {}, new Date(d.updated_at).toLocaleString()),
    h('td', { class: 'actions' }, manage ? [
      h('button', { type: 'button', class: 'secondary small', onclick: () => nameDialog('Rename dashboard', d.name, async (name) => {
        await api('PUT', dashboardsPath(project, d.id), { ...bodyOf(d), name });
        toast(`Renamed to “${name}”.`);
        await reload();
      }) }, 'Rename'),
      ' ',
      h('button', { type: 'button', class: 'secondary small', onclick: async () => {
        if (!window.confirm(`Delete the dashboard “${d.name}”?`)) return;
        try { await api('DELETE', dashboardsPath(project, d.id)); toast(`Deleted “${d.name}”.`); await reload(); } catch (error) {
          errors.replaceChildren(errorView(error));
        }
      } }, 'Delete')] : null))));
}

// Asks for a name; `submit(name)` saves it (its API error is shown by the name).
function nameDialog(title, value, submit) {
  const name = h('input', { name: 'dashboard-name', 'aria-label': 'Name', value, maxlength: 100, class: 'grow', required: true });
  const formErrors = h('div');
  const body = h('div', {}, h('label', { class: 'field' }, 'Name ', name), formErrors);
  const errors = fieldErrors({ name }, formErrors);
  const save = async () => {
    errors.clear();
    try { await submit(name.value); box.close(); } catch (error) { errors.report(error); }
  };
  name.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); save(); } });
  const box = dialog(title, body, [
    h('button', { type: 'button', name: 'dashboard-name-save', onclick: save }, 'Save'),
    h('button', { type: 'button', class: 'secondary', onclick: () => box.close() }, 'Cancel'),
  ]);
  name.focus();
  name.select();
}

// Imports a dashboard from an exported JSON file, under its own or a new name.
function importDialog(project) {
  const file = h('input', { type: 'file', name: 'dashboard-file', accept: 'application/json,.json', 'aria-label': 'Dashboard JSON file' });
  const name = h('input', { name: 'dashboard-import-name', 'aria-label': 'Name', maxlength: 100, class: 'grow', placeholder: 'the name in the file' });
  const formErrors = h('div');
  const body = h('div', {}, h('label', { class: 'field' }, 'File ', file), h('label', { class: 'field' }, 'Name ', name), formErrors);
  const errors = fieldErrors({ name, logpool_dashboard: file }, formErrors);
  let exported = null;
  file.addEventListener('change', async () => {
    errors.clear();
    try {
      exported = JSON.parse(await file.files[0].text());
      name.value = (exported.dashboard && exported.dashboard.name) || '';
    } catch (error) { exported = null; errors.show('logpool_dashboard', `Not a dashboard export: ${error.message}`); }
  });
  const submit = async () => {
    errors.clear();
    if (!exported || !exported.dashboard) { errors.show('logpool_dashboard', 'Choose a file that a dashboard export saved.'); return; }
    try {
      const created = await api('POST', `${dashboardsPath(project)}/import`,
        { ...exported, dashboard: { ...exported.dashboard, name: name.value || exported.dashboard.name } });
      box.close();
      toast(`Imported “${created.name}”.`);
      location.hash = viewHash(project, created.id);
    } catch (error) { errors.report(error); }
  };
  const box = dialog('Import dashboard', body, [
    h('button', { type: 'button', name: 'dashboard-import-save', onclick: submit }, 'Import'),
    h('button', { type: 'button', class: 'secondary', onclick: () => box.close() }, 'Cancel'),
  ]);
}

async function exportDashboard(project, dashboard) {
  const exported = await api('GET', `${dashboardsPath(project, dashboard.id)}/export`);
  const blob = new Blob([JSON.stringify(exported, null, 2)], { type: 'application/json' });
  const link = h('a', { href: URL.createObjectURL(blob), download: `${dashboard.name.replace(/[^\w.-]+/g, '_')}.dashboard.json` });
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// ---------------------------------------------------------------- one dashboard

async function dashboardView(main, project, id) {
  let dashboard = await api('GET', dashboardsPath(project, id));
  const manage = can('manage_project');
  // The range and refresh on screen: the dashboard's, until the user changes them.
  const range = { from: dashboard.from, to: dashboard.to, refresh: dashboard.refresh };
  const from = h('input', { name: 'from', 'aria-label': 'From', value: range.from, size: 20, title: 'Relative (now-24h, -15m) or absolute (RFC 3339)' });
  const to = h('input', { name: 'to', 'aria-label': 'To', value: range.to, size: 20 });
  const preset = h('select', { 'aria-label': 'Time range preset', onchange: () => { if (preset.value) { from.value = preset.value; to.value = 'now'; apply(); } } },
    h('option', { value: '' }, 'Quick range…'), RANGES.map(([v, label]) => h('option', { value: v }, label)));
  const refresh = h('select', { name: 'refresh', 'aria-label': 'Auto-refresh', onchange: () => apply() },
    Object.keys(REFRESH).map((r) => h('option', { value: r, selected: r === range.refresh }, r === 'off' ? 'Refresh: off' : `Refresh: ${r}`)));
  const status = h('span', { class: 'muted', role: 'status' });
  const title = h('h1', {}, dashboard.name);
  const gridNode = h('div', { class: 'dash-grid' });
  // Set through the CSSOM: the console's content security policy refuses style
  // attributes.
  gridNode.style.gridAutoRows = `${ROW_PX}px`;
  gridNode.style.gap = `${GAP_PX}px`;
  gridNode.style.gridTemplateColumns = `repeat(${COLUMNS}, minmax(0, 1fr))`;
  const errors = h('div');
  const save = async (next, message) => {
    try {
      const saved = await api('PUT', dashboardsPath(project, dashboard.id), { ...bodyOf(dashboard), ...next });
      // The server keeps the panels as sent: the objects on screen (which the drag
      // handlers hold) stay the dashboard's.
      dashboard = { ...saved, panels: next.panels || dashboard.panels };
      if (message) toast(message);
      return true;
    } catch (error) { errors.replaceChildren(errorView(error)); return false; }
  };
  const apply = async (event) => {
    if (event) event.preventDefault();
    range.from = from.value; range.to = to.value; range.refresh = refresh.value;
    // The range is the dashboard's for everyone when this key may change it.
    if (manage && (range.from !== dashboard.from || range.to !== dashboard.to || range.refresh !== dashboard.refresh)) {
      await save({ from: range.from, to: range.to, refresh: range.refresh });
    }
    startTimer();
    loadAll();
  };
  const toolbar = h('form', { class: 'panel row dash-toolbar', onsubmit: apply },
    preset, from, '→', to, h('button', { type: 'submit', name: 'dashboard-apply' }, 'Apply'), refresh, status,
    h('span', { class: 'spacer' }),
    manage ? h('button', { type: 'button', name: 'panel-add', onclick: () => panelDialog(project, dashboard, null, (saved) => { dashboard = saved; draw(); }) }, 'Add panel') : null,
    h('button', { type: 'button', class: 'secondary', name: 'dashboard-export', onclick: () => exportDashboard(project, dashboard).catch((e) => errors.replaceChildren(errorView(e))) }, 'Export JSON'),
    h('a', { href: listHash(project), class: 'small' }, 'All dashboards'));
  main.replaceChildren(title, toolbar, errors, gridNode);

  // The panels on screen: id → { node, body, panel }.
  let shown = new Map();
  const draw = () => {
    shown = new Map();
    const nodes = new Map();
    gridNode.replaceChildren();
    if (!dashboard.panels.length) {
      gridNode.appendChild(h('div', { class: 'empty panel dash-empty' }, manage ? 'No panels yet: “Add panel”, or “Add to dashboard” on the Search and Analysis pages.' : 'This dashboard has no panels yet.'));
      return;
    }
    for (const panel of dashboard.panels) {
      const body = h('div', { class: 'dash-body' });
      const handle = h('div', { class: 'dash-head', title: manage ? 'Drag to move' : '' },
        h('span', { class: 'dash-title' }, panel.title || `${panel.kind} · ${panel.query || '*'}`),
        h('span', { class: 'spacer' }),
        manage ? h('button', { type: 'button', class: 'icon', 'aria-label': `Change panel ${panel.title}`, title: 'Change',
          onclick: () => panelDialog(project, dashboard, panel, (saved) => { dashboard = saved; draw(); }) }, '✎') : null,
        manage ? h('button', { type: 'button', class: 'icon', 'aria-label': `Remove panel ${panel.title}`, title: 'Remove', onclick: async () => {
          if (!window.confirm(`Remove the panel “${panel.title || panel.id}”?`)) return;
          if (await save({ panels: dashboard.panels.filter((p) => p.id !== panel.id) })) draw();
        } }, '×') : null);
      const corner = h('div', { class: 'dash-corner', title: 'Drag to resize', hidden: !manage });
      const node = h('section', { class: 'dash-panel panel', dataset: { panel: panel.id, kind: panel.kind }, 'aria-label': panel.title || panel.id }, handle, body, corner);
      place(node, panel.grid);
      nodes.set(panel.id, node);
      shown.set(panel.id, { node, body, panel });
      gridNode.appendChild(node);
    }
    if (manage) {
      for (const panel of dashboard.panels) {
        const { node } = shown.get(panel.id);
        makeMovable({ gridNode, node, handle: node.querySelector('.dash-head'), corner: node.querySelector('.dash-corner'), panel,
          panels: dashboard.panels, nodes, onChange: async (changed, resized) => {
            if (await save({ panels: dashboard.panels })) {
              if (resized) loadOne(changed.id);
            } else draw();
          } });
      }
    }
    loadAll();
  };

  // Each panel loads on its own: a slow or failing one never holds up the others.
  let generation = 0;
  const loadOne = (panelId, round = generation) => {
    const entry = shown.get(panelId);
    if (!entry) return Promise.resolve();
    const { node, body, panel } = entry;
    node.classList.add('loading');
    node.classList.remove('failed', 'loaded');
    const size = { width: Math.max(80, node.clientWidth - 26), height: heightOf(panel.grid.h) - 40 };
    return drawPanel(body, project, panel, range, size).then(() => {
      if (round === generation) node.classList.add('loaded');
    }, (error) => {
      if (round !== generation) return;
      body.replaceChildren(errorView(error, error.detail && error.detail.field === 'query' && panel.sql ? `${panel.query || '*'} | ${panel.sql}` : panel.query));
      node.classList.add('failed');
    }).finally(() => node.classList.remove('loading'));
  };
  const loadAll = () => {
    generation += 1;
    const round = generation;
    const started = performance.now();
    status.textContent = 'Loading…';
    Promise.all([...shown.keys()].map((panelId) => loadOne(panelId, round))).then(() => {
      if (round !== generation) return;
      const failed = gridNode.querySelectorAll('.dash-panel.failed').length;
      status.textContent = `${shown.size} panels in ${Math.round(performance.now() - started)} ms${failed ? ` · ${failed} failed` : ''} · ${new Date().toLocaleTimeString()}`;
      gridNode.dataset.loadedRound = String(round);
    });
  };

  // Auto-refresh: reloads every panel each period while this view is on screen.
  let timer = null;
  const startTimer = () => {
    if (timer) clearInterval(timer);
    timer = null;
    const period = REFRESH[range.refresh] || 0;
    if (!period) return;
    timer = setInterval(() => {
      if (!gridNode.isConnected) { clearInterval(timer); return; }
      if (!document.hidden) loadAll();
    }, period);
  };
  startTimer();
  draw();
}
