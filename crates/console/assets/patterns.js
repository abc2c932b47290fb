// The explorer's Patterns tab: the matching records folded into their log patterns
// (`POST .../patterns`), most frequent first, each with its template (variables
// shown as <*>), count, share, a sparkline of its counts over the range and a "new"
// badge when "compare with previous period" finds it only now. A click on a
// template filters the search by the pattern; "Exclude" filters it out.
//
// The search page keeps its state in the URL (project, pool, query, range), so the
// tab reads its request from there and needs nothing else from the page.

import { api, poolPath } from './api.js';
import { h, errorView } from './ui.js';
import { formatNumber } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';

// A small bar sparkline of `counts`, scaled to its own maximum.
function sparkline(counts) {
  const width = 120;
  const height = 22;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'sparkline');
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  svg.setAttribute('aria-hidden', 'true');
  const max = Math.max(1, ...counts);
  const bar = width / Math.max(1, counts.length);
  counts.forEach((count, i) => {
    if (!count) return;
    const rect = document.createElementNS(SVG, 'rect');
    const barHeight = Math.max(1, (count / max) * height);
    rect.setAttribute('x', (i * bar).toFixed(2));
    rect.setAttribute('y', (height - barHeight).toFixed(2));
    rect.setAttribute('width', Math.max(1, bar - 0.5).toFixed(2));
    rect.setAttribute('height', barHeight.toFixed(2));
    svg.appendChild(rect);
  });
  return svg;
}

// The template as text with each <*> marked, so variables stand out.
function templateView(template) {
  const parts = template.split('<*>');
  const nodes = [];
  parts.forEach((part, i) => {
    if (i > 0) nodes.push(h('span', { class: 'pattern-var' }, '<*>'));
    if (part) nodes.push(part);
  });
  return nodes;
}

// A range bound as epoch milliseconds: `now`, `-15m` (s, m, h, d, w), RFC 3339 or
// an epoch number; null when it is none of these.
function parseTimeExpr(text, now) {
  const value = String(text).trim();
  if (value === '' || value === 'now') return now;
  const relative = /^-(\d+)([smhdw])$/.exec(value);
  if (relative) return now - Number(relative[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8 }[relative[2]];
  if (/^\d+$/.test(value)) {
    const number = Number(value);
    return number < 1e11 ? number * 1000 : number < 1e14 ? number : Math.floor(number / 1e3);
  }
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : parsed;
}

// The previous period of the same length as [from, to), as epoch milliseconds.
function previousPeriod(from, to) {
  const now = Date.now();
  const start = parseTimeExpr(from || '-15m', now);
  const end = parseTimeExpr(to || 'now', now);
  if (start === null || end === null || end <= start) return null;
  return { compare_from: start - (end - start), compare_to: start, from: start, to: end };
}

// The Patterns panel; `filter(name, value, negate)` adds a term to the query.
export function patternsPanel(filter) {
  const compare = h('input', { type: 'checkbox', name: 'compare' });
  const status = h('div', { class: 'muted', role: 'status' });
  const list = h('table', { class: 'patterns', 'aria-label': 'Log patterns' });
  const errors = h('div');
  const node = h('div', { class: 'patterns-panel' },
    h('div', { class: 'row' }, h('label', {}, compare, ' compare with previous period'), status),
    errors, list);

  const load = async () => {
    const params = new URLSearchParams(location.hash.split('?')[1] || '');
    const project = params.get('project');
    const pool = params.get('pool');
    if (!project || !pool) return;
    const request = { query: params.get('q') || '', from: params.get('from') || '-15m', to: params.get('to') || 'now', limit: 100 };
    if (compare.checked) {
      const period = previousPeriod(request.from, request.to);
      if (period) Object.assign(request, period);
    }
    status.textContent = 'Loading patterns…';
    errors.replaceChildren();
    try {
      const answer = await api('POST', `${poolPath(project, pool)}/patterns`, request);
      status.textContent = `${formatNumber(answer.total)} records in ${formatNumber(answer.num_patterns)} patterns`
        + (answer.baseline_total !== undefined ? ` (previous period: ${formatNumber(answer.baseline_total)} records)` : '');
      list.replaceChildren(
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'number' }, 'Count'), h('th', { scope: 'col', class: 'number' }, 'Share'),
          h('th', { scope: 'col' }, 'Trend'), h('th', { scope: 'col' }, 'Pattern'), h('th', { scope: 'col' }))),
        h('tbody', {}, answer.patterns.map((p) => h('tr', { class: 'pattern', dataset: { pattern: p.id } },
          h('td', { class: 'number' }, formatNumber(p.count)),
          h('td', { class: 'number' }, `${(100 * p.share).toFixed(1)}%`),
          h('td', {}, sparkline(p.counts)),
          h('td', { class: 'mono template' },
            p.change === 'new' ? h('span', { class: 'badge new' }, 'new') : null,
            p.change === 'gone' ? h('span', { class: 'badge gone' }, 'gone') : null,
            p.change === 'changed' && p.ratio ? h('span', { class: 'badge changed' }, `×${p.ratio.toFixed(1)}`) : null,
            ' ',
            h('button', { type: 'button', class: 'link', title: `Show only this pattern (_pattern:${p.id})`,
              onclick: () => filter('_pattern', p.id, false) }, templateView(p.template || p.sample_message || p.id))),
          h('td', { class: 'actions' }, h('button', { type: 'button', class: 'secondary small', title: 'Hide this pattern',
            onclick: () => filter('_pattern', p.id, true) }, 'Exclude'))))));
      if (!answer.patterns.length) list.replaceChildren(h('tbody', {}, h('tr', {}, h('td', { class: 'empty' }, 'No patterns in this range.'))));
    } catch (error) {
      status.textContent = '';
      errors.replaceChildren(errorView(error));
    }
  };
  compare.addEventListener('change', load);
  return { node, load };
}
