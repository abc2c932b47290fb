// Administration pages: API keys (and, for operators, tenants), quotas and usage.
// They act in the tenant the console is switched to (`/v1/tenants/{tenant}/...`);
// what the key's role cannot change is shown read-only, and the server's 403 is
// shown if reached anyway.

import { api, can, currentSession, tenant, tenantPath, enc } from './api.js';
import { h, toast, errorView, fieldErrors, dialog, formatBytes } from './ui.js';
import { formatTime } from './format.js';

// Tells the header's tenant switcher that the list of tenants changed.
export const TENANTS_CHANGED = 'logpool-tenants-changed';

// ------------------------------------------------------------------ keys

const ROLES = ['operator', 'tenant_admin', 'project_admin', 'writer', 'reader'];
const PROJECT_SCOPED = ['project_admin', 'writer', 'reader'];

export async function keysPage(main) {
  const [keys, projects] = await Promise.all([
    api('GET', tenantPath('/keys')).then((answer) => answer.keys),
    api('GET', '/v1/projects').then((answer) => answer.projects),
  ]);
  main.replaceChildren(h('h1', {}, `API keys of tenant ${tenant()}`));
  if (can('operate')) main.appendChild(await tenantsPanel(main));
  main.appendChild(createKeyForm(main, projects));
  main.appendChild(keysTable(main, keys));
}

async function tenantsPanel(main) {
  const tenants = (await api('GET', '/v1/tenants')).tenants;
  const name = h('input', { name: 'tenant-name', 'aria-label': 'New tenant name', placeholder: 'new-tenant', required: true });
  const errors = h('div');
  let fields = null;
  const form = h('form', { class: 'row', onsubmit: async (e) => {
    e.preventDefault();
    fields.clear();
    try {
      await api('POST', '/v1/tenants', { name: name.value.trim() });
      toast(`Tenant ${name.value.trim()} created`);
      window.dispatchEvent(new CustomEvent(TENANTS_CHANGED));
      await keysPage(main);
    } catch (error) { fields.report(error); }
  } }, h('label', {}, 'Tenant name ', name), h('button', { type: 'submit' }, 'Create tenant'));
  fields = fieldErrors({ name }, errors);
  return h('section', { class: 'panel', 'aria-label': 'Tenants' }, h('h2', {}, 'Tenants'),
    h('p', { class: 'muted' }, 'As an operator you act in one tenant at a time: pick it in the header.'),
    h('table', { class: 'tenants' }, h('thead', {}, h('tr', {}, h('th', {}, 'Tenant'), h('th', {}, 'Created'))),
      h('tbody', {}, tenants.map((t) => h('tr', { dataset: { tenant: t.name } },
        h('td', {}, t.name, t.name === tenant() ? h('span', { class: 'badge' }, 'current') : null),
        h('td', { class: 'mono', title: t.created_at }, formatTime(t.created_at)))))),
    form, errors);
}

function createKeyForm(main, projects) {
  const session = currentSession();
  const roles = ROLES.filter((role) => role !== 'operator' || (can('operate') && tenant() === session.tenant));
  const role = h('select', { name: 'key-role', 'aria-label': 'Role' },
    roles.map((r) => h('option', { value: r, selected: r === 'reader' }, r)));
  const project = h('select', { name: 'key-project', 'aria-label': 'Project scope' },
    h('option', { value: '' }, 'all projects'), projects.map((p) => h('option', { value: p.name }, p.name)));
  const description = h('input', { name: 'key-description', 'aria-label': 'Key description', placeholder: 'what the key is for', class: 'grow' });
  const scopeAllowed = () => {
    project.disabled = !PROJECT_SCOPED.includes(role.value);
    if (project.disabled) project.value = '';
  };
  role.addEventListener('change', scopeAllowed);
  scopeAllowed();
  const errors = h('div');
  let fields = null;
  const form = h('form', { class: 'panel', 'aria-label': 'Create key', onsubmit: async (e) => {
    e.preventDefault();
    fields.clear();
    const body = { role: role.value, description: description.value.trim() };
    if (project.value) body.project = project.value;
    try {
      const created = await api('POST', tenantPath('/keys'), body);
      showSecretOnce(created, () => keysPage(main).catch((error) => {
        // Closed by a logout or a refused key: the login page is up, leave it.
        if (error.status !== 401) main.replaceChildren(errorView(error));
      }));
    } catch (error) { fields.report(error); }
  } }, h('h2', {}, 'Create a key'),
  h('div', { class: 'row' }, h('label', {}, 'Role ', role), h('label', {}, 'Project ', project),
    h('label', { class: 'grow row' }, 'Description ', description), h('button', { type: 'submit' }, 'Create key')),
  errors);
  fields = fieldErrors({ role, project, description }, errors);
  return form;
}

// The new key's secret, shown once: the server keeps only a hash of it, and closing
// this dialog removes it from the page.
function showSecretOnce(created, onClose) {
  const secret = h('code', { class: 'secret mono', 'aria-label': 'New key secret' }, created.key);
  const copied = h('span', { class: 'muted', role: 'status' });
  const copy = h('button', { type: 'button', class: 'secondary', onclick: async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      copied.textContent = 'Copied.';
    } catch {
      // No clipboard access (e.g. permission refused): select it for Ctrl+C instead.
      getSelection().selectAllChildren(secret);
      copied.textContent = 'Selected: press Ctrl+C to copy.';
    }
  } }, 'Copy');
  const box = dialog(`Key ${created.id} created`, h('div', {},
    h('p', { class: 'warning', role: 'alert' }, 'Copy the key now: this is the only time it is shown. logpool keeps only a hash of it.'),
    h('p', { class: 'row' }, secret, copy, copied),
    h('p', { class: 'muted' }, `${created.role}${created.project ? ` of project ${created.project}` : ''} in tenant ${created.tenant}`)),
  [h('button', { type: 'button', onclick: () => box.close() }, 'Done')]);
  box.addEventListener('close', () => { secret.textContent = ''; onClose(); });
}

function keysTable(main, keys) {
  const own = currentSession().key_id;
  const errors = h('div');
  const reload = () => keysPage(main).catch((error) => errors.replaceChildren(errorView(error)));
  const setEnabled = async (key, enabled) => {
    try {
      await api('PATCH', tenantPath(`/keys/${enc(key.id)}`), { enabled });
      toast(`Key ${key.id} ${enabled ? 'enabled' : 'disabled'}`);
      await reload();
    } catch (error) { errors.replaceChildren(errorView(error)); }
  };
  const rows = keys.map((key) => h('tr', { dataset: { key: key.id } },
    h('td', { class: 'mono' }, key.id, key.id === own ? h('span', { class: 'badge' }, 'this key') : null),
    h('td', {}, key.role), h('td', {}, key.project || 'all'),
    h('td', {}, key.description || '—'),
    h('td', {}, key.enabled ? 'enabled' : h('span', { class: 'error' }, 'disabled')),
    h('td', { class: 'mono', title: key.created_at }, formatTime(key.created_at)),
    h('td', {}, h('span', { class: 'row' },
      h('button', { type: 'button', class: 'secondary', onclick: () => setEnabled(key, !key.enabled) }, key.enabled ? 'Disable' : 'Enable'),
      h('button', { type: 'button', class: 'danger', onclick: () => confirmDeleteKey(key, own, reload) }, 'Delete')))));
  return h('section', { class: 'panel' }, h('h2', {}, 'Keys'),
    keys.length
      ? h('table', { class: 'keys' }, h('thead', {}, h('tr', {}, ['Id', 'Role', 'Project', 'Description', 'State', 'Created', ''].map((t) => h('th', {}, t)))), h('tbody', {}, rows))
      : h('p', { class: 'empty' }, 'No keys in this tenant yet.'),
    errors);
}

function confirmDeleteKey(key, own, reload) {
  const errors = h('div');
  const remove = h('button', { type: 'button', class: 'danger', onclick: async () => {
    try {
      await api('DELETE', tenantPath(`/keys/${enc(key.id)}`));
      box.close();
      toast(`Key ${key.id} deleted`);
      await reload();
    } catch (error) { errors.replaceChildren(errorView(error)); }
  } }, 'Delete key');
  const box = dialog(`Delete key ${key.id}?`, h('div', {},
    h('p', {}, 'Every request with this key is refused from now on. This cannot be undone.'),
    key.id === own ? h('p', { class: 'warning' }, 'This is the key you are logged in with: you will be logged out.') : null,
    errors),
  [remove, h('button', { type: 'button', class: 'secondary', onclick: () => box.close() }, 'Cancel')]);
}

// ---------------------------------------------------------------- quotas

// The fields of a quota (the server's `Limits`), in the order shown.
const LIMITS = [
  ['ingest_records_per_s', 'Ingest records per second'],
  ['ingest_bytes_per_s', 'Ingest bytes per second'],
  ['storage_bytes', 'Index storage per project (bytes)'],
  ['concurrent_queries', 'Searches running at once'],
  ['queries_per_s', 'Searches started per second'],
  ['max_query_range_s', 'Longest search range (seconds)'],
  ['concurrent_tails', 'Live tails open at once'],
];

// A form over one `Limits`: empty means no limit; `save` is null when read-only.
function limitsForm(label, limits, save) {
  const inputs = {};
  const idPrefix = `limit-${label.replace(/\W+/g, '-')}`;
  const rows = LIMITS.map(([name, text]) => {
    const input = h('input', { name, id: `${idPrefix}-${name}`, inputmode: 'numeric', 'aria-label': `${text} (${label})`, value: limits[name] ?? '',
      placeholder: 'no limit', disabled: !save, class: 'limit' });
    inputs[name] = input;
    const hint = h('span', { class: 'muted hint' });
    if (name.endsWith('bytes') || name.includes('bytes_')) {
      const show = () => { hint.textContent = /^\d+$/.test(input.value.trim()) ? `= ${formatBytes(Number(input.value))}` : ''; };
      input.addEventListener('input', show);
      show();
    }
    return h('div', { class: 'limit-row' }, h('label', { for: `${idPrefix}-${name}` }, text), h('div', { class: 'field' }, h('div', { class: 'row' }, input, hint)));
  });
  const errors = h('div');
  const fields = fieldErrors(inputs, errors);
  const form = h('form', { class: 'limits', 'aria-label': `Quotas of ${label}`, novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    fields.clear();
    const body = {};
    for (const [name, input] of Object.entries(inputs)) {
      const text = input.value.trim();
      if (!text) continue;
      if (!/^\d+$/.test(text)) { fields.show(name, `\`${name}\` must be a whole number; leave it empty for no limit`); return; }
      body[name] = Number(text);
    }
    try {
      await save(body);
      toast(`Quotas of ${label} saved`);
      errors.replaceChildren(h('p', { class: 'ok', role: 'status' }, 'Saved.'));
    } catch (error) { fields.report(error); }
  } }, rows, save ? h('button', { type: 'submit' }, 'Save quotas') : null, errors);
  return form;
}

export async function quotasPage(main) {
  const projects = (await api('GET', '/v1/projects')).projects;
  main.replaceChildren(h('h1', {}, `Quotas of tenant ${tenant()}`),
    h('p', { class: 'muted' }, 'A project is bound by its own quotas and its tenant’s, whichever is tighter. Empty means no limit.'));
  if (can('manage_tenant')) {
    const limits = await api('GET', tenantPath('/quotas'));
    const save = can('operate') ? (body) => api('PUT', tenantPath('/quotas'), body) : null;
    main.appendChild(h('section', { class: 'panel', dataset: { quotas: 'tenant' } }, h('h2', {}, 'Tenant'),
      save ? null : h('p', { class: 'muted' }, 'Set by the operator.'),
      limitsForm(`tenant ${tenant()}`, limits, save)));
  }
  if (!projects.length) main.appendChild(h('div', { class: 'empty panel' }, 'No projects yet.'));
  for (const project of projects) {
    const limits = await api('GET', `/v1/projects/${enc(project.name)}/quotas`);
    const save = can('manage_tenant') ? (body) => api('PUT', `/v1/projects/${enc(project.name)}/quotas`, body) : null;
    main.appendChild(h('section', { class: 'panel', dataset: { quotas: project.name } }, h('h2', {}, `Project ${project.name}`),
      save ? null : h('p', { class: 'muted' }, 'Set by a tenant admin.'),
      limitsForm(`project ${project.name}`, limits, save)));
  }
}

// ----------------------------------------------------------------- usage

export async function usagePage(main) {
  const usage = await api('GET', tenantPath('/usage'));
  const card = (label, value) => h('div', { class: 'panel card' }, h('div', { class: 'muted' }, label), h('div', { class: 'big' }, value));
  const rows = usage.projects.map((project) => {
    const quota = project.quotas && project.quotas.storage_bytes;
    const used = project.storage_bytes;
    return h('tr', { dataset: { project: project.name } },
      h('td', {}, project.name),
      h('td', {}, String(project.pools)),
      h('td', { class: 'storage' }, formatBytes(used)),
      h('td', {}, quota ? formatBytes(quota) : 'no quota'),
      h('td', { class: 'bar' }, quota
        ? h('span', { class: 'row' }, h('meter', { min: 0, max: quota, value: Math.min(used, quota), low: quota * 0.7, high: quota * 0.9, optimum: 0,
          'aria-label': `Storage of ${project.name}: ${formatBytes(used)} of ${formatBytes(quota)}` }),
        h('span', { class: 'muted' }, `${((100 * used) / quota).toFixed(used < quota / 10 ? 2 : 0)}%`))
        : h('span', { class: 'muted' }, '—')),
      h('td', {}, project.over_storage_quota ? h('span', { class: 'badge over' }, 'over quota: writes refused') : null));
  });
  main.replaceChildren(h('h1', {}, `Usage of tenant ${usage.tenant}`),
    h('div', { class: 'row cards' }, card('Index storage', formatBytes(usage.storage_bytes)), card('Pools', String(usage.pools)), card('API keys', String(usage.keys))),
    h('section', { class: 'panel' }, h('h2', {}, 'Storage per project'),
      usage.projects.length
        ? h('table', { class: 'usage' }, h('thead', {}, h('tr', {}, ['Project', 'Pools', 'Storage', 'Quota', 'Used', ''].map((t) => h('th', {}, t)))), h('tbody', {}, rows))
        : h('p', { class: 'empty' }, 'No projects yet.')));
}
