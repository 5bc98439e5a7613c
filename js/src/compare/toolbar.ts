/**
 * The Compare toolbar: adding columns (preset select `data-role="add-column"` with
 * `add-column-button`; a pasted JSON config in `paste-config` with `add-config-button`), the
 * display settings owned by the page (`normalization`, `scale-by`, `reference`, `cmap-select`,
 * `show`, `opacity`),
 * sorting (`sort-score`, `sort-column`, `sort-direction`) and the long scores (`compute-scores`,
 * `cancel`, `progress`).
 */
import { button, labelled, opacitySlider, select, setOptions } from "../shared/controls";
import type { ScaleBy } from "../shared/types";
import type { ColumnInfo, CompareTraits, Normalization, ScoreInfo, SortState } from "./types";

export interface ToolbarCallbacks {
  onAddPreset: (preset: string) => void;
  onAddConfig: (config: string) => void;
  onNormalization: (mode: Normalization) => void;
  onScaleBy: (by: ScaleBy) => void;
  onReference: (id: number) => void;
  onCmap: (name: string) => void;
  onShow: (show: CompareTraits["show"]) => void;
  onOpacity: () => void;
  onSort: (sort: Partial<SortState>) => void;
  onComputeScores: () => void;
  onCancel: () => void;
}

export interface ToolbarState {
  columns: ColumnInfo[];
  presets: string[];
  scoreInfo: Record<string, ScoreInfo>;
  scoreNames: string[];
  normalization: Normalization;
  scaleBy: ScaleBy;
  reference: number;
  cmap: string;
  show: CompareTraits["show"];
  sort: Partial<SortState>;
  progress: CompareTraits["progress"];
  busy: boolean;
}

export interface Toolbar {
  readonly el: HTMLElement;
  /** Slot of the grid-wide colour bar. */
  readonly colorbarSlot: HTMLElement;
  readonly opacity: () => number;
  update(state: ToolbarState): void;
}

export function createToolbar(palettes: string[], callbacks: ToolbarCallbacks): Toolbar {
  const el = document.createElement("div");
  el.className = "lrp-toolbar";

  const preset = select("add-column", []);
  preset.setAttribute("aria-label", "Preset for a new column");
  const add = button("add-column-button", "Add column", () => callbacks.onAddPreset(preset.value));
  const paste = document.createElement("textarea");
  paste.className = "lrp-paste";
  paste.dataset.role = "paste-config";
  paste.rows = 1;
  paste.placeholder = "…or paste a JSON config";
  paste.setAttribute("aria-label", "JSON configuration for a new column");
  const addConfig = button("add-config-button", "Add config", () => {
    if (paste.value.trim() !== "") callbacks.onAddConfig(paste.value);
  });
  const adding = document.createElement("div");
  adding.className = "lrp-toolbar-group";
  adding.append(labelled("Column", preset), add, paste, addConfig);

  const normalization = select("normalization", [
    ["grid", "shared by the grid"],
    ["row", "per row"],
    ["cell", "per cell"],
  ]);
  normalization.addEventListener("change", () => callbacks.onNormalization(normalization.value as Normalization));
  const scaleBy = select("scale-by", [
    ["percentile", "99th percentile"],
    ["max", "maximum"],
  ]);
  scaleBy.title =
    "Colour scale ±s of each group: the 99th percentile of |R| (the few larger values take the end " +
    "colours) or the largest |R|";
  scaleBy.addEventListener("change", () => callbacks.onScaleBy(scaleBy.value as ScaleBy));
  const reference = select("reference", [["-1", "none"]]);
  reference.addEventListener("change", () => callbacks.onReference(Number(reference.value)));
  const cmap = select(
    "cmap-select",
    palettes.map((n) => [n, n]),
  );
  cmap.addEventListener("change", () => callbacks.onCmap(cmap.value));
  const opacity = opacitySlider(0.6);
  opacity.addEventListener("input", callbacks.onOpacity);
  opacity.setAttribute("aria-label", "Opacity of the map over the input");
  const show = select("show", [
    ["heatmap", "map only"],
    ["overlay", "map over input"],
  ]);
  show.addEventListener("change", () => callbacks.onShow(show.value as CompareTraits["show"]));
  const display = document.createElement("div");
  display.className = "lrp-toolbar-group";
  display.append(
    labelled("Scale", normalization),
    labelled("Scale to", scaleBy),
    labelled("Difference to", reference),
    labelled("Colormap", cmap),
    labelled("Show", show),
    labelled("Opacity", opacity),
  );

  const sortScore = select("sort-score", [["", "input order"]]);
  const sortColumn = select("sort-column", []);
  let descending = true;
  const direction = button("sort-direction", "", () => {
    descending = !descending;
    emitSort();
  });
  const emitSort = (): void => {
    if (sortScore.value === "" || sortColumn.value === "") callbacks.onSort({});
    else callbacks.onSort({ score: sortScore.value, column: Number(sortColumn.value), descending });
  };
  let infos: Record<string, ScoreInfo> = {};
  sortScore.addEventListener("change", () => {
    // A new score starts in its "best first" direction.
    descending = infos[sortScore.value]?.higher_is_better ?? true;
    emitSort();
  });
  sortColumn.addEventListener("change", emitSort);
  const compute = button("compute-scores", "Compute faithfulness & sensitivity", callbacks.onComputeScores);
  const cancel = button("cancel", "Cancel", callbacks.onCancel);
  const progress = document.createElement("progress");
  progress.dataset.role = "progress";
  progress.className = "lrp-progress";
  const progressText = document.createElement("span");
  progressText.className = "lrp-progress-text";
  const sorting = document.createElement("div");
  sorting.className = "lrp-toolbar-group";
  sorting.append(
    labelled("Sort by", sortScore),
    labelled("of column", sortColumn),
    direction,
    compute,
    cancel,
    progress,
    progressText,
  );

  const colorbarSlot = document.createElement("div");
  colorbarSlot.className = "lrp-grid-colorbar";
  el.append(adding, display, sorting, colorbarSlot);

  return {
    el,
    colorbarSlot,
    opacity: () => Number(opacity.value),
    update(state) {
      infos = state.scoreInfo;
      setOptions(
        preset,
        state.presets.map((p) => [p, p]),
      );
      const columnOptions = state.columns.map((c): [string, string] => [String(c.id), c.name]);
      setOptions(reference, [["-1", "none"], ...columnOptions]);
      reference.value = String(state.reference);
      if (reference.value === "") reference.value = "-1";
      normalization.value = state.normalization;
      scaleBy.value = state.scaleBy;
      if (palettes.includes(state.cmap)) cmap.value = state.cmap;
      show.value = state.show;
      opacity.disabled = state.show !== "overlay";
      setOptions(sortScore, [
        ["", "input order"],
        ...state.scoreNames.map((n): [string, string] => [n, state.scoreInfo[n]?.label ?? n]),
      ]);
      setOptions(sortColumn, columnOptions);
      sortScore.value = state.sort.score ?? "";
      if (state.sort.column !== undefined) sortColumn.value = String(state.sort.column);
      descending = state.sort.descending ?? descending;
      direction.textContent = descending ? "↓ descending" : "↑ ascending";
      direction.setAttribute("aria-label", `Sort direction: ${descending ? "descending" : "ascending"}`);
      direction.disabled = sortScore.value === "";
      const running = state.progress.total !== undefined;
      progress.hidden = !running;
      progress.max = Math.max(1, state.progress.total ?? 1);
      progress.value = state.progress.done ?? 0;
      progressText.textContent = running
        ? `${state.progress.task ?? ""} ${state.progress.done ?? 0}/${state.progress.total ?? 0}`
        : "";
      cancel.disabled = !running;
      compute.disabled = running;
    },
  };
}
