// What one dashboard panel shows, drawn into its body from the same public API the
// explorer and the analysis page use: a histogram (`/histogram`), a count (`/search`
// total), the newest records (`/search`), or a pipe-SQL result (`/query`) as a
// chart, a table or one number. A click on a point of a time chart opens the
// explorer on that bucket. Everything from the server is put into the page as text.

import { api, poolPath } from './api.js';
import { histogram, chart } from './charts.js';
import { h } from './ui.js';
import { formatNumber, formatTime } from './format.js';

// Colours a threshold may name (the server accepts these and #rgb / #rrggbb only).
const NAMED = { green: 'var(--ok)', orange: '#f59e0b', red: 'var(--danger)', blue: 'var(--accent)', grey: 'var(--muted)' };
const HEX = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i;

export function colourOf(name) {
  if (NAMED[name]) return NAMED[name];
  return HEX.test(name) ? name : null;
}

// The explorer's hash for `panel`'s search between two times (ms).
export function explorerHash(project, panel, fromMs, toMs) {
  const query = new URLSearchParams({ project, pool: panel.pool, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() });
  if (panel.query) query.set('q', panel.query);
  return `#/search?${query}`;
}

// Opens the explorer when a point of a time chart is clicked (not at the end of a
// drag, which is the histogram's zoom). `bucketAt(x)` gives [fromMs, toMs] of the
// clicked time, or null.
function clickOpens(box, bucketAt, open) {
  const plot = box && box.plot;
  if (!plot) return;
  let down = null;
  plot.over.addEventListener('mousedown', (e) => { down = [e.clientX, e.clientY]; });
  plot.over.addEventListener('click', (e) => {
    if (down && Math.hypot(e.clientX - down[0], e.clientY - down[1]) > 3) return;
    const x = plot.posToVal(plot.cursor.left, 'x');
    const bucket = Number.isFinite(x) ? bucketAt(x) : null;
    if (bucket) open(bucket[0], bucket[1]);
  });
  plot.over.style.cursor = 'pointer';
  plot.over.title = 'Click a point to open the explorer at that time';
}

// The bucket of sorted bucket starts `starts` that holds `x`, each `step` long.
function bucketOf(starts, step, x) {
  let at = -1;
  for (let i = 0; i < starts.length && starts[i] <= x; i += 1) at = i;
  if (at < 0) return null;
  return [starts[at], starts[at] + step];
}

function bigNumber(value, chartSettings) {
  const thresholds = [...(chartSettings.thresholds || [])].sort((a, b) => a.value - b.value);
  const reached = thresholds.filter((t) => value >= t.value).pop();
  const colour = reached ? colourOf(reached.color) : null;
  const node = h('div', { class: 'big-number', dataset: { value: String(value) } },
    formatNumber(value), chartSettings.unit ? h('span', { class: 'unit' }, ` ${chartSettings.unit}`) : null);
  if (colour) node.style.color = colour;
  return node;
}

function showValue(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

// A hit's log line when no columns are chosen: its message, else key=value pairs.
function lineOf(hit) {
  const fields = hit.fields || {};
  if (typeof fields.message === 'string') return fields.message;
  return Object.entries(fields).map(([k, v]) => `${k}=${showValue(v)}`).join(' ');
}

function hitsTable(hits, columns) {
  return h('table', { class: 'hits dash-hits' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Time'), columns.length ? columns.map((c) => h('th', {}, c)) : h('th', {}, 'Line'))),
    h('tbody', {}, hits.map((hit) => h('tr', {},
      h('td', { class: 'time mono' }, formatTime(hit.time)),
      columns.length
        ? columns.map((c) => h('td', { class: 'column' }, showValue((hit.fields || {})[c])))
        : h('td', { class: 'message' }, lineOf(hit))))));
}

export function sqlTable(result) {
  const names = result.columns.map((c) => c.name ?? c);
  return h('table', { class: 'sql-result' },
    h('thead', {}, h('tr', {}, names.map((n) => h('th', { scope: 'col' }, n)))),
    h('tbody', {}, result.rows.map((row) => h('tr', {}, row.map((v) => h('td', { class: typeof v === 'number' ? 'number' : '' },
      v === null ? '∅' : typeof v === 'number' ? formatNumber(v) : showValue(v)))))));
}

// Draws `panel` of `project` over `range` ({from, to}) into `body`, whose size the
// charts take (`size`: {width, height}). Throws the API's error for the caller to
// show in the panel.
export async function drawPanel(body, project, panel, range, size) {
  const base = poolPath(project, panel.pool);
  const request = { query: panel.query || '', from: range.from, to: range.to };
  const open = (fromMs, toMs) => { location.hash = explorerHash(project, panel, fromMs, toMs); };
  if (panel.kind === 'histogram') {
    const answer = await api('POST', `${base}/histogram`, request);
    body.textContent = '';
    const starts = answer.buckets.map((b) => Date.parse(b.time));
    if (panel.chart.type === 'bar') {
      const box = histogram(body, answer.buckets, answer.interval_ms, open, { width: size.width, height: Math.max(60, size.height - 60) });
      clickOpens(box, (x) => bucketOf(starts, answer.interval_ms, x), open);
      return;
    }
    // A line or area of the counts: the buckets as a SQL result of time and count.
    const table = { columns: [{ name: 'time', type: 'timestamp' }, { name: 'records', type: 'number' }], rows: answer.buckets.map((b) => [b.time, b.count]) };
    const box = chart(body, panel.chart.type, table, 'GROUP BY time', { width: size.width, height: Math.max(60, size.height - 50) });
    clickOpens(box, (x) => bucketOf(starts, answer.interval_ms, x + answer.interval_ms / 2), open);
    return;
  }
  if (panel.kind === 'count') {
    const answer = await api('POST', `${base}/search`, { ...request, limit: 1 });
    body.replaceChildren(bigNumber(answer.total, panel.chart));
    if (answer.partial) body.appendChild(h('div', { class: 'muted' }, 'at least (the time budget ran out)'));
    return;
  }
  if (panel.kind === 'table') {
    const answer = await api('POST', `${base}/search`, { ...request, limit: 50 });
    body.replaceChildren(answer.hits.length ? hitsTable(answer.hits, panel.columns || []) : h('p', { class: 'muted' }, 'No records match in this range.'));
    return;
  }
  const result = await api('POST', `${base}/query`, { ...request, query: `${panel.query || '*'} | ${panel.sql}` });
  if (!result.rows.length) { body.replaceChildren(h('p', { class: 'muted' }, 'No rows.')); return; }
  const type = panel.chart.type;
  if (type === 'table') { body.replaceChildren(sqlTable(result)); return; }
  if (type === 'number') {
    const value = result.rows[0].find((v) => typeof v === 'number');
    body.replaceChildren(value === undefined ? h('p', { class: 'error' }, 'The first row has no number.') : bigNumber(value, panel.chart));
    return;
  }
  body.textContent = '';
  const box = chart(body, type, result, panel.sql, { width: size.width, height: Math.max(60, size.height - 50) });
  if (box.shape && box.shape.xTime) {
    const xs = box.shape.x;
    const gaps = xs.slice(1).map((x, i) => x - xs[i]).filter((d) => d > 0);
    const step = gaps.length ? Math.min(...gaps) : 60000;
    // A line's point stands for the bucket that starts there; the nearest point is
    // the one meant, so the click is moved half a step back before picking.
    const shift = type === 'bar' ? 0 : step / 2;
    clickOpens(box, (x) => bucketOf(xs, step, x + shift), open);
  }
}
