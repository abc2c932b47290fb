// The search histogram and the analysis charts, drawn by uPlot (vendored as
// uPlot.iife.min.js with its MIT license, loaded by index.html as `window.uPlot`).
//
// Why uPlot: it is what Grafana draws time series with, well kept, dependency-free,
// fast on tens of thousands of points, and small (about 50 kB minified, so the binary
// grows by about 53 kB with its CSS and license). Apache ECharts would also draw the
// pies, but its smallest prebuilt file is about 1 MB; a pie is a few arcs, so pies are
// drawn here as SVG with the same palette, number format and legend.
//
// A SQL result becomes series like this: the GROUP BY keys (and any text column) are
// keys; the first time-like key is the x axis (else the first key is a category
// axis); the other keys split the rows into groups; every numeric column that is not
// a key is a value. One series per value column and group, each with its colour in
// the legend.

import { formatNumber, formatTime, formatInterval, timeParts, timeZone, timesInUtc } from './format.js';

const PALETTE = ['#2563eb', '#16a34a', '#f59e0b', '#dc2626', '#7c3aed', '#0891b2',
  '#db2777', '#65a30d', '#ea580c', '#64748b'];
export const colorOf = (i) => PALETTE[i % PALETTE.length];

const NS = 'http://www.w3.org/2000/svg';
function svgEl(name, attrs = {}, parent) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function div(className, text) {
  const node = document.createElement('div');
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// The page's colours (light or dark) for axes and grid, read at each draw.
function cssColour(name, fallback) {
  return () => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

// Plots on screen, redrawn in the new colours when the system switches light/dark.
const livePlots = new Set();
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  for (const plot of livePlots) {
    if (plot.root.isConnected) plot.redraw(false, true);
    else livePlots.delete(plot);
  }
});
// ... and resized with the window (their box's width, their own height).
window.addEventListener('resize', () => {
  for (const plot of livePlots) {
    const box = plot.root.parentElement && plot.root.parentElement.parentElement;
    if (plot.sizedByOwner) continue;
    if (plot.root.isConnected && box) plot.setSize({ width: Math.max(box.clientWidth - 24, 300), height: plot.height });
  }
});
function keep(plot) {
  for (const old of livePlots) if (!old.root.isConnected) livePlots.delete(old);
  livePlots.add(plot);
  return plot;
}

function uPlotOrNull() { return window.uPlot || null; }

// Tick labels of a time axis in the shown zone, with the date under the first tick
// of each day (so a 24 h axis says which day its hours belong to).
function timeTicks(_u, splits, _axis, _space, increment) {
  let previousDay = null;
  return splits.map((t) => {
    const p = timeParts(t);
    const day = `${p.year}-${p.month}-${p.day}`;
    let label;
    if (increment >= 86400000) label = `${p.month}-${p.day}`;
    else if (increment < 60000) label = `${p.hour}:${p.minute}:${p.second}`;
    else label = `${p.hour}:${p.minute}`;
    if (increment < 86400000 && day !== previousDay) label += `\n${day}`;
    previousDay = day;
    return label;
  });
}

function zoneDate(ms) {
  return timesInUtc() ? window.uPlot.tzDate(new Date(ms), 'Etc/UTC') : new Date(ms);
}

// Whole-number steps for counts (no 0.5 records).
const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 1e8, 1e9];

function axes(xValues) {
  const text = cssColour('--muted', '#6b7280');
  const grid = cssColour('--line', '#e3e6eb');
  const common = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  return [
    { ...common, values: xValues, size: 48 },
    { ...common, values: (_u, splits) => splits.map(formatNumber), size: 64 },
  ];
}

// buckets: [{time: ISO, count}], intervalMs. onZoom(fromMs, toMs) after a drag.
// `size` ({ width, height }) fits the plot into a box of its own (a dashboard panel).
export function histogram(container, buckets, intervalMs, onZoom, size = {}) {
  container.textContent = '';
  const times = buckets.map((b) => Date.parse(b.time));
  const counts = buckets.map((b) => b.count);
  const total = counts.reduce((a, b) => a + b, 0);
  const box = div('histogram');
  box.setAttribute('role', 'img');
  box.dataset.buckets = String(buckets.length);
  box.dataset.nonzero = String(counts.filter((c) => c > 0).length);
  const from = times.length ? times[0] : 0;
  const to = times.length ? times[times.length - 1] + intervalMs : 0;
  const caption = div('chart-caption muted', buckets.length
    ? `${formatNumber(total)} records · ${formatTime(from).slice(0, 16)} → ${formatTime(to).slice(0, 16)} (${timeZone()}) · one bar per ${formatInterval(intervalMs)} · drag to zoom`
    : 'No records in this range.');
  box.setAttribute('aria-label', `Histogram: ${caption.textContent}`);
  container.append(caption, box);
  const uPlot = uPlotOrNull();
  if (!buckets.length || !uPlot) return box;
  const plot = new uPlot({
    width: size.width || Math.max(container.clientWidth - 24, 300), height: size.height || 140, ms: 1, tzDate: zoneDate,
    scales: { x: { time: true, range: () => [from, to] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [axes(timeTicks)[0], { ...axes()[1], incrs: COUNT_STEPS }],
    legend: { show: true, live: true },
    cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
    series: [
      { label: 'Bucket', value: (_u, v) => (v == null ? '' : formatTime(v)) },
      { label: `Records per ${formatInterval(intervalMs)}`, fill: colorOf(0), stroke: colorOf(0), width: 0,
        paths: uPlot.paths.bars({ size: [0.9, Infinity], align: 1 }), value: (_u, v) => (v == null ? '' : formatNumber(v)), points: { show: false } },
    ],
    hooks: {
      setSelect: [(u) => {
        if (u.select.width < 2) return;
        const a = u.posToVal(u.select.left, 'x');
        const b = u.posToVal(u.select.left + u.select.width, 'x');
        u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        if (b - a >= 1000) onZoom(Math.floor(a), Math.ceil(b));
      }],
    },
  }, [times, counts], box);
  plot.sizedByOwner = Boolean(size.width);
  box.plot = keep(plot);
  return box;
}

// ---------------------------------------------------------------- SQL results

function splitTopLevel(text) {
  const parts = [];
  let depth = 0; let current = ''; let quote = null;
  for (const ch of text) {
    if (quote) { if (ch === quote) quote = null; current += ch; continue; }
    if (ch === '\'' || ch === '"') quote = ch;
    else if (ch === '(') depth += 1;
    else if (ch === ')') depth -= 1;
    else if (ch === ',' && depth === 0) { parts.push(current.trim()); current = ''; continue; }
    current += ch;
  }
  if (current.trim()) parts.push(current.trim());
  return parts;
}

// The GROUP BY items of the statement (names, expressions or 1-based positions).
function groupByItems(sql) {
  const match = /\bGROUP\s+BY\s+([\s\S]*?)(?=\bHAVING\b|\bORDER\s+BY\b|\bLIMIT\b|\bOFFSET\b|$)/i.exec(sql);
  return match ? splitTopLevel(match[1]).map((s) => s.replace(/^"|"$/g, '').toLowerCase()) : [];
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d/;

// Keys, values and the x axis of a SQL result (see the top of this file).
export function shapeResult(result, sql) {
  const names = result.columns.map((c) => c.name ?? c);
  const types = result.columns.map((c) => c.type ?? null);
  const items = groupByItems(sql || '');
  const isNumeric = (i) => result.rows.every((r) => r[i] === null || typeof r[i] === 'number')
    && result.rows.some((r) => typeof r[i] === 'number');
  const isKey = names.map((name, i) => items.includes(name.toLowerCase()) || items.includes(String(i + 1)) || !isNumeric(i));
  const isTime = names.map((_, i) => types[i] === 'timestamp'
    || (result.rows.length > 0 && result.rows.every((r) => r[i] === null || (typeof r[i] === 'string' && ISO_TIME.test(r[i])))));
  const keys = names.map((_, i) => i).filter((i) => isKey[i]);
  const values = names.map((_, i) => i).filter((i) => !isKey[i] && isNumeric(i));
  const xAt = keys.find((i) => isTime[i]) ?? keys[0] ?? -1;
  const groupAt = keys.filter((i) => i !== xAt);
  const xTime = xAt >= 0 && isTime[xAt];
  const showKey = (v) => (v === null || v === undefined ? '∅' : String(v));
  // x positions in first-seen order (time-sorted for a time axis).
  const xKeys = [];
  const xIndex = new Map();
  const groups = [];
  const groupIndex = new Map();
  for (const [rowAt, row] of result.rows.entries()) {
    const x = xAt < 0 ? rowAt + 1 : row[xAt];
    const xKey = showKey(x);
    if (!xIndex.has(xKey)) { xIndex.set(xKey, xKeys.length); xKeys.push(x); }
    const group = groupAt.map((i) => `${names[i]}=${showKey(row[i])}`).join(' ');
    if (!groupIndex.has(group)) { groupIndex.set(group, groups.length); groups.push(group); }
  }
  let order = xKeys.map((_, i) => i);
  if (xTime) order = order.sort((a, b) => Date.parse(xKeys[a]) - Date.parse(xKeys[b]));
  const position = new Map(order.map((original, sorted) => [original, sorted]));
  const series = [];
  for (const group of groups) {
    for (const v of values) {
      const label = group ? (values.length > 1 ? `${group} · ${names[v]}` : group) : names[v];
      series.push({ label, group, column: names[v], points: new Array(xKeys.length).fill(null) });
    }
  }
  for (const row of result.rows) {
    const x = position.get(xIndex.get(showKey(xAt < 0 ? result.rows.indexOf(row) + 1 : row[xAt])));
    const group = groupIndex.get(groupAt.map((i) => `${names[i]}=${showKey(row[i])}`).join(' '));
    values.forEach((v, k) => { series[group * values.length + k].points[x] = row[v]; });
  }
  return {
    xName: xAt >= 0 ? names[xAt] : 'row', xTime,
    x: order.map((i) => (xTime ? Date.parse(xKeys[i]) : xKeys[i])),
    series,
  };
}

// kind: 'bar' | 'line' | 'area' | 'pie'; result: the /query answer; sql: its text;
// `size` as for `histogram`.
export function chart(container, kind, result, sql, size = {}) {
  container.textContent = '';
  const shape = shapeResult(result, sql);
  const box = div(`chart ${kind}`);
  box.dataset.series = String(shape.series.length);
  box.dataset.points = String(shape.x.length);
  container.appendChild(box);
  if (!shape.series.length) {
    box.appendChild(div('error', 'No numeric column to chart: the table shows every column.'));
    return box;
  }
  if (kind === 'pie') return pies(box, shape);
  const uPlot = uPlotOrNull();
  if (!uPlot) return box;
  const n = shape.series.length;
  const xs = shape.xTime ? shape.x : shape.x.map((_, i) => i);
  // Bars share each slot: a category, or the step between time buckets. Series k
  // takes the k-th slice of the slot's middle 80 %.
  const step = shape.xTime ? Math.max(1, Math.min(...xs.slice(1).map((x, i) => x - xs[i]).filter((d) => d > 0), Infinity) || 60000) : 1;
  const slotStart = shape.xTime ? 0.1 * step : -0.4 * step;
  const barWidth = (0.8 * step) / n;
  const series = shape.series.map((s, k) => {
    const colour = colorOf(k);
    const common = { label: s.label, stroke: colour, width: 2, value: (_u, v) => (v == null ? '' : formatNumber(v)), spanGaps: false };
    if (kind === 'bar') {
      return { ...common, fill: colour, width: 0, points: { show: false },
        paths: uPlot.paths.bars({
          disp: {
            x0: { unit: 1, values: (u) => u.data[0].map((x) => x + slotStart + k * barWidth) },
            size: { unit: 1, values: () => [barWidth] },
          },
        }) };
    }
    if (kind === 'area') return { ...common, fill: `${colour}33` };
    return common;
  });
  const categories = shape.x.map((v) => (v === null || v === undefined ? '∅' : String(v)));
  const xValues = shape.xTime ? timeTicks
    : (_u, splits) => splits.map((i) => (Number.isInteger(i) && categories[i] !== undefined ? categories[i].slice(0, 18) : ''));
  const plot = new uPlot({
    width: size.width || Math.max(container.clientWidth - 24, 300), height: size.height || 300, ms: 1, tzDate: zoneDate,
    scales: {
      x: shape.xTime
        ? { time: true, range: (_u, min, max) => (kind === 'bar' ? [min, max + step] : [min, max]) }
        : { time: false, range: () => [-0.5, categories.length - 0.5] },
      y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.05 : 1] },
    },
    axes: [{ ...axes(xValues)[0], ...(shape.xTime ? {} : { splits: () => categories.map((_, i) => i).filter((i) => i % Math.ceil(categories.length / 12) === 0) }) }, axes()[1]],
    legend: { show: true, live: true },
    cursor: { points: { show: kind !== 'bar' } },
    series: [
      { label: shape.xName, value: (_u, v) => (v == null ? '' : shape.xTime ? formatTime(v) : categories[v] ?? '') },
      ...series,
    ],
  }, [xs, ...shape.series.map((s) => s.points)], box);
  plot.sizedByOwner = Boolean(size.width);
  box.plot = keep(plot);
  box.shape = shape;
  return box;
}

// One pie per value column (so a p50 and a p95 column are two pies), each slice a
// category (and group), with a legend of coloured swatches, labels and shares.
function pies(box, shape) {
  const byColumn = new Map();
  for (const s of shape.series) {
    if (!byColumn.has(s.column)) byColumn.set(s.column, []);
    byColumn.get(s.column).push(s);
  }
  for (const [column, list] of byColumn) {
    const slices = [];
    for (const s of list) {
      s.points.forEach((v, i) => {
        if (typeof v !== 'number' || v <= 0) return;
        const category = shape.xTime ? formatTime(shape.x[i]) : String(shape.x[i] ?? '∅');
        slices.push({ label: s.group ? `${category} ${s.group}` : category, value: v });
      });
    }
    const total = slices.reduce((a, b) => a + b.value, 0) || 1;
    const figure = document.createElement('figure');
    figure.className = 'pie';
    const size = 220; const r = size / 2 - 6; const c = size / 2;
    const svg = svgEl('svg', { viewBox: `0 0 ${size} ${size}`, width: size, height: size, role: 'img', 'aria-label': `Pie chart of ${column}` }, figure);
    let angle = -Math.PI / 2;
    const legend = document.createElement('ul');
    legend.className = 'legend';
    slices.forEach((slice, i) => {
      const part = slice.value / total;
      const next = angle + part * 2 * Math.PI;
      const d = part >= 0.9999
        ? `M ${c} ${c - r} A ${r} ${r} 0 1 1 ${c - 0.01} ${c - r} Z`
        : `M ${c} ${c} L ${c + r * Math.cos(angle)} ${c + r * Math.sin(angle)} A ${r} ${r} 0 ${part > 0.5 ? 1 : 0} 1 ${c + r * Math.cos(next)} ${c + r * Math.sin(next)} Z`;
      const path = svgEl('path', { d, fill: colorOf(i), class: 'slice' }, svg);
      svgEl('title', {}, path).textContent = `${slice.label}: ${formatNumber(slice.value)} (${(100 * part).toFixed(1)}%)`;
      const item = document.createElement('li');
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = colorOf(i);
      item.append(swatch, `${slice.label}: ${formatNumber(slice.value)} (${(100 * part).toFixed(1)}%)`);
      legend.appendChild(item);
      angle = next;
    });
    const caption = document.createElement('figcaption');
    caption.textContent = column;
    figure.append(legend, caption);
    box.appendChild(figure);
  }
  return box;
}
