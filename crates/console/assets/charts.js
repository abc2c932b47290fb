// Small SVG charts: a time histogram that zooms on a dragged range, and bar, line
// and pie charts for SQL results. Drawn by hand to keep the console free of any
// front-end dependency.

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, parent) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function shortTime(ms, spanMs) {
  const d = new Date(ms);
  const iso = d.toISOString();
  if (spanMs > 2 * 86400000) return iso.slice(5, 10) + ' ' + iso.slice(11, 16);
  if (spanMs > 3600000) return iso.slice(11, 16);
  return iso.slice(11, 19);
}

// buckets: [{time: ISO, count}], intervalMs. onZoom(fromMs, toMs) on a drag.
export function histogram(container, buckets, intervalMs, onZoom) {
  container.textContent = '';
  const width = Math.max(container.clientWidth || 800, 300);
  const height = 120;
  const pad = { left: 40, right: 8, top: 8, bottom: 20 };
  const svg = el('svg', { class: 'chart histogram', viewBox: `0 0 ${width} ${height}`,
    role: 'img', 'aria-label': 'Histogram of matching records over time' }, container);
  if (!buckets.length) {
    el('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, svg).textContent = 'no data';
    return svg;
  }
  const times = buckets.map((b) => Date.parse(b.time));
  const from = times[0];
  const to = times[times.length - 1] + intervalMs;
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const x = (t) => pad.left + ((t - from) / (to - from)) * plotW;
  const barW = Math.max(1, (intervalMs / (to - from)) * plotW - 1);
  buckets.forEach((b, i) => {
    const h = (b.count / max) * plotH;
    const bar = el('rect', { class: 'bar', x: x(times[i]), y: pad.top + plotH - h,
      width: barW, height: h, 'data-count': b.count }, svg);
    el('title', {}, bar).textContent = `${b.time}: ${b.count}`;
  });
  el('text', { x: pad.left - 4, y: pad.top + 10, 'text-anchor': 'end' }, svg).textContent = String(max);
  el('text', { x: pad.left, y: height - 4 }, svg).textContent = shortTime(from, to - from);
  el('text', { x: width - pad.right, y: height - 4, 'text-anchor': 'end' }, svg).textContent =
    shortTime(to, to - from);
  // Drag to zoom: the selection maps back to times through the same scale.
  const selection = el('rect', { class: 'selection', y: pad.top, height: plotH, width: 0 }, svg);
  let start = null;
  const toTime = (clientX) => {
    const box = svg.getBoundingClientRect();
    const px = ((clientX - box.left) / box.width) * width;
    const clamped = Math.min(Math.max(px, pad.left), width - pad.right);
    return from + ((clamped - pad.left) / plotW) * (to - from);
  };
  svg.addEventListener('mousedown', (e) => { start = toTime(e.clientX); e.preventDefault(); });
  svg.addEventListener('mousemove', (e) => {
    if (start === null) return;
    const now = toTime(e.clientX);
    selection.setAttribute('x', x(Math.min(start, now)));
    selection.setAttribute('width', Math.abs(x(now) - x(start)));
  });
  const finish = (e) => {
    if (start === null) return;
    const end = toTime(e.clientX);
    const [a, b] = [Math.min(start, end), Math.max(start, end)];
    start = null;
    selection.setAttribute('width', 0);
    if (b - a >= 1000) onZoom(Math.floor(a), Math.ceil(b));
  };
  svg.addEventListener('mouseup', finish);
  svg.addEventListener('mouseleave', (e) => { if (start !== null) finish(e); });
  return svg;
}

const PALETTE = ['#2563eb', '#16a34a', '#f59e0b', '#dc2626', '#7c3aed', '#0891b2',
  '#db2777', '#65a30d', '#ea580c', '#4b5563'];

// labels: strings; values: numbers. kind: 'bar' | 'line' | 'pie'.
export function chart(container, kind, labels, values, title) {
  container.textContent = '';
  const width = Math.max(container.clientWidth || 800, 300);
  const height = 260;
  const svg = el('svg', { class: `chart ${kind}`, viewBox: `0 0 ${width} ${height}`,
    role: 'img', 'aria-label': `${kind} chart of ${title}` }, container);
  if (!values.length) {
    el('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, svg).textContent = 'no rows';
    return svg;
  }
  if (kind === 'pie') {
    const total = values.reduce((a, b) => a + Math.max(0, b), 0) || 1;
    const cx = height / 2; const cy = height / 2; const r = height / 2 - 10;
    let angle = -Math.PI / 2;
    values.forEach((v, i) => {
      const share = Math.max(0, v) / total;
      const next = angle + share * 2 * Math.PI;
      const large = share > 0.5 ? 1 : 0;
      const p = share >= 0.9999
        ? `M ${cx} ${cy - r} A ${r} ${r} 0 1 1 ${cx - 0.01} ${cy - r} Z`
        : `M ${cx} ${cy} L ${cx + r * Math.cos(angle)} ${cy + r * Math.sin(angle)} ` +
          `A ${r} ${r} 0 ${large} 1 ${cx + r * Math.cos(next)} ${cy + r * Math.sin(next)} Z`;
      const slice = el('path', { d: p, fill: PALETTE[i % PALETTE.length], class: 'slice' }, svg);
      el('title', {}, slice).textContent = `${labels[i]}: ${v}`;
      el('text', { x: height + 10, y: 20 + i * 18 }, svg).textContent =
        `■ ${labels[i]} (${v})`;
      svg.lastChild.setAttribute('fill', PALETTE[i % PALETTE.length]);
      angle = next;
    });
    return svg;
  }
  const pad = { left: 50, right: 10, top: 10, bottom: 50 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const max = Math.max(...values, 0) || 1;
  const step = plotW / values.length;
  const y = (v) => pad.top + plotH - (Math.max(0, v) / max) * plotH;
  el('text', { x: pad.left - 4, y: pad.top + 10, 'text-anchor': 'end' }, svg).textContent = String(max);
  if (kind === 'bar') {
    values.forEach((v, i) => {
      const bar = el('rect', { class: 'bar', x: pad.left + i * step + 2, y: y(v),
        width: Math.max(1, step - 4), height: pad.top + plotH - y(v) }, svg);
      el('title', {}, bar).textContent = `${labels[i]}: ${v}`;
    });
  } else {
    const points = values.map((v, i) => `${pad.left + i * step + step / 2},${y(v)}`).join(' ');
    el('polyline', { points, fill: 'none', stroke: '#2563eb', 'stroke-width': 2, class: 'line' }, svg);
  }
  const every = Math.ceil(values.length / 12);
  labels.forEach((label, i) => {
    if (i % every) return;
    const text = el('text', { x: pad.left + i * step + step / 2, y: height - pad.bottom + 14,
      'text-anchor': 'middle' }, svg);
    text.textContent = String(label).slice(0, 16);
  });
  return svg;
}
