// Help while typing a search query: suggestions for the word at the caret (field
// names, then a field's top values after `field:`, and the operators), a syntax
// help popover, and a warning when the query names a field the pool's recent records
// never had (a typo finds nothing, silently, otherwise).

import { h } from './ui.js';

const OPERATORS = ['AND', 'OR', 'NOT', '_exists_:'];

const SYNTAX = [
  ['error timeout', 'records with both words (AND is the default)'],
  ['"connection refused"', 'a phrase'],
  ['level:ERROR', 'a field’s value'],
  ['status:[500 TO 599]', 'a range; also status:>=500, latency:<10'],
  ['host:web*', 'a wildcard (* and ?)'],
  ['a OR b, NOT c, -c', 'boolean operators, with ( ) to group'],
  ['_exists_:user', 'records that have the field'],
  ['index\\.html', '\\ escapes a special character'],
];

// After a `|`: extraction stages, then one SQL statement with these functions.
export const PIPE_STAGES = ['json', 'logfmt', 'kv', 'pattern "<ip> <_> <status>"', 'regexp "(?P<name>\\d+)"', 'SELECT'];

export const SQL_FUNCTIONS = [
  // aggregates
  'count', 'count_if', 'sum', 'avg', 'min', 'max', 'percentile', 'approx_percentile', 'approx_distinct',
  'arbitrary', 'max_by', 'min_by',
  // windows (over the groups)
  'lag', 'lead', 'rank', 'dense_rank', 'row_number',
  // conditionals and casts
  'if', 'coalesce', 'nullif', 'cast', 'try_cast',
  // strings
  'lower', 'upper', 'length', 'substr', 'concat', 'trim', 'ltrim', 'rtrim', 'replace', 'split_part', 'strpos',
  'position', 'starts_with', 'ends_with', 'reverse', 'regexp_like', 'regexp_extract', 'regexp_replace',
  // JSON, URLs, networks
  'json_extract', 'json_extract_scalar', 'json_array_length', 'url_extract_host', 'url_extract_path',
  'url_extract_parameter', 'url_extract_port', 'url_extract_protocol', 'url_extract_query', 'ip_in_cidr', 'ip_prefix',
  // time
  'date_trunc', 'time_bucket', 'from_unixtime', 'to_unixtime', 'date_format', 'now', 'date_add', 'date_diff',
  // math
  'abs', 'round', 'floor', 'ceil', 'ln', 'log10', 'log2', 'exp', 'sqrt', 'pow', 'sign', 'mod', 'greatest', 'least',
  'width_bucket',
];

const SQL_KEYWORDS = ['SELECT', 'FROM', 'WHERE', 'GROUP BY', 'HAVING', 'ORDER BY', 'LIMIT', 'OFFSET', 'AS', 'AND', 'OR',
  'NOT', 'IN', 'BETWEEN', 'LIKE', 'IS NULL', 'CASE', 'WHEN', 'THEN', 'ELSE', 'END', 'OVER', 'PARTITION BY', 'DESC', 'ASC',
  'DISTINCT', 'NULLS FIRST', 'NULLS LAST'];

const PIPE_SYNTAX = [
  ['* | SELECT host, count(*) AS c GROUP BY host ORDER BY c DESC', 'pipe SQL over the matching records'],
  ['* | json | SELECT level, count(*) GROUP BY level', 'fields from the JSON line (nested: a.b)'],
  ['* | logfmt | SELECT avg(CAST(replace(took, \'ms\', \'\') AS BIGINT))', 'fields from key=value pairs'],
  ['* | pattern "<ip> - - [<_>] \\"<method> <path> <_>\\" <status>"', 'fields from a pattern; <_> skips'],
  ['* | regexp "took=(?P<took>\\d+)" | SELECT percentile(took, 99)', 'fields from named groups'],
  ['lower(x), regexp_extract(x, \'re\', 1), json_extract_scalar(x, \'$.a\')', 'functions in SELECT, WHERE, GROUP BY, HAVING, ORDER BY'],
  ['lag(count(*)) OVER (ORDER BY date_trunc(\'minute\', time))', 'windows over the grouped result'],
];

// Suggestions after a pipe: a stage name right after `|`, else SQL functions
// (with their parenthesis), keywords and the pool's field names.
export function pipeSuggestions(before, word, names) {
  const lastPipe = before.lastIndexOf('|');
  if (lastPipe < 0) return null;
  const lower = word.toLowerCase();
  const segment = before.slice(lastPipe + 1);
  if (segment.trim() === word.trim()) {
    return PIPE_STAGES.filter((stage) => stage.toLowerCase().startsWith(lower));
  }
  if (!word) return [];
  return [
    ...SQL_FUNCTIONS.filter((f) => f.startsWith(lower)).map((f) => `${f}(`),
    ...SQL_KEYWORDS.filter((k) => k.toLowerCase().startsWith(lower) && k.toLowerCase() !== lower),
    ...names.filter((n) => n.toLowerCase().startsWith(lower)),
  ];
}

function quoteValue(value) {
  return /^[\w.@-]+$/.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

// The field names a query refers to (`name:` outside quotes, and `_exists_:name`).
export function fieldsNamed(query) {
  const unquoted = query.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const names = new Set();
  for (const [, name] of unquoted.matchAll(/(?:^|[\s(!+-])([A-Za-z_@][\w.@-]*):/g)) if (name !== '_exists_') names.add(name);
  for (const [, name] of unquoted.matchAll(/_exists_:([\w.@-]+)/g)) names.add(name);
  return [...names];
}

// source: { names(): [field], values(field): [value], known(): Set of fields or null,
// history(): [query] (optional, offered when the box is empty) }.
export function queryHelp(input, source) {
  const listId = `suggestions-${Math.random().toString(36).slice(2, 8)}`;
  const list = h('ul', { class: 'suggestions', id: listId, role: 'listbox', 'aria-label': 'Suggestions', hidden: true });
  const warning = h('p', { class: 'warning query-warning', role: 'status', hidden: true });
  const help = h('div', { class: 'popover panel', role: 'dialog', 'aria-label': 'Query syntax', hidden: true },
    h('h2', {}, 'Query syntax'),
    h('table', {}, h('tbody', {}, SYNTAX.map(([example, meaning]) => h('tr', {}, h('td', {}, h('code', {}, example)), h('td', {}, meaning))))),
    h('h2', {}, 'Pipes and SQL'),
    h('table', {}, h('tbody', {}, PIPE_SYNTAX.map(([example, meaning]) => h('tr', {}, h('td', {}, h('code', {}, example)), h('td', {}, meaning))))),
    h('p', { class: 'muted' }, `Functions: ${SQL_FUNCTIONS.join(', ')}.`),
    h('p', { class: 'muted' }, 'Press / to jump to the query, Tab or Enter to take a suggestion, ↑/↓ or j/k to move through the records.'));
  const helpButton = h('button', { type: 'button', class: 'secondary', 'aria-expanded': 'false', 'aria-label': 'Query syntax help',
    onclick: () => { help.hidden = !help.hidden; helpButton.setAttribute('aria-expanded', String(!help.hidden)); } }, '?');
  // Escape closes the help again, from its button or from inside it.
  const closeHelp = (e) => {
    if (e.key !== 'Escape' || help.hidden) return;
    help.hidden = true;
    helpButton.setAttribute('aria-expanded', 'false');
    helpButton.focus();
  };
  help.addEventListener('keydown', closeHelp);
  helpButton.addEventListener('keydown', closeHelp);
  input.setAttribute('role', 'combobox');
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', listId);
  input.setAttribute('aria-expanded', 'false');
  input.setAttribute('autocomplete', 'off');
  let items = [];
  let active = -1;

  // The word being typed: from the last space or parenthesis before the caret.
  const wordAtCaret = () => {
    const caret = input.selectionStart ?? input.value.length;
    const before = input.value.slice(0, caret);
    const start = Math.max(before.lastIndexOf(' '), before.lastIndexOf('('), before.lastIndexOf('!')) + 1;
    return { start, end: caret, word: before.slice(start) };
  };
  const close = () => { list.hidden = true; items = []; active = -1; input.setAttribute('aria-expanded', 'false'); input.removeAttribute('aria-activedescendant'); };
  const choose = (index) => {
    const { start, end } = wordAtCaret();
    const text = items[index];
    input.value = input.value.slice(0, start) + text + input.value.slice(end);
    const caret = start + text.length;
    input.setSelectionRange(caret, caret);
    close();
    if (text.endsWith(':')) suggest();
    check();
  };
  const mark = (index) => {
    active = index;
    [...list.children].forEach((li, i) => li.setAttribute('aria-selected', String(i === index)));
    if (index >= 0) input.setAttribute('aria-activedescendant', list.children[index].id);
  };
  // An empty query box offers the query history (newest first), whole queries.
  const offerHistory = () => {
    items = ((source.history && source.history()) || []).slice(0, 10);
    if (!items.length) { close(); return; }
    show(items);
  };
  const show = (texts) => {
    list.replaceChildren(...texts.map((text, i) => h('li', { id: `${listId}-${i}`, role: 'option', 'aria-selected': 'false',
      onmousedown: (e) => { e.preventDefault(); choose(i); } }, text)));
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    mark(-1);
  };
  const suggest = () => {
    if (!input.value.trim()) { offerHistory(); return; }
    const { word, end } = wordAtCaret();
    const colon = word.indexOf(':');
    let next = [];
    const piped = pipeSuggestions(input.value.slice(0, end), word, source.names());
    if (piped) {
      next = piped;
    } else if (colon > 0) {
      const field = word.slice(0, colon).replace(/^[-+]/, '');
      const prefix = word.slice(colon + 1).replace(/^"/, '').toLowerCase();
      const sign = word.startsWith('-') || word.startsWith('+') ? word[0] : '';
      if (field === '_exists_') next = source.names().filter((n) => n.toLowerCase().startsWith(prefix)).map((n) => `_exists_:${n}`);
      else next = source.values(field).filter((v) => v.toLowerCase().startsWith(prefix)).map((v) => `${sign}${field}:${quoteValue(v)}`);
    } else if (word) {
      const lower = word.replace(/^[-+]/, '').toLowerCase();
      const sign = /^[-+]/.test(word) ? word[0] : '';
      next = [...source.names().filter((n) => n.toLowerCase().startsWith(lower)).map((n) => `${sign}${n}:`),
        ...OPERATORS.filter((o) => o.toLowerCase().startsWith(lower) && o.toLowerCase() !== lower)];
    }
    items = [...new Set(next)].filter((s) => s !== word).slice(0, 10);
    if (!items.length) { close(); return; }
    show(items);
  };
  const check = () => {
    const known = source.known();
    const unknown = known ? fieldsNamed(input.value).filter((name) => !known.has(name)) : [];
    warning.hidden = !unknown.length;
    warning.textContent = unknown.length
      ? `This pool has never had ${unknown.length > 1 ? 'the fields' : 'the field'} ${unknown.join(', ')}: check the name.`
      : '';
  };
  input.addEventListener('input', () => { suggest(); check(); });
  // Closed once the focus has really left (not by a blur the user already undid).
  input.addEventListener('blur', () => setTimeout(() => { if (document.activeElement !== input) close(); }, 100));
  input.addEventListener('keydown', (e) => {
    // ↓ in an empty box opens the history.
    if (list.hidden && e.key === 'ArrowDown' && !input.value.trim()) { e.preventDefault(); offerHistory(); return; }
    if (list.hidden) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const by = e.key === 'ArrowDown' ? 1 : -1;
      mark((active + by + items.length) % items.length);
    } else if (e.key === 'Tab' || (e.key === 'Enter' && active >= 0)) {
      e.preventDefault();
      choose(Math.max(0, active));
    } else if (e.key === 'Escape') { close(); }
  });
  input.addEventListener('keydown', (e) => { if (e.key === 'Escape' && list.hidden && !help.hidden) { help.hidden = true; helpButton.setAttribute('aria-expanded', 'false'); } });
  return { node: h('div', { class: 'query-box grow' }, input, list, help), helpButton, warning, check };
}
