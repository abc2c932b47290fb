// The search page's results table: each record's log line in full (its message, or
// the whole record as `key=value` when it has none), with the words the query matched
// marked inside it, multi-line records keeping their lines; the time in the chosen
// zone; and the columns the user picked (added, moved and removed here, from the
// field list or from a record's detail). Everything from the server is put into the
// page as text, never as HTML. A Patterns tab beside the records shows the same
// matches folded into their log patterns (patterns.js).

import { h } from './ui.js';
import { patternsPanel } from './patterns.js';
import { formatTime, timeZone, timesInUtc, setTimesInUtc } from './format.js';

// The server's highlight fragments are HTML-escaped text with `<em>` marks.
function unescapeHtml(text) {
  return text.replace(/&(lt|gt|amp|quot|#39|#x27);/g, (_, name) =>
    ({ lt: '<', gt: '>', amp: '&', quot: '"', '#39': "'", '#x27': "'" }[name]));
}

// The words the query matched in `hit`, from every highlighted field's fragments.
export function matchedTerms(hit) {
  const terms = new Set();
  for (const fragments of Object.values(hit.highlight || {})) {
    for (const fragment of fragments) {
      for (const [, word] of String(fragment).matchAll(/<em>(.*?)<\/em>/g)) {
        const term = unescapeHtml(word).trim();
        if (term) terms.add(term.toLowerCase());
      }
    }
  }
  return [...terms].slice(0, 64);
}

// `text` as nodes with each whole-word occurrence of `terms` (any case) in a <mark>.
export function markTerms(text, terms) {
  if (!terms.length) return [document.createTextNode(text)];
  const escaped = [...terms].sort((a, b) => b.length - a.length).map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}_])(?:${escaped.join('|')})(?![\\p{L}\\p{N}_])`, 'giu');
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    nodes.push(h('mark', {}, match[0]));
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

function showValue(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

// The record as one line when it has no message: `key=value …`, quoting values with spaces.
function keyValueLine(fields) {
  return Object.entries(fields).map(([k, v]) => {
    const text = showValue(v);
    return `${k}=${/[\s"]/.test(text) ? JSON.stringify(text) : text}`;
  }).join(' ');
}

// The log line of a hit with its matches marked; fields that matched but are not
// part of the line (a `level:ERROR` hit's level) follow it as `key=value` chips.
export function logLine(hit, hiddenFields = []) {
  const terms = matchedTerms(hit);
  const hasMessage = hit.fields.message !== undefined && hit.fields.message !== null;
  const line = h('span', { class: 'line-text' }, markTerms(hasMessage ? showValue(hit.fields.message) : keyValueLine(hit.fields), terms));
  if (!hasMessage) return line;
  const chips = Object.keys(hit.highlight || {})
    .filter((name) => name !== 'message' && !hiddenFields.includes(name) && hit.fields[name] !== undefined)
    .map((name) => h('span', { class: 'chip mono' }, `${name}=`, markTerms(showValue(hit.fields[name]), terms)));
  return chips.length ? h('span', {}, line, ' ', chips) : line;
}

// columns: field names; actions: { setColumns(list), filter(name, value, negate), context(hit, box),
// order() ('desc' or 'asc') and toggleOrder() for the Time header }.
export function resultsTable(initialColumns, actions) {
  let columns = [...initialColumns];
  const hits = [];
  const head = h('thead');
  const body = h('tbody', { onkeydown: (e) => navigate(e) });
  const table = h('table', { class: 'hits', 'aria-label': 'Matching records' }, head, body);

  const setColumns = (next) => {
    columns = next;
    actions.setColumns(columns);
    redraw();
  };
  const moveColumn = (name, by) => {
    const next = [...columns];
    const at = next.indexOf(name);
    const to = at + by;
    if (at < 0 || to < 0 || to >= next.length) return;
    [next[at], next[to]] = [next[to], next[at]];
    setColumns(next);
  };
  const toggleColumn = (name) => setColumns(columns.includes(name) ? columns.filter((c) => c !== name) : [...columns, name]);

  const drawHead = () => {
    const zoneButton = h('button', { type: 'button', class: 'link tz-toggle', title: 'Show times in UTC or in this browser’s time zone',
      onclick: () => { setTimesInUtc(!timesInUtc()); redraw(); } }, timesInUtc() ? 'show local' : 'show UTC');
    const oldestFirst = actions.order && actions.order() === 'asc';
    const sortButton = actions.toggleOrder
      ? h('button', { type: 'button', class: 'link sort-time', 'aria-label': 'Sort by time',
        title: oldestFirst ? 'Oldest first: click for newest first' : 'Newest first: click for oldest first',
        onclick: () => actions.toggleOrder() }, 'Time ', oldestFirst ? '▲' : '▼')
      : 'Time';
    head.replaceChildren(h('tr', {},
      h('th', { class: 'time', scope: 'col', 'aria-sort': oldestFirst ? 'ascending' : 'descending' }, sortButton, ' ', zoneButton, h('br'), h('span', { class: 'muted tz' }, timeZone())),
      columns.map((name, i) => h('th', { scope: 'col', class: 'column', dataset: { column: name } }, h('span', { class: 'mono' }, name),
        h('span', { class: 'column-tools' },
          i > 0 ? h('button', { type: 'button', class: 'icon', 'aria-label': `Move column ${name} left`, onclick: () => moveColumn(name, -1) }, '←') : null,
          i < columns.length - 1 ? h('button', { type: 'button', class: 'icon', 'aria-label': `Move column ${name} right`, onclick: () => moveColumn(name, 1) }, '→') : null,
          h('button', { type: 'button', class: 'icon', 'aria-label': `Remove column ${name}`, onclick: () => toggleColumn(name) }, '×')))),
      h('th', { scope: 'col', class: 'line' }, 'Log line')));
  };

  const drawHit = (hit) => {
    const width = columns.length + 2;
    const detail = h('tr', { class: 'detail', hidden: true }, h('td', { colspan: width }));
    const toggle = () => {
      detail.hidden = !detail.hidden;
      if (!detail.hidden) drawDetail(hit, detail.firstChild);
    };
    const row = h('tr', { class: 'hit', tabindex: 0, title: 'Enter or click: show the record', dataset: { id: hit.id },
      onclick: (e) => { if (!e.target.closest('button') && !window.getSelection().toString()) toggle(); },
      onkeydown: (e) => { if (e.key === 'Enter' && e.target === row) toggle(); } },
    h('td', { class: 'time mono', title: hit.time }, formatTime(hit.time)),
    columns.map((name) => h('td', { class: 'column mono', dataset: { column: name } }, showValue(hit.fields[name]))),
    h('td', { class: 'message' }, logLine(hit, columns)));
    body.append(row, detail);
  };

  const drawDetail = (hit, cell) => {
    const contextBox = h('div');
    cell.replaceChildren(
      h('table', { class: 'record' }, h('tbody', {}, Object.entries(hit.fields).map(([k, v]) => h('tr', { dataset: { field: k } },
        h('th', { class: 'mono', scope: 'row' }, k), h('td', {}, h('pre', {}, showValue(v))),
        h('td', { class: 'actions' },
          h('button', { type: 'button', class: 'secondary small', onclick: () => actions.filter(k, showValue(v), false) }, 'Filter for'),
          h('button', { type: 'button', class: 'secondary small', onclick: () => actions.filter(k, showValue(v), true) }, 'Filter out'),
          h('button', { type: 'button', class: 'secondary small', onclick: () => toggleColumn(k) },
            columns.includes(k) ? 'Remove column' : 'Add column')))))),
      h('div', { class: 'row' }, h('span', { class: 'muted mono' }, `id ${hit.id} · shard ${hit.shard} · ${hit.time}`),
        h('button', { type: 'button', class: 'secondary', onclick: () => actions.context(hit, contextBox) }, 'View context')),
      contextBox);
  };

  // j/k or the arrow keys move between records, Enter opens one (see drawHit).
  const navigate = (e) => {
    if (!['ArrowDown', 'ArrowUp', 'j', 'k'].includes(e.key) || e.target.tagName !== 'TR') return;
    const rows = [...body.querySelectorAll('tr.hit')];
    const at = rows.indexOf(e.target);
    const next = rows[at + (e.key === 'ArrowDown' || e.key === 'j' ? 1 : -1)];
    if (next) { next.focus(); e.preventDefault(); }
  };

  const redraw = () => {
    drawHead();
    body.replaceChildren();
    for (const hit of hits) drawHit(hit);
  };
  drawHead();
  return {
    node: withPatternsTab(table, actions),
    columns: () => columns,
    toggleColumn,
    add(page) { for (const hit of page) { hits.push(hit); drawHit(hit); } },
    empty(message) { body.replaceChildren(h('tr', {}, h('td', { colspan: columns.length + 2, class: 'empty' }, message))); },
    redraw,
  };
}

// The chosen tab outlives the page's redraws (a filter searches again).
const TAB_KEY = 'logpool.resultsTab';

// Records and Patterns as two tabs over the same matches.
function withPatternsTab(table, actions) {
  if (!actions.filter) return table;
  const choose = (name) => { try { sessionStorage.setItem(TAB_KEY, name); } catch (_) { /* private mode */ } };
  // Filtering by a pattern shows its records; excluding one stays on the patterns.
  const patterns = patternsPanel((name, value, negate) => { choose(negate ? 'patterns' : 'records'); actions.filter(name, value, negate); });
  const recordsTab = h('button', { type: 'button', role: 'tab', class: 'tab', onclick: () => show('records') }, 'Records');
  const patternsTab = h('button', { type: 'button', role: 'tab', class: 'tab', onclick: () => show('patterns') }, 'Patterns');
  let loaded = false;
  const show = (name) => {
    choose(name);
    recordsTab.setAttribute('aria-selected', String(name === 'records'));
    patternsTab.setAttribute('aria-selected', String(name === 'patterns'));
    table.hidden = name !== 'records';
    patterns.node.hidden = name !== 'patterns';
    if (name === 'patterns' && !loaded) { loaded = true; patterns.load(); }
  };
  const node = h('div', { class: 'results-tabs' }, h('div', { class: 'tabs', role: 'tablist' }, recordsTab, patternsTab), table, patterns.node);
  let initial = 'records';
  try { initial = sessionStorage.getItem(TAB_KEY) || 'records'; } catch (_) { /* private mode */ }
  show(initial === 'patterns' ? 'patterns' : 'records');
  return node;
}
