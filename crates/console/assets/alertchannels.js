// The alerts page's channels and silences tabs. Channels (webhook, Slack, DingTalk,
// Feishu, email) are where a project's alert rules send their notifications; each
// can be sent a test, and shows how its last delivery went. Silences mute a rule or
// every rule whose labels match, for a while. Secrets (a webhook's signing secret, an
// SMTP password) are write-only: the server answers `***` for one that is set, and
// that value sent back keeps it.

import { api, can, enc } from './api.js';
import { h, dialog, toast, fieldErrors, errorView } from './ui.js';
import { formatTime } from './format.js';

export const channelsPath = (project, id) => `/v1/projects/${enc(project)}/alert-channels${id === undefined ? '' : `/${enc(id)}`}`;
export const silencesPath = (project, id) => `/v1/projects/${enc(project)}/alert-silences${id === undefined ? '' : `/${enc(id)}`}`;

const KINDS = ['webhook', 'slack', 'dingtalk', 'feishu', 'email'];

// "k=v, k2=v2" ⇄ {k: v}.
export const labelsText = (labels) => Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join(', ');
export function parseLabels(text) {
  const labels = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = part.indexOf('=');
    if (at > 0) labels[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return labels;
}

function deliveryBadge(channel) {
  const last = channel.last_delivery;
  if (!last) return h('span', { class: 'badge' }, 'never sent');
  return h('span', { class: `badge ${last.ok ? 'state-ok' : 'state-firing'}`, title: last.error || '' },
    `${last.ok ? 'ok' : 'failing'} · ${formatTime(Date.parse(last.at)).slice(0, 19)}`);
}

const targetOf = (channel) => (channel.kind === 'email'
  ? `${(channel.config.to || []).join(', ')} via ${channel.config.smtp_host || '?'}:${channel.config.smtp_port || ''}`
  : channel.config.url || '');

// ------------------------------------------------------------ channels

export async function channelsTab(box, project) {
  const manage = can('manage_project');
  const list = h('tbody');
  const errors = h('div');
  const reload = () => channelsTab(box, project);
  box.replaceChildren(
    h('div', { class: 'row' }, h('h2', {}, 'Channels'), h('span', { class: 'spacer' }),
      manage ? h('button', { type: 'button', name: 'channel-create', onclick: () => channelDialog(project, null, reload) }, 'New channel') : null),
    errors,
    h('table', { class: 'alert-channels' }, h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Sends to', 'Last delivery', ''].map((t) => h('th', {}, t)))), list));
  let channels;
  try { channels = (await api('GET', channelsPath(project))).channels; } catch (error) { errors.replaceChildren(errorView(error)); return; }
  if (!channels.length) { list.replaceChildren(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No channels yet.'))); return; }
  list.replaceChildren(...channels.map((channel) => h('tr', { dataset: { id: channel.id } },
    h('td', {}, channel.name), h('td', {}, channel.kind), h('td', { class: 'mono' }, targetOf(channel)),
    h('td', {}, deliveryBadge(channel), channel.last_delivery && channel.last_delivery.error ? h('div', { class: 'error small' }, channel.last_delivery.error) : null),
    h('td', { class: 'actions' }, manage ? [
      h('button', { type: 'button', class: 'secondary small', name: 'channel-test', onclick: async (e) => {
        e.target.disabled = true;
        try {
          const answer = await api('POST', `${channelsPath(project, channel.id)}/test`);
          toast(answer.ok ? `Test sent to “${channel.name}” (${answer.status ?? 'ok'}).` : `Test to “${channel.name}” failed: ${answer.error || answer.status}`);
          await reload();
        } catch (error) { errors.replaceChildren(errorView(error)); } finally { e.target.disabled = false; }
      } }, 'Send test'), ' ',
      h('button', { type: 'button', class: 'secondary small', onclick: () => channelDialog(project, channel, reload) }, 'Edit'), ' ',
      h('button', { type: 'button', class: 'secondary small', onclick: async () => {
        if (!window.confirm(`Delete the channel “${channel.name}”?`)) return;
        try { await api('DELETE', channelsPath(project, channel.id)); toast(`Deleted “${channel.name}”.`); await reload(); } catch (error) { errors.replaceChildren(errorView(error)); }
      } }, 'Delete')] : null))));
}

function channelDialog(project, channel, done) {
  const config = (channel && channel.config) || {};
  const input = (name, label, value, attrs = {}) => h('input', { name, 'aria-label': label, value: value ?? '', class: 'grow', ...attrs });
  const name = input('channel-name', 'Name', channel && channel.name, { maxlength: 100 });
  const kind = h('select', { name: 'channel-kind', 'aria-label': 'Kind' }, KINDS.map((k) => h('option', { value: k, selected: channel ? channel.kind === k : k === 'webhook' }, k)));
  const url = input('channel-url', 'URL', config.url, { placeholder: 'https://…' });
  const secret = input('channel-secret', 'Secret', config.secret, { type: 'password', autocomplete: 'off', placeholder: 'optional: signs each call' });
  const headers = h('textarea', { name: 'channel-headers', 'aria-label': 'Headers', rows: 2, class: 'wide mono', placeholder: '{"X-Team": "web"}' },
    config.headers ? JSON.stringify(config.headers) : '');
  const host = input('channel-smtp-host', 'SMTP host', config.smtp_host);
  const port = input('channel-smtp-port', 'SMTP port', config.smtp_port ?? 587, { type: 'number', min: 1, max: 65535, class: 'narrow' });
  const tls = h('select', { name: 'channel-smtp-tls', 'aria-label': 'SMTP TLS' }, ['starttls', 'tls', 'none'].map((t) => h('option', { value: t, selected: (config.smtp_tls || 'starttls') === t }, t)));
  const username = input('channel-username', 'SMTP user', config.username, { autocomplete: 'off' });
  const password = input('channel-password', 'SMTP password', config.password, { type: 'password', autocomplete: 'off' });
  const from = input('channel-from', 'From', config.from, { placeholder: 'alerts@example.com' });
  const to = input('channel-to', 'To', (config.to || []).join(', '), { placeholder: 'oncall@example.com, …' });
  const urlPart = h('div', {}, h('label', { class: 'field' }, 'URL ', url), h('label', { class: 'field' }, 'Secret ', secret),
    h('label', { class: 'field webhook-only' }, 'Headers (JSON object) ', headers));
  const emailPart = h('div', {}, h('div', { class: 'row' }, h('label', { class: 'field grow' }, 'SMTP host ', host), h('label', {}, 'Port ', port), h('label', {}, 'TLS ', tls)),
    h('div', { class: 'row' }, h('label', { class: 'field grow' }, 'User ', username), h('label', { class: 'field grow' }, 'Password ', password)),
    h('label', { class: 'field' }, 'From ', from), h('label', { class: 'field' }, 'To ', to));
  const sync = () => {
    emailPart.hidden = kind.value !== 'email';
    urlPart.hidden = kind.value === 'email';
    urlPart.querySelector('.webhook-only').hidden = kind.value !== 'webhook';
  };
  kind.addEventListener('change', sync);
  sync();
  const formErrors = h('div');
  const body = h('div', { class: 'panel-form' }, h('label', { class: 'field' }, 'Name ', name), h('label', {}, 'Kind ', kind), urlPart, emailPart, formErrors);
  const errors = fieldErrors({ name, kind, url, 'config.url': url, secret, 'config.secret': secret, headers, 'config.headers': headers,
    'config.smtp_host': host, 'config.smtp_port': port, 'config.from': from, 'config.to': to, 'config.password': password }, formErrors);
  const payload = () => {
    if (kind.value === 'email') {
      return { smtp_host: host.value, smtp_port: Number(port.value), smtp_tls: tls.value, username: username.value || undefined,
        password: password.value || undefined, from: from.value, to: to.value.split(',').map((t) => t.trim()).filter(Boolean) };
    }
    const out = { url: url.value };
    // `***` is what the server showed for a secret it keeps; sent back, it stays.
    if (secret.value) out.secret = secret.value;
    if (kind.value === 'webhook' && headers.value.trim()) out.headers = JSON.parse(headers.value);
    return out;
  };
  const save = async () => {
    errors.clear();
    let config;
    try { config = payload(); } catch (error) { errors.show('headers', `Headers must be a JSON object: ${error.message}`); return; }
    try {
      const body = { name: name.value, kind: kind.value, config };
      if (channel) await api('PUT', channelsPath(project, channel.id), body); else await api('POST', channelsPath(project), body);
      box.close();
      toast(`Saved channel “${name.value}”.`);
      await done();
    } catch (error) { errors.report(error); }
  };
  const box = dialog(channel ? 'Edit channel' : 'New channel', body, [
    h('button', { type: 'button', name: 'channel-save', onclick: save }, 'Save'),
    h('button', { type: 'button', class: 'secondary', onclick: () => box.close() }, 'Cancel'),
  ]);
  name.focus();
}

// ------------------------------------------------------------ silences

export async function silencesTab(box, project, rules) {
  const manage = can('manage_project');
  const list = h('tbody');
  const errors = h('div');
  const reload = () => silencesTab(box, project, rules);
  const ruleName = (id) => ((rules.find((r) => r.id === id) || {}).name || id);
  box.replaceChildren(
    h('div', { class: 'row' }, h('h2', {}, 'Silences'), h('span', { class: 'spacer' }),
      manage ? h('button', { type: 'button', name: 'silence-create', onclick: () => silenceDialog(project, rules, reload) }, 'New silence') : null),
    errors,
    h('table', { class: 'alert-silences' }, h('thead', {}, h('tr', {}, ['Mutes', 'From', 'Until', 'Comment', ''].map((t) => h('th', {}, t)))), list));
  let silences;
  try { silences = (await api('GET', silencesPath(project))).silences; } catch (error) { errors.replaceChildren(errorView(error)); return; }
  if (!silences.length) { list.replaceChildren(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'Nothing is silenced.'))); return; }
  const now = Date.now();
  list.replaceChildren(...silences.map((s) => {
    const active = Date.parse(s.starts_at) <= now && now < Date.parse(s.ends_at);
    return h('tr', { dataset: { id: s.id } },
      h('td', {}, s.rule_id ? `rule ${ruleName(s.rule_id)}` : '', Object.keys(s.labels || {}).length ? h('span', { class: 'mono' }, ` labels ${labelsText(s.labels)}`) : null,
        ' ', h('span', { class: `badge ${active ? 'state-pending' : ''}` }, active ? 'active' : (Date.parse(s.ends_at) <= now ? 'ended' : 'later'))),
      h('td', {}, formatTime(Date.parse(s.starts_at)).slice(0, 19)), h('td', {}, formatTime(Date.parse(s.ends_at)).slice(0, 19)),
      h('td', {}, s.comment || ''),
      h('td', {}, manage ? h('button', { type: 'button', class: 'secondary small', onclick: async () => {
        try { await api('DELETE', silencesPath(project, s.id)); toast('Silence removed.'); await reload(); } catch (error) { errors.replaceChildren(errorView(error)); }
      } }, 'Remove') : null));
  }));
}

export function silenceDialog(project, rules, done, ruleId) {
  const rule = h('select', { name: 'silence-rule', 'aria-label': 'Rule' }, h('option', { value: '' }, 'any rule whose labels match'),
    rules.map((r) => h('option', { value: r.id, selected: r.id === ruleId }, r.name)));
  const labels = h('input', { name: 'silence-labels', 'aria-label': 'Labels', class: 'grow mono', placeholder: 'team=web, env=prod' });
  const hours = h('select', { name: 'silence-duration', 'aria-label': 'Duration' },
    [[1, '1 hour'], [2, '2 hours'], [4, '4 hours'], [8, '8 hours'], [24, '1 day'], [168, '1 week']].map(([v, label]) => h('option', { value: v }, label)));
  const comment = h('input', { name: 'silence-comment', 'aria-label': 'Comment', class: 'grow', maxlength: 500 });
  const formErrors = h('div');
  const body = h('div', { class: 'panel-form' }, h('label', { class: 'field' }, 'Rule ', rule), h('label', { class: 'field' }, 'Labels ', labels),
    h('label', {}, 'For ', hours), h('label', { class: 'field' }, 'Comment ', comment), formErrors);
  const errors = fieldErrors({ rule_id: rule, labels, ends_at: hours, comment }, formErrors);
  const save = async () => {
    errors.clear();
    const now = new Date();
    try {
      await api('POST', silencesPath(project), { rule_id: rule.value || null, labels: parseLabels(labels.value), starts_at: now.toISOString(),
        ends_at: new Date(now.getTime() + Number(hours.value) * 3600000).toISOString(), comment: comment.value });
      box.close();
      toast('Silenced.');
      await done();
    } catch (error) { errors.report(error); }
  };
  const box = dialog('New silence', body, [
    h('button', { type: 'button', name: 'silence-save', onclick: save }, 'Silence'),
    h('button', { type: 'button', class: 'secondary', onclick: () => box.close() }, 'Cancel'),
  ]);
}
