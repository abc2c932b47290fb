// The alerts page: a project's alert rules with the state of each (ok, pending,
// firing, per group), a rule's detail with its history of transitions, and the
// channels and silences tabs (alertchannels.js). A rule is made from scratch or from
// a saved search (its query, pool and pipe SQL). Keys that manage the project create,
// change and delete; readers see everything.

import { api, can, enc } from './api.js';
import { h, dialog, toast, fieldErrors, errorView } from './ui.js';
import { formatNumber, formatTime } from './format.js';
import { channelsTab, silencesTab, silenceDialog, channelsPath, labelsText, parseLabels } from './alertchannels.js';

const rulesPath = (project, id) => `/v1/projects/${enc(project)}/alerts${id === undefined ? '' : `/${enc(id)}`}`;
const pageHash = (project, extra = {}) => `#/alerts?${new URLSearchParams({ project, ...extra })}`;

const OPS = [['>', 'above'], ['>=', 'at or above'], ['<', 'below'], ['<=', 'at or below'], ['==', 'equal to'],
  ['change_pct', 'changes by more than % vs the previous window'], ['no_data', 'has no data']];
const SEVERITIES = ['critical', 'warning', 'info'];
// Worst first: the state a rule shows when its groups differ.
const STATE_ORDER = ['firing', 'pending', 'resolved', 'ok'];

function stateBadge(state) {
  return h('span', { class: `badge state-${state}`, dataset: { state } }, state);
}

// The worst state of a rule's groups, `ok` when it has none yet.
function ruleState(rule) {
  const states = (rule.state || []).map((s) => s.state);
  return STATE_ORDER.find((s) => states.includes(s)) || 'ok';
}

const conditionText = (c) => (c.op === 'no_data' ? 'no data' : c.op === 'change_pct' ? `change > ${c.threshold}%` : `${c.op} ${c.threshold}`);
const secondsText = (s) => (s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`);

export async function alertsPage(main, params) {
  const projects = (await api('GET', '/v1/projects')).projects;
  if (!projects.length) {
    main.replaceChildren(h('h1', {}, 'Alerts'), h('div', { class: 'empty panel' }, 'No projects yet.'));
    return;
  }
  const project = params.project || projects[0].name;
  if (!projects.some((p) => p.name === project)) {
    main.replaceChildren(h('h1', {}, 'Alerts'), h('div', { class: 'error panel', role: 'alert' }, `Project ${project} does not exist or this key cannot see it.`));
    return;
  }
  if (params.rule) { await ruleDetail(main, project, params.rule); return; }
  const tab = ['rules', 'channels', 'silences'].includes(params.tab) ? params.tab : 'rules';
  const select = h('select', { name: 'project', 'aria-label': 'Project', onchange: () => { location.hash = pageHash(select.value, { tab }); } },
    projects.map((p) => h('option', { value: p.name, selected: p.name === project }, p.name)));
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Alerts' }, ['rules', 'channels', 'silences'].map((t) =>
    h('a', { href: pageHash(project, { tab: t }), class: t === tab ? 'active' : '', 'aria-current': t === tab ? 'page' : null }, t[0].toUpperCase() + t.slice(1))));
  const box = h('div', { class: 'panel' });
  main.replaceChildren(h('h1', {}, 'Alerts'), h('div', { class: 'panel row' }, h('label', {}, 'Project ', select), tabs), box);
  if (tab === 'channels') { await channelsTab(box, project); return; }
  const rules = await api('GET', rulesPath(project)).then((a) => a.alerts, (error) => { box.replaceChildren(errorView(error)); return null; });
  if (!rules) return;
  if (tab === 'silences') { await silencesTab(box, project, rules); return; }
  rulesTab(main, box, project, rules);
}

function rulesTab(main, box, project, rules) {
  const manage = can('manage_project');
  const reload = () => alertsPage(main, { project });
  box.replaceChildren(
    h('div', { class: 'row' }, h('h2', {}, 'Rules'), h('span', { class: 'spacer' }),
      manage ? h('button', { type: 'button', name: 'rule-create', onclick: () => ruleDialog(project, null, reload) }, 'New rule') : null,
      manage ? h('button', { type: 'button', class: 'secondary', name: 'rule-from-saved', onclick: () => fromSavedDialog(project, reload) }, 'New rule from a saved search') : null),
    h('table', { class: 'alert-rules' },
      h('thead', {}, h('tr', {}, ['State', 'Name', 'Severity', 'Pool', 'Query', 'Condition', 'Every / window', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, rules.length ? rules.map((rule) => h('tr', { dataset: { id: rule.id, state: ruleState(rule) } },
        h('td', {}, stateBadge(ruleState(rule)), rule.enabled ? null : h('span', { class: 'badge' }, 'disabled'),
          rule.last_error ? h('span', { class: 'badge state-firing', title: rule.last_error }, 'error') : null),
        h('td', {}, h('a', { href: pageHash(project, { rule: rule.id }), class: 'rule-open' }, rule.name)),
        h('td', {}, h('span', { class: `badge severity-${rule.severity}` }, rule.severity)),
        h('td', {}, rule.pool),
        h('td', { class: 'mono' }, rule.query + (rule.sql ? ` | ${rule.sql}` : '')),
        h('td', { class: 'mono' }, conditionText(rule.condition), rule.group_by ? ` by ${rule.group_by}` : ''),
        h('td', {}, `${secondsText(rule.every_secs)} / ${secondsText(rule.window_secs)}`),
        h('td', { class: 'actions' }, manage ? [
          h('button', { type: 'button', class: 'secondary small', onclick: () => ruleDialog(project, rule, reload) }, 'Edit'), ' ',
          h('button', { type: 'button', class: 'secondary small', onclick: async () => {
            if (!window.confirm(`Delete the rule “${rule.name}”?`)) return;
            try { await api('DELETE', rulesPath(project, rule.id)); toast(`Deleted “${rule.name}”.`); await reload(); } catch (error) { toast(error.message); }
          } }, 'Delete')] : null)))
        : h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No alert rules yet.')))));
}

// Picks a saved search, then opens the rule form filled from it.
async function fromSavedDialog(project, done) {
  const saved = (await api('GET', `/v1/projects/${enc(project)}/saved-searches`)).saved_searches;
  if (!saved.length) { toast('This project has no saved searches yet: save one on the Search page.'); return; }
  const select = h('select', { name: 'rule-saved', 'aria-label': 'Saved search' }, saved.map((s) => h('option', { value: s.id }, `${s.name} — ${s.query || '*'}`)));
  const box = dialog('New rule from a saved search', h('label', { class: 'field' }, 'Saved search ', select), [
    h('button', { type: 'button', name: 'rule-from-saved-next', onclick: () => {
      const search = saved.find((s) => s.id === select.value);
      box.close();
      const pipe = search.query.indexOf('|');
      ruleDialog(project, null, done, {
        name: search.name, pool: search.pool, saved_search_id: search.id,
        query: (pipe < 0 ? search.query : search.query.slice(0, pipe)).trim() || '*',
        sql: pipe < 0 ? null : search.query.slice(pipe + 1).trim(),
      });
    } }, 'Next'),
    h('button', { type: 'button', class: 'secondary', onclick: () => box.close() }, 'Cancel'),
  ]);
}

// The rule form: a new rule (with `preset` fields, e.g. from a saved search) or a
// change to `rule`.
async function ruleDialog(project, rule, done, preset = {}) {
  const [pools, channels] = await Promise.all([
    api('GET', `/v1/projects/${enc(project)}/pools`).then((a) => a.pools),
    api('GET', channelsPath(project)).then((a) => a.channels, () => []),
  ]);
  const r = { name: '', pool: (pools[0] || {}).name || '', query: '*', sql: null, window_secs: 300, every_secs: 60,
    condition: { op: '>', threshold: 0 }, group_by: null, severity: 'warning', labels: {}, description: '{{rule}}: {{value}} on {{group}}',
    pending_evaluations: 1, renotify_secs: 3600, max_lines: 10, channels: [], enabled: true, saved_search_id: null, ...(rule || {}), ...preset };
  const input = (name, label, value, attrs = {}) => h('input', { name, 'aria-label': label, value: value ?? '', ...attrs });
  const name = input('rule-name', 'Name', r.name, { class: 'grow', maxlength: 100 });
  const pool = h('select', { name: 'rule-pool', 'aria-label': 'Pool' }, pools.map((p) => h('option', { value: p.name, selected: p.name === r.pool }, p.name)));
  const query = input('rule-query', 'Query', r.query, { class: 'wide mono' });
  const sql = h('textarea', { name: 'rule-sql', 'aria-label': 'SQL', rows: 2, class: 'wide mono', placeholder: 'optional: SELECT host, count(*) AS c GROUP BY host' }, r.sql || '');
  const windowSecs = input('rule-window', 'Window (seconds)', r.window_secs, { type: 'number', min: 10, class: 'narrow' });
  const everySecs = input('rule-every', 'Every (seconds)', r.every_secs, { type: 'number', min: 10, class: 'narrow' });
  const op = h('select', { name: 'rule-op', 'aria-label': 'Condition' }, OPS.map(([v, label]) => h('option', { value: v, selected: v === r.condition.op }, label)));
  const threshold = input('rule-threshold', 'Threshold', r.condition.threshold ?? 0, { type: 'number', step: 'any', class: 'narrow' });
  const groupBy = input('rule-group-by', 'Group by', r.group_by || '', { placeholder: 'optional: host' });
  const severity = h('select', { name: 'rule-severity', 'aria-label': 'Severity' }, SEVERITIES.map((s) => h('option', { value: s, selected: s === r.severity }, s)));
  const labels = input('rule-labels', 'Labels', labelsText(r.labels), { class: 'grow mono', placeholder: 'team=web' });
  const description = input('rule-description', 'Description', r.description, { class: 'wide' });
  const pending = input('rule-pending', 'Breaches before firing', r.pending_evaluations, { type: 'number', min: 1, class: 'narrow' });
  const renotify = input('rule-renotify', 'Re-notify after (seconds)', r.renotify_secs, { type: 'number', min: 0, class: 'narrow' });
  const maxLines = input('rule-max-lines', 'Lines per notification', r.max_lines, { type: 'number', min: 0, class: 'narrow' });
  const enabled = input('rule-enabled', 'Enabled', undefined, { type: 'checkbox', checked: r.enabled });
  const channelBoxes = channels.map((c) => h('label', { class: 'chip' }, h('input', { type: 'checkbox', name: 'rule-channel', value: c.id, checked: r.channels.includes(c.id) }), ` ${c.name} (${c.kind})`));
  const formErrors = h('div');
  const body = h('div', { class: 'panel-form' },
    h('div', { class: 'row' }, h('label', { class: 'field grow' }, 'Name ', name), h('label', {}, 'Pool ', pool), h('label', {}, 'Severity ', severity)),
    h('label', { class: 'field' }, 'Query ', query), h('label', { class: 'field' }, 'Pipe SQL ', sql),
    h('div', { class: 'row' }, h('label', {}, 'When the value ', op), h('label', {}, ' ', threshold), h('label', {}, 'grouped by ', groupBy)),
    h('div', { class: 'row' }, h('label', {}, 'Window s ', windowSecs), h('label', {}, 'Every s ', everySecs), h('label', {}, 'Fire after ', pending, ' breaches')),
    h('div', { class: 'row' }, h('label', {}, 'Re-notify s ', renotify), h('label', {}, 'Lines ', maxLines), h('label', {}, enabled, ' enabled')),
    h('label', { class: 'field' }, 'Labels ', labels), h('label', { class: 'field' }, 'Description ({{value}} {{group}} {{rule}} {{window}}) ', description),
    h('div', {}, 'Channels: ', channelBoxes.length ? channelBoxes : h('span', { class: 'muted' }, 'none yet (Channels tab)')), formErrors);
  const errors = fieldErrors({ name, pool, query, sql, window_secs: windowSecs, every_secs: everySecs, condition: op, 'condition.op': op,
    'condition.threshold': threshold, group_by: groupBy, severity, labels, description, pending_evaluations: pending,
    renotify_secs: renotify, max_lines: maxLines }, formErrors);
  const save = async () => {
    errors.clear();
    const next = {
      name: name.value, pool: pool.value, query: query.value, sql: sql.value.trim() || null,
      window_secs: Number(windowSecs.value), every_secs: Number(everySecs.value),
      condition: { op: op.value, threshold: Number(threshold.value) }, group_by: groupBy.value.trim() || null,
      severity: severity.value, labels: parseLabels(labels.value), description: description.value,
      pending_evaluations: Number(pending.value), renotify_secs: Number(renotify.value), max_lines: Number(maxLines.value),
      channels: channelBoxes.map((l) => l.querySelector('input')).filter((c) => c.checked).map((c) => c.value),
      enabled: enabled.checked, saved_search_id: r.saved_search_id || null,
    };
    try {
      const saved = rule ? await api('PUT', rulesPath(project, rule.id), next) : await api('POST', rulesPath(project), next);
      box.close();
      toast(`Saved rule “${saved.name}”.`);
      await done(saved);
    } catch (error) { errors.report(error); }
  };
  const box = dialog(rule ? 'Edit rule' : 'New rule', body, [
    h('button', { type: 'button', name: 'rule-save', onclick: save }, 'Save rule'),
    h('button', { type: 'button', class: 'secondary', onclick: () => box.close() }, 'Cancel'),
  ]);
  name.focus();
}

async function ruleDetail(main, project, id) {
  const [rule, history] = await Promise.all([
    api('GET', rulesPath(project, id)),
    api('GET', `${rulesPath(project, id)}/history?limit=200`).then((a) => a.transitions),
  ]);
  const manage = can('manage_project');
  const explore = (s) => {
    const to = s && s.last_eval ? Date.parse(s.last_eval) : Date.now();
    const query = new URLSearchParams({ project, pool: rule.pool, q: rule.query === '*' ? '' : rule.query,
      from: new Date(to - rule.window_secs * 1000).toISOString(), to: new Date(to).toISOString() });
    return `#/search?${query}`;
  };
  const reload = () => ruleDetail(main, project, id);
  main.replaceChildren(
    h('h1', {}, 'Alert: ', rule.name, ' ', stateBadge(ruleState(rule))),
    h('div', { class: 'panel row' }, h('a', { href: pageHash(project) }, '← All rules'), h('span', { class: 'spacer' }),
      h('a', { href: explore(null), class: 'rule-explore' }, 'Open the window in the explorer'),
      manage ? h('button', { type: 'button', class: 'secondary', name: 'rule-silence', onclick: () => silenceDialog(project, [rule], reload, rule.id) }, 'Silence') : null,
      manage ? h('button', { type: 'button', class: 'secondary', name: 'rule-edit', onclick: () => ruleDialog(project, rule, reload) }, 'Edit') : null),
    rule.last_error ? h('div', { class: 'error panel', role: 'alert' }, `Last evaluation failed: ${rule.last_error}`) : null,
    h('div', { class: 'panel' }, h('table', { class: 'record' }, h('tbody', {},
      [['Pool', rule.pool], ['Query', rule.query + (rule.sql ? ` | ${rule.sql}` : '')], ['Condition', `${conditionText(rule.condition)}${rule.group_by ? ` by ${rule.group_by}` : ''}`],
        ['Window / every', `${secondsText(rule.window_secs)} / ${secondsText(rule.every_secs)}`], ['Fires after', `${rule.pending_evaluations} breaches`],
        ['Re-notifies', secondsText(rule.renotify_secs)], ['Severity', rule.severity], ['Labels', labelsText(rule.labels) || '—'],
        ['Channels', String(rule.channels.length)], ['Enabled', rule.enabled ? 'yes' : 'no']]
        .map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', { class: 'mono' }, v)))))),
    h('div', { class: 'panel' }, h('h2', {}, 'State per group'), h('table', { class: 'alert-state' },
      h('thead', {}, h('tr', {}, ['Group', 'State', 'Value', 'Since', 'Last evaluated', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, (rule.state || []).length ? rule.state.map((s) => h('tr', { dataset: { state: s.state } },
        h('td', {}, s.group || '—'), h('td', {}, stateBadge(s.state)), h('td', { class: 'number' }, s.value === null || s.value === undefined ? '∅' : formatNumber(s.value)),
        h('td', {}, s.since ? formatTime(Date.parse(s.since)).slice(0, 19) : ''), h('td', {}, s.last_eval ? formatTime(Date.parse(s.last_eval)).slice(0, 19) : ''),
        h('td', {}, h('a', { href: explore(s) }, 'lines'))))
        : h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'Not evaluated yet.'))))),
    h('div', { class: 'panel' }, h('h2', {}, 'History'), h('table', { class: 'alert-history' },
      h('thead', {}, h('tr', {}, ['At', 'Group', 'From', 'To', 'Value', 'Notified'].map((t) => h('th', {}, t)))),
      h('tbody', {}, history.length ? history.map((t) => h('tr', {},
        h('td', {}, formatTime(Date.parse(t.at)).slice(0, 19)), h('td', {}, t.group || '—'), h('td', {}, stateBadge(t.from)), h('td', {}, stateBadge(t.to)),
        h('td', { class: 'number' }, t.value === null || t.value === undefined ? '∅' : formatNumber(t.value)), h('td', {}, t.notified ? 'yes' : 'no')))
        : h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No transitions yet.'))))));
}
