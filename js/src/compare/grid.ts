/**
 * Layout of the Compare grid: a header row of column headers, then one row per input (a label
 * with the input's thumbnail and explained class, its cells in column order, a slot for the
 * row's colour bar). Rows are re-ordered in the DOM when sorted; cells are kept by
 * (row, column id), so a column added or moved never rebuilds the others.
 */
import { bytesOf } from "../shared/arrays";
import type { ArrayMessage } from "../shared/types";
import { type CellView, createCell } from "./cell";

export interface RowLabel {
  className: string;
  probability: number | null;
}

export interface GridView {
  readonly el: HTMLElement;
  /** Sets n rows and the columns (ids, display order) with their header elements. */
  setLayout(n: number, columns: number[], header: (id: number) => HTMLElement): void;
  setOrder(order: number[]): void;
  setRowLabels(images: ArrayMessage, labels: RowLabel[]): void;
  cell(row: number, col: number): CellView | undefined;
  cells(): CellView[];
  rowColorbarSlot(row: number): HTMLElement | undefined;
}

interface Row {
  el: HTMLElement;
  label: HTMLElement;
  thumb: HTMLCanvasElement;
  text: HTMLElement;
  colorbarSlot: HTMLElement;
}

/** Makes `children` the children of `parent`, in order, moving only nodes out of place (a moved
 * node loses focus, which would break a slider drag in a column header). */
function arrange(parent: HTMLElement, children: HTMLElement[]): void {
  children.forEach((child, i) => {
    const at = parent.children[i];
    if (at !== child) parent.insertBefore(child, at ?? null);
  });
  while (parent.children.length > children.length) parent.lastElementChild?.remove();
}

export function createGrid(
  cellTitle: (row: number, col: number) => string,
  onHover: (point: [number, number] | null) => void,
): GridView {
  const el = document.createElement("div");
  el.className = "lrp-grid";
  el.setAttribute("role", "grid");
  const head = document.createElement("div");
  head.className = "lrp-grid-row lrp-grid-head";
  head.setAttribute("role", "row");
  const corner = document.createElement("div");
  corner.className = "lrp-row-label";
  const headEnd = document.createElement("div");
  headEnd.className = "lrp-row-colorbar";
  el.append(head);

  const rows: Row[] = [];
  const cells = new Map<string, CellView>();
  let columns: number[] = [];

  const makeRow = (index: number): Row => {
    const rowEl = document.createElement("div");
    rowEl.className = "lrp-grid-row";
    rowEl.dataset.role = "row";
    rowEl.dataset.row = String(index);
    rowEl.setAttribute("role", "row");
    const label = document.createElement("div");
    label.className = "lrp-row-label";
    label.setAttribute("role", "rowheader");
    const thumb = document.createElement("canvas");
    thumb.className = "lrp-row-thumb";
    const text = document.createElement("div");
    text.className = "lrp-row-text";
    label.append(thumb, text);
    const colorbarSlot = document.createElement("div");
    colorbarSlot.className = "lrp-row-colorbar";
    rowEl.append(label, colorbarSlot);
    return { el: rowEl, label, thumb, text, colorbarSlot };
  };

  return {
    el,
    setLayout(n, nextColumns, header) {
      columns = nextColumns;
      arrange(head, [corner, ...columns.map(header), headEnd]);
      while (rows.length < n) {
        const row = makeRow(rows.length);
        rows.push(row);
        el.append(row.el);
      }
      for (const row of rows.splice(n)) row.el.remove();
      const wanted = new Set<string>();
      rows.forEach((row, r) => {
        const views = columns.map((col) => {
          const key = `${r}:${col}`;
          wanted.add(key);
          let cell = cells.get(key);
          if (!cell) {
            cell = createCell({ row: r, col, title: () => cellTitle(r, col), onHover });
            cells.set(key, cell);
          }
          return cell.el;
        });
        arrange(row.el, [row.label, ...views, row.colorbarSlot]);
      });
      for (const key of [...cells.keys()]) if (!wanted.has(key)) cells.delete(key);
    },
    setOrder(order) {
      const rowEls = el.querySelectorAll<HTMLElement>(":scope > [data-role='row']");
      const current = [...rowEls].map((r) => Number(r.dataset.row));
      if (current.join() === order.join()) return;
      arrange(el, [head, ...order.flatMap((r) => (rows[r] ? [rows[r].el] : []))]);
    },
    setRowLabels(images, labels) {
      const [n = 0, h = 0, w = 0] = images.shape;
      const bytes = bytesOf(images.data);
      rows.forEach((row, r) => {
        const label = labels[r];
        const p = label?.probability;
        const probability = p === null || p === undefined ? "" : ` (p=${p.toFixed(2)})`;
        row.text.textContent = `#${r} ${label?.className ?? ""}${probability}`;
        row.label.title = `Input ${r}, explained class ${label?.className ?? "?"}`;
        if (r >= n || w === 0 || h === 0) return;
        row.thumb.width = w;
        row.thumb.height = h;
        const context = row.thumb.getContext("2d");
        if (!context) return;
        const pixels = context.createImageData(w, h);
        for (let i = 0; i < w * h; i++) {
          for (let ch = 0; ch < 3; ch++) pixels.data[i * 4 + ch] = bytes[(r * w * h + i) * 3 + ch] ?? 0;
          pixels.data[i * 4 + 3] = 255;
        }
        context.putImageData(pixels, 0, 0);
      });
    },
    cell: (row, col) => cells.get(`${row}:${col}`),
    cells: () => [...cells.values()],
    rowColorbarSlot: (row) => rows[row]?.colorbarSlot,
  };
}
