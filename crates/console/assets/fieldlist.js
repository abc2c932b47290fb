// The search page's field list: the fields of the matching records with their top
// values and shares, from the server's field summary of the whole query (counted over
// every match in the range, or, when the server could not finish counting, over the
// newest matches, which the list then says); fields with too many distinct values to
// list are shown as such. Each value filters for or against itself, each
// field can be required (`_exists_:`) or shown as a column, and a box narrows the
// list by name.

import { h } from './ui.js';
import { formatNumber } from './format.js';

// Counted over the loaded hits: used only until (or if not) the server answers.
function summaryOfHits(hits) {
  const counts = new Map();
  for (const hit of hits) {
    for (const [name, value] of Object.entries(hit.fields)) {
      if (name === 'message') continue;
      if (!counts.has(name)) counts.set(name, new Map());
      const values = counts.get(name);
      const key = String(value);
      values.set(key, (values.get(key) || 0) + 1);
    }
  }
  return {
    sampled: hits.length, total: hits.length, local: true,
    fields: [...counts.entries()].map(([name, values]) => ({
      name, count: [...values.values()].reduce((a, b) => a + b, 0), distinct: values.size,
      top: [...values.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([value, count]) => ({ value, count })),
    })).sort((a, b) => b.count - a.count),
  };
}

// Too many distinct values for a top list to say anything (ids, timestamps, lines):
// the server says so; the loaded hits are judged here.
export function isHighCardinality(field) {
  if (typeof field.high_cardinality === 'boolean') return field.high_cardinality;
  return field.distinct > 20 && field.distinct >= 0.5 * field.count;
}

// A bar as long as the share (set through CSSOM: the page's policy refuses style attributes).
function shareBar(count, of) {
  const fill = h('span');
  fill.style.width = `${Math.min(100, (100 * count) / Math.max(1, of))}%`;
  return h('span', { class: 'bar', 'aria-hidden': 'true' }, fill);
}

const share = (count, of) => `${of ? Math.round((1000 * count) / of) / 10 : 0}%`;

// actions: { filter(name, value, negate), exists(name), toggleColumn(name), columns() }.
export function fieldList(actions) {
  const search = h('input', { type: 'search', name: 'field-search', class: 'wide', 'aria-label': 'Find a field', placeholder: 'Find a field…' });
  const scope = h('p', { class: 'muted scope' });
  const list = h('ul');
  const node = h('aside', { class: 'panel fields', 'aria-label': 'Fields' }, h('h2', {}, 'Fields'), search, scope, list);
  let summary = null;
  let serverSummary = false;

  const draw = () => {
    if (!summary) return;
    const needle = search.value.trim().toLowerCase();
    // The message is the log line itself, shown in full in every row.
    const fields = summary.fields.filter((f) => f.name !== 'message' && f.name.toLowerCase().includes(needle));
    // Counted over every match, or over the sample (the newest matches) only.
    const exact = Boolean(summary.counts_exact) || summary.sampled >= summary.total;
    const of = summary.counts_exact ? summary.total : summary.sampled;
    scope.replaceChildren(summary.local
      ? `Top values of the ${formatNumber(summary.sampled)} loaded records (the server’s summary is not available).`
      : exact
        ? h('span', { class: 'exact', title: summary.fields_from_sample && summary.sampled < summary.total
          ? `Fields named by the newest ${formatNumber(summary.sampled)} matches; counted over all of them` : 'Counted over every match' },
          `Top values of all ${formatNumber(summary.total)} matches.`)
        : h('span', { class: 'sampled', title: 'The field summary counts the newest matches only' },
          `Sampled: top values of the newest ${formatNumber(summary.sampled)} of ${formatNumber(summary.total)} matches.`));
    const columns = actions.columns();
    list.replaceChildren(...fields.map((field) => {
      const high = isHighCardinality(field);
      const inColumns = columns.includes(field.name);
      return h('li', { dataset: { field: field.name } },
        h('div', { class: 'field-head' },
          h('strong', { class: 'mono' }, field.name),
          field.type ? h('span', { class: 'field-type muted', title: `searched as ${field.type}` }, field.type) : null,
          h('span', { class: 'muted field-share', title: 'share of the records holding the field' }, share(field.count, of)),
          h('span', { class: 'spacer' }),
          h('button', { type: 'button', class: 'icon', 'aria-label': `Require field ${field.name}`, title: `Only records with ${field.name}`,
            onclick: () => actions.exists(field.name) }, '∃'),
          h('button', { type: 'button', class: 'icon', 'aria-pressed': String(inColumns),
            // The name starts with the visible text, as speech input users say it.
            'aria-label': `${inColumns ? '−col: remove' : '+col: add'} column ${field.name}`, title: inColumns ? 'Remove the column' : 'Show as a column',
            onclick: () => { actions.toggleColumn(field.name); draw(); } }, inColumns ? '−col' : '+col')),
        high
          ? h('div', { class: 'muted high-cardinality' }, `high cardinality: ${formatNumber(field.distinct)} distinct values`)
          : field.top.slice(0, 5).map((v) => {
            const value = String(v.value);
            return h('div', { class: 'value' },
              h('span', { class: 'mono value-text', title: value }, value.slice(0, 60)),
              shareBar(v.count, of),
              h('span', { class: 'percent', title: `${formatNumber(v.count)} of ${formatNumber(of)}` }, share(v.count, of)),
              h('button', { type: 'button', class: 'icon', 'aria-label': `Filter for ${field.name}:${value}`, onclick: () => actions.filter(field.name, value, false) }, '+'),
              h('button', { type: 'button', class: 'icon', 'aria-label': `Filter out ${field.name}:${value}`, onclick: () => actions.filter(field.name, value, true) }, '−'));
          }));
    }));
    if (!fields.length) list.replaceChildren(h('li', { class: 'muted' }, needle ? 'No field with that name.' : 'No fields.'));
  };
  search.addEventListener('input', draw);

  return {
    node,
    // The server's summary of the whole query.
    setSummary(next) { summary = next; serverSummary = true; draw(); },
    // The loaded hits, counted only while the server's summary is missing.
    setHits(hits) { if (!serverSummary) { summary = summaryOfHits(hits); draw(); } },
    redraw: draw,
    names: () => (summary ? summary.fields.map((f) => f.name) : []),
    summary: () => summary,
  };
}
