// The dashboard's grid: 12 columns, rows of ROW_PX, each panel placed by its
// `grid: {x, y, w, h}` (CSS grid lines, so the browser lays them out). Panels are
// moved by dragging their title bar and resized by their corner handle, with plain
// mouse events; a move or resize that ends on other panels pushes those down, and
// the new layout is handed to `onChange` once the mouse is released.

export const COLUMNS = 12;
export const ROW_PX = 48;
export const GAP_PX = 10;
export const MAX_ROWS = 24;

export function place(node, grid) {
  node.style.gridColumn = `${grid.x + 1} / span ${grid.w}`;
  node.style.gridRow = `${grid.y + 1} / span ${grid.h}`;
}

// The height in pixels of a panel `h` rows high.
export const heightOf = (h) => h * ROW_PX + (h - 1) * GAP_PX;

const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

// The layout after `moved` took its new place: it stays where it was put; every
// panel it (or a panel pushed by it) lands on moves down just below, in reading order.
export function settle(panels, moved) {
  const placed = [moved.grid];
  const rest = panels.filter((p) => p !== moved).sort((a, b) => a.grid.y - b.grid.y || a.grid.x - b.grid.x);
  for (const panel of rest) {
    const grid = { ...panel.grid };
    for (let hit = placed.find((g) => overlaps(g, grid)); hit; hit = placed.find((g) => overlaps(g, grid))) {
      grid.y = hit.y + hit.h;
    }
    panel.grid = grid;
    placed.push(grid);
  }
}

// The first free row below every panel: where a new panel goes.
export function nextRow(panels) {
  return panels.reduce((row, p) => Math.max(row, p.grid.y + p.grid.h), 0);
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

// Makes `node` (showing `panel`, inside the grid element `gridNode`) movable by
// `handle` and resizable by `corner`. `panels` is the whole layout; `onChange()` runs
// after a drop that changed it (every moved panel already re-placed).
export function makeMovable({ gridNode, node, handle, corner, panel, panels, nodes, onChange }) {
  const cell = () => {
    const width = gridNode.clientWidth;
    return { x: (width + GAP_PX) / COLUMNS, y: ROW_PX + GAP_PX };
  };
  const start = (event, resize) => {
    if (event.button !== 0 || event.target.closest('button, a, input, select')) return;
    event.preventDefault();
    const origin = { ...panel.grid };
    const startX = event.clientX;
    const startY = event.clientY;
    const size = cell();
    node.classList.add(resize ? 'resizing' : 'dragging');
    const at = (e) => {
      const dx = Math.round((e.clientX - startX) / size.x);
      const dy = Math.round((e.clientY - startY) / size.y);
      if (resize) {
        return { ...origin, w: clamp(origin.w + dx, 1, COLUMNS - origin.x), h: clamp(origin.h + dy, 1, MAX_ROWS) };
      }
      return { ...origin, x: clamp(origin.x + dx, 0, COLUMNS - origin.w), y: clamp(origin.y + dy, 0, 1000) };
    };
    const move = (e) => place(node, at(e));
    const up = (e) => {
      document.removeEventListener('mousemove', move);
      document.removeEventListener('mouseup', up);
      node.classList.remove('dragging', 'resizing');
      const next = at(e);
      if (['x', 'y', 'w', 'h'].every((k) => next[k] === origin[k])) return;
      panel.grid = next;
      settle(panels, panel);
      for (const p of panels) place(nodes.get(p.id), p.grid);
      onChange(panel, resize);
    };
    document.addEventListener('mousemove', move);
    document.addEventListener('mouseup', up);
  };
  handle.addEventListener('mousedown', (e) => start(e, false));
  corner.addEventListener('mousedown', (e) => start(e, true));
}
