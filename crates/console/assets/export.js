// The search page's export: every match of the search's range as CSV or NDJSON,
// streamed by the server and saved by the browser as a download. The request goes
// through fetch (the key is a header, never in a URL); the server's
// `X-Logpool-Export-*` headers say how many matched and whether the export stopped
// at its limit, which is shown next to the button.

import { exportSearch, ApiError } from './api.js';
import { h, errorView, toast } from './ui.js';

// `current()` gives { base, request: { query, from, to }, columns }.
export function exportControls(current) {
  const format = h('select', { name: 'export-format', 'aria-label': 'Export format' },
    h('option', { value: 'csv' }, 'CSV'), h('option', { value: 'ndjson' }, 'NDJSON'));
  const note = h('span', { class: 'muted export-note', role: 'status' });
  const button = h('button', { type: 'button', class: 'secondary', name: 'export', onclick: async () => {
    const { base, request, columns } = current();
    button.disabled = true;
    note.textContent = 'Exporting…';
    try {
      const columnList = columns && columns.length ? columns : ['time', 'message'];
      const answer = await exportSearch(`${base}/export`, { ...request, format: format.value, columns: columnList.join(',') });
      const matches = Number(answer.headers.get('x-logpool-export-matches'));
      const limit = Number(answer.headers.get('x-logpool-export-limit'));
      const truncated = answer.headers.get('x-logpool-export-truncated') === 'true';
      const blob = await answer.blob();
      const name = /filename="([^"]+)"/.exec(answer.headers.get('content-disposition') || '');
      const link = h('a', { href: URL.createObjectURL(blob), download: name ? name[1] : `export.${format.value}` });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
      note.textContent = truncated
        ? `Exported the newest ${limit.toLocaleString()} of ${matches.toLocaleString()} matches (the export limit).`
        : `Exported ${matches.toLocaleString()} records.`;
      if (truncated) note.classList.add('warning');
    } catch (error) {
      note.textContent = '';
      if (error instanceof ApiError) toast(errorView(error).textContent);
      else toast(`Export failed: ${error.message || error}`);
    } finally { button.disabled = false; }
  } }, 'Export');
  return h('span', { class: 'row export' }, format, button, note);
}
