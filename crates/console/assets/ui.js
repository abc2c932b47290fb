// Small building blocks shared by every page: elements, toasts, dialogs, error views
// and number formats. Every value from the server is put into the page as text
// (never as HTML), so a log line or a key description cannot inject markup.

import { ApiError } from './api.js';

// h('div', {class: 'x', onclick: f}, 'text', child, ...) builds an element.
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function toast(message) {
  const box = document.getElementById('toast');
  const item = h('div', {}, message);
  box.appendChild(item);
  setTimeout(() => item.remove(), 5000);
}

// The query with a caret under the character at `position` (counted in characters,
// as the server does, over the whole query: a pipe SQL error points into the SQL),
// placed under the line that holds it.
export function caretUnder(queryText, position) {
  const chars = Array.from(queryText);
  const at = Math.min(Math.max(0, position), chars.length);
  const lineStart = chars.lastIndexOf('\n', at - 1) + 1;
  let lineEnd = chars.indexOf('\n', at);
  if (lineEnd < 0) lineEnd = chars.length;
  const caret = h('span', { class: 'caret' }, ' '.repeat(at - lineStart) + '^');
  return h('pre', { class: 'mono', dataset: { position: String(at) } },
    chars.slice(0, lineEnd).join(''), '\n', caret, lineEnd < chars.length ? chars.slice(lineEnd).join('') : '');
}

// Shows an API error; a query error points at its character position.
export function errorView(error, queryText) {
  if (error instanceof ApiError && Number.isInteger(error.detail.position) && queryText !== undefined) {
    return h('div', { class: 'error query-error', role: 'alert' },
      h('div', {}, error.message), caretUnder(queryText, error.detail.position));
  }
  if (error instanceof ApiError && error.status === 403) {
    return h('div', { class: 'error', role: 'alert' }, `Not allowed: ${error.message}`);
  }
  return h('div', { class: 'error', role: 'alert' }, error.message || String(error));
}

// A form's field errors: `fields` maps a field name to its input (already placed in
// the form). An error naming
// one of them (the server's `field` detail) is shown next to that input; any other
// error goes to the form's own error box.
export function fieldErrors(fields, formBox) {
  const boxes = new Map();
  for (const [name, input] of Object.entries(fields)) {
    const box = h('div', { class: 'field-error error', id: `error-${name}-${Math.random().toString(36).slice(2, 8)}`, role: 'alert', hidden: true });
    // Below the input's label or field wrapper when it has one, so the message
    // does not squeeze into a row of inputs.
    (input.closest('.field, label') || input).after(box);
    boxes.set(name, { input, box });
  }
  const clear = () => {
    formBox.textContent = '';
    for (const { input, box } of boxes.values()) {
      box.hidden = true;
      box.textContent = '';
      input.removeAttribute('aria-invalid');
      input.removeAttribute('aria-describedby');
    }
  };
  const show = (name, message) => {
    const target = boxes.get(name);
    if (!target) return false;
    target.box.textContent = message;
    target.box.hidden = false;
    target.input.setAttribute('aria-invalid', 'true');
    target.input.setAttribute('aria-describedby', target.box.id);
    target.input.focus();
    return true;
  };
  const report = (error) => {
    const field = error instanceof ApiError ? error.detail.field : undefined;
    if (!show(field, error.message)) formBox.replaceChildren(errorView(error));
  };
  return { clear, show, report };
}

export function dialog(title, body, actions) {
  const box = h('dialog', { 'aria-label': title }, h('h2', {}, title), body, h('div', { class: 'row' }, actions));
  document.body.appendChild(box);
  box.addEventListener('close', () => box.remove());
  box.showModal();
  return box;
}

export function formatBytes(bytes) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatAge(ms) {
  if (ms < 60000) return `${Math.max(0, Math.round(ms / 1000))} s`;
  if (ms < 3600000) return `${Math.round(ms / 60000)} min`;
  if (ms < 86400000) return `${Math.round(ms / 3600000)} h`;
  return `${Math.round(ms / 86400000)} d`;
}

export function formatRate(perSecond) {
  if (perSecond >= 100) return Math.round(perSecond).toLocaleString('en-US');
  if (perSecond >= 10) return perSecond.toFixed(1);
  return perSecond.toFixed(2);
}
