/**
 * Entry of the `lrp_widgets.Compare` anywidget (bundled as `lrp_widgets/static/compare.js`): a
 * grid of relevance overlays, rows = inputs, columns = rule configurations. Composes the toolbar,
 * column headers, cells, colour bars and status line, and wires them to the kernel
 * (`../shared/kernel.ts`). It uses only this folder and `../shared/`, never the Explorer's views.
 *
 * Everything visual (channel sum, normalisation, difference view, colormap, colour bars, hover
 * crosshair, sorting, PNG download) happens here without asking the kernel; only column edits
 * and the long scores are commands. A cell redraws only when what it shows changed (its
 * column's heatmap generation, the reference's, its scale, the colormap or opacity). The scales
 * (`normalization` × `scale_by`, see `compare/normalize.ts`) are recomputed only when the maps,
 * the reference or these two settings change.
 *
 * Testing contract (stable): root class `lrp-compare` (with `data-lm-suppress-shortcuts`);
 * cells `data-role="cell"` with `data-row` (input index) and `data-col` (column id) holding the
 * map's `<canvas>` first (`data-role="heatmap"`, `data-generation` = the heatmap generation it
 * shows; with per-cell normalisation the cell's colour bar canvas follows); scores
 * `data-score="<name>"` in each cell (text = formatted value; `faithfulness` is a button that
 * shows the curves `data-role="curve"`); column headers `data-role="column"` with `data-col`,
 * holding `remove-column`, `move-left`, `move-right` buttons and parameter inputs
 * `data-param="<name>"` (sliders; number boxes `data-param-text`); `data-role` = `status` (text
 * starts with `ready` / `computing` / `error`), `add-column` (the preset select),
 * `add-column-button`, `paste-config`, `add-config-button`, `normalization`, `scale-by` (the
 * colour scale: `percentile` = 99th percentile of |value|, default, or `max`), `reference`,
 * `cmap-select`, `show`, `opacity`, `sort-score`, `sort-column`, `sort-direction`, `compute-scores`,
 * `cancel`, `progress`, `colorbar` (canvases), `download` (per cell), `row` (per input, in the
 * displayed order). The root exposes `data-requests` (commands sent; display settings are not
 * counted), `data-busy`, `data-compute-count`, `data-answered` and, while the pointer is over a
 * cell, `data-hover="x,y"` (heatmap pixel, the same crosshair drawn in every cell).
 */
import type { AnyWidget, RenderProps } from "@anywidget/types";
import "../shared/theme.css";
import "./compare.css";
import { bytesOf, float32Of } from "../shared/arrays";
import { Kernel } from "../shared/kernel";
import { createStatus, plural } from "../shared/status";
import type { CellScore } from "./cell";
import { type Colorbar, createColorbar } from "./colorbar";
import { type ColumnHeader, createColumnHeader } from "./column";
import { createGrid } from "./grid";
import { channelSum, differenceMaps, groupScales, type MapGrid } from "./normalize";
import { rowOrder } from "./scores";
import { createToolbar } from "./toolbar";
import type { ColumnHeatmap, CompareCommand, CompareTraits } from "./types";

/** Scores computed on request only (the others come with every heatmap). */
const LONG_SCORES = ["faithfulness", "class_sensitivity"];

/** Traits the Compare page writes (display state only: none asks the kernel to compute). */
type CompareOwned = "normalization" | "scale_by" | "reference" | "cmap" | "show" | "sort";

/** Channel-summed maps of one column, per row, for the heatmap generation they came from. */
interface ColumnMaps {
  generation: number;
  message: ColumnHeatmap;
  maps: Float32Array[];
  width: number;
  height: number;
}

function render({ model, el }: RenderProps<CompareTraits>): () => void {
  const kernel = new Kernel<CompareTraits, CompareCommand, CompareOwned>(model);
  const root = document.createElement("div");
  root.className = "lrp-compare";
  // Lumino (JupyterLab, Notebook 7) ignores its keyboard shortcuts for keys typed in here.
  root.dataset.lmSuppressShortcuts = "true";
  const palettes = kernel.get("palettes");
  let structural = 0; // coalescing keys of commands that must all reach the kernel

  const counted = (): void => {
    root.dataset.requests = String(kernel.messages);
    root.dataset.busy = String(kernel.busy);
  };
  const command = (message: CompareCommand, key = `structural:${structural++}`): void => {
    kernel.send(message, key);
    counted();
  };

  const toolbar = createToolbar(Object.keys(palettes), {
    onAddPreset: (preset) => command({ type: "add_column", preset }),
    onAddConfig: (config) => command({ type: "add_column", config }),
    onNormalization: (mode) => kernel.set("normalization", mode, false),
    onScaleBy: (by) => kernel.set("scale_by", by, false),
    onReference: (id) => kernel.set("reference", id, false),
    onCmap: (name) => kernel.set("cmap", name, false),
    onShow: (show) => kernel.set("show", show, false),
    onOpacity: () => redraw(),
    onSort: (sort) => kernel.set("sort", sort, false),
    onComputeScores: () => {
      const info = kernel.get("score_info");
      command({ type: "compute_scores", names: LONG_SCORES.filter((name) => name in info) });
    },
    onCancel: () => {
      kernel.sendNow({ type: "cancel" });
      counted();
    },
  });
  const columnName = (id: number): string => kernel.get("columns").find((c) => c.id === id)?.name ?? String(id);
  let hover: [number, number] | null = null;
  const grid = createGrid(
    (row, col) => `${columnName(col)}-input${row}`,
    (point) => {
      hover = point;
      if (point) root.dataset.hover = `${point[0]},${point[1]}`;
      else delete root.dataset.hover;
      for (const cell of grid.cells()) cell.setHover(point);
    },
  );
  const status = createStatus();
  const scroller = document.createElement("div");
  scroller.className = "lrp-grid-scroll";
  scroller.append(grid.el);
  root.append(toolbar.el, scroller, status.el);
  el.append(root);

  const headers = new Map<number, ColumnHeader>();
  const header = (id: number): ColumnHeader => {
    let view = headers.get(id);
    if (!view) {
      view = createColumnHeader(id, {
        // Coalescing keys `column:<id>:…`: the newest edit of each control group is kept.
        onParams: (col, params) => command({ type: "set_params", id: col, params }, `column:${col}:params`),
        onLayerParams: (col, layer, params) =>
          command({ type: "set_layer_params", id: col, layer, params }, `column:${col}:layer:${layer}`),
        onRemove: (col) => command({ type: "remove_column", id: col }),
        onMove: (col, index) => command({ type: "move_column", id: col, index }),
      });
      headers.set(id, view);
    }
    return view;
  };

  const cache = new Map<number, ColumnMaps>();
  /** The column's maps from its newest heatmap (summed once per generation), unless an edit of
   * the column waits to be sent (then its answer would be stale at once). */
  const columnMaps = (id: number): ColumnMaps | null => {
    const message = kernel.get("heatmaps")[String(id)];
    const cached = cache.get(id) ?? null;
    const pending = kernel.hasPending(`column:${id}:`);
    if (!message?.shape || (pending && cached)) return cached;
    const same = cached?.generation === message.generation && cached.message.shape.join() === message.shape.join();
    if (same) return cached;
    const values = float32Of(message);
    const [n = 0, , h = 1, w = 1] = message.shape;
    const maps = Array.from({ length: n }, (_, row) => channelSum(values, message.shape, row));
    const next = { generation: message.generation, message, maps, width: w, height: h };
    cache.set(id, next);
    return next;
  };

  const colorbars = new Map<string, Colorbar>();
  const colorbar = (key: string, title: string, slot: HTMLElement | undefined): Colorbar | null => {
    if (!slot) return null;
    let bar = colorbars.get(key);
    if (!bar) {
      bar = createColorbar(title);
      colorbars.set(key, bar);
    }
    if (bar.el.parentElement !== slot) slot.replaceChildren(bar.el);
    return bar;
  };

  // The last scales, kept while the maps and settings they came from stay the same (the
  // percentile needs a pass over every value; redraws for colormap or opacity need none).
  let scaleMemo: { key: string; value: ReturnType<typeof groupScales> } | null = null;
  const scalesOf = (shown: MapGrid, reference: number, sources: string[]): ReturnType<typeof groupScales> => {
    const mode = kernel.get("normalization");
    const by = kernel.get("scale_by");
    const key = [mode, by, reference, shown.length, ...sources].join("|");
    if (scaleMemo?.key !== key) scaleMemo = { key, value: groupScales(shown, mode, by) };
    return scaleMemo.value;
  };

  function redraw(): void {
    const columns = kernel.get("columns");
    const n = kernel.get("images").shape[0] ?? 0;
    const maps = columns.map((c) => columnMaps(c.id));
    for (const id of [...cache.keys()]) if (!columns.some((c) => c.id === id)) cache.delete(id);
    const base: MapGrid = Array.from({ length: n }, (_, row) => maps.map((m) => m?.maps[row] ?? null));
    const referenceId = kernel.get("reference");
    const reference = columns.findIndex((c) => c.id === referenceId);
    const shown = differenceMaps(base, reference);
    for (const column of columns) header(column.id).el.dataset.reference = String(column.id === referenceId);
    const sources = columns.map((c, i) => `${c.id}@${maps[i]?.generation ?? -1}`);
    const { scales, groups } = scalesOf(shown, reference, sources);
    const cmap = kernel.get("cmap");
    const paletteData = palettes[cmap] ?? palettes.bwr;
    const palette = paletteData ? bytesOf(paletteData) : new Uint8Array(768);
    const overlay = kernel.get("show") === "overlay";
    const alpha = overlay ? toolbar.opacity() : 1;
    const images = kernel.get("images");
    const referenceGeneration = reference >= 0 ? (maps[reference]?.generation ?? -1) : -1;
    columns.forEach((column, c) => {
      const source = maps[c];
      const sameSize = source && images.shape[1] === source.height && images.shape[2] === source.width;
      const under = overlay && sameSize ? images.data : null;
      for (let row = 0; row < n; row++) {
        const scale = scales[row]?.[c] ?? 0;
        const generation = source?.generation ?? -1;
        const difference = reference >= 0 && c !== reference ? referenceGeneration : -1;
        grid.cell(row, column.id)?.draw({
          key: [generation, difference, scale, cmap, under ? alpha : "-"].join("|"),
          generation,
          map: shown[row]?.[c] ?? null,
          width: source?.width ?? 0,
          height: source?.height ?? 0,
          images: under,
          palette,
          scale,
          alpha,
        });
      }
    });
    const used = new Set<string>();
    for (const group of groups) {
      const key = `${group.row ?? "*"}:${group.col ?? "*"}`;
      const col = group.col === null ? undefined : columns[group.col]?.id;
      const slot =
        group.row === null
          ? toolbar.colorbarSlot
          : col === undefined
            ? grid.rowColorbarSlot(group.row)
            : grid.cell(group.row, col)?.colorbarSlot;
      const title =
        group.row === null
          ? "Scale of the grid"
          : col === undefined
            ? `Scale of input ${group.row}`
            : "Scale of this cell";
      colorbar(key, title, slot)?.update(palette, group.scale);
      used.add(key);
    }
    for (const [key, bar] of colorbars) {
      if (used.has(key)) continue;
      bar.el.remove();
      colorbars.delete(key);
    }
    if (hover) for (const cell of grid.cells()) cell.setHover(hover);
  }

  function scoreNames(): string[] {
    const info = kernel.get("score_info");
    const scores = kernel.get("scores");
    return [...new Set([...Object.keys(info), ...Object.keys(scores)])];
  }

  function showScores(): void {
    const columns = kernel.get("columns");
    const scores = kernel.get("scores");
    const info = kernel.get("score_info");
    const curves = kernel.get("curves");
    const names = scoreNames();
    const n = kernel.get("images").shape[0] ?? 0;
    for (const column of columns) {
      const set = curves[String(column.id)];
      for (let row = 0; row < n; row++) {
        const entries: CellScore[] = names.map((name) => ({
          name,
          label: info[name]?.label ?? name,
          description: info[name]?.description ?? "",
          value: scores[name]?.[String(column.id)]?.[row] ?? null,
        }));
        const morf = set?.morf[row];
        const lerf = set?.lerf[row];
        const curve = set && morf && lerf ? { fractions: set.fractions, morf, lerf } : null;
        grid.cell(row, column.id)?.setScores(entries, curve);
      }
    }
    grid.setOrder(rowOrder(scores, kernel.get("sort"), n));
  }

  function showRows(): void {
    const classes = kernel.get("classes");
    const names = kernel.get("class_names");
    const predictions = kernel.get("predictions");
    grid.setRowLabels(
      kernel.get("images"),
      classes.map((c, row) => {
        const [top, p] = predictions[row] ?? [];
        return { className: names[c] ?? String(c), probability: top === c && p !== undefined ? p : null };
      }),
    );
  }

  function refreshHeaders(): void {
    const columns = kernel.get("columns");
    for (const id of [...headers.keys()]) if (!columns.some((c) => c.id === id)) headers.delete(id);
    columns.forEach((column, index) => {
      const editing = kernel.isEditing(`column:${column.id}:`);
      header(column.id).update(column, index, columns.length, editing);
    });
  }

  function layout(): void {
    const columns = kernel.get("columns");
    refreshHeaders();
    grid.setLayout(
      kernel.get("images").shape[0] ?? 0,
      columns.map((c) => c.id),
      (id) => header(id).el,
    );
    showRows();
    redraw();
    showScores();
    updateToolbar();
  }

  function updateToolbar(): void {
    toolbar.update({
      columns: kernel.get("columns"),
      presets: kernel.get("presets"),
      scoreInfo: kernel.get("score_info"),
      scoreNames: scoreNames(),
      normalization: kernel.get("normalization"),
      scaleBy: kernel.get("scale_by"),
      reference: kernel.get("reference"),
      cmap: kernel.get("cmap"),
      show: kernel.get("show"),
      sort: kernel.get("sort"),
      progress: kernel.get("progress"),
      busy: kernel.busy,
    });
  }

  function showStatus(): void {
    const state = kernel.get("status");
    const error = kernel.get("error");
    const columns = kernel.get("columns").length;
    const n = kernel.get("images").shape[0] ?? 0;
    status.update(state, [error, `${plural(n, "input")} × ${plural(columns, "column")}`]);
    root.dataset.computeCount = String(kernel.get("compute_count"));
    root.dataset.answered = String(kernel.get("answered"));
    counted();
  }

  layout();
  showStatus();
  kernel.onChange(["columns", "images"], layout);
  kernel.onChange(["classes", "class_names", "predictions"], showRows);
  kernel.onChange(["heatmaps", "normalization", "scale_by", "reference", "cmap", "show"], () => {
    redraw();
    updateToolbar();
  });
  kernel.onChange(["scores", "score_info", "curves", "sort"], () => {
    showScores();
    updateToolbar();
  });
  kernel.onChange(["progress", "presets"], updateToolbar);
  kernel.onChange(["status", "error", "compute_count", "answered"], () => {
    showStatus();
    refreshHeaders(); // parameter boxes held back while their edit was on its way
    redraw(); // an edit that waited may have been answered without a new heatmap
  });

  return () => {
    kernel.dispose();
    root.remove();
  };
}

const widget: AnyWidget<CompareTraits> = { render };
export default widget;
