/**
 * Parameter controls of a rule: a slider (logarithmic for ε, stabilizers and β-smooth) with a
 * number box for exact values, a bias on/off switch for `zero_params`.
 *
 * Testing contract: the slider (or the only control) of parameter `p` has `data-param="p"`; its
 * number box `data-param-text="p"`. Values outside the slider range can be typed in the box; the
 * kernel validates them and reports invalid ones in the status line.
 */

interface Range {
  min: number;
  max: number;
  log: boolean;
}

/** Slider ranges by parameter name (UI choices; the rule itself validates its values). */
const RANGES: Record<string, Range> = {
  epsilon: { min: 1e-9, max: 10, log: true },
  stabilizer: { min: 1e-9, max: 1, log: true },
  beta_smooth: { min: 0.1, max: 100, log: true },
  gamma: { min: 0, max: 2, log: false },
  alpha: { min: 1, max: 5, log: false },
  low: { min: -5, max: 5, log: false },
  high: { min: -5, max: 5, log: false },
};
const STEPS = 200;

export interface ParamControl {
  readonly el: HTMLElement;
  readonly name: string;
  value(): unknown;
  set(value: unknown): void;
}

/** A control for parameter `name`; `onInput` fires on every edit. */
export function paramControl(name: string, onInput: () => void): ParamControl | null {
  if (name === "zero_params") return biasSwitch(onInput);
  if (name === "beta") return null; // kept at alpha − 1 by the alpha control
  const range = RANGES[name];
  const el = document.createElement("div");
  el.className = "lrp-param";
  const label = document.createElement("span");
  label.className = "lrp-param-name";
  label.textContent = { epsilon: "ε", gamma: "γ", alpha: "α (β = α − 1)" }[name] ?? name;
  const text = document.createElement("input");
  text.type = "text";
  text.inputMode = "decimal";
  text.className = "lrp-number";
  text.dataset.paramText = name;
  text.setAttribute("aria-label", `${name} value`);
  let current: unknown = null;
  let slider: HTMLInputElement | null = null;

  const toSlider = (v: number): number => {
    if (!range) return 0;
    const t = range.log
      ? (Math.log10(Math.max(v, range.min)) - Math.log10(range.min)) / (Math.log10(range.max) - Math.log10(range.min))
      : (v - range.min) / (range.max - range.min);
    return Math.round(Math.min(1, Math.max(0, t)) * STEPS);
  };
  const fromSlider = (s: number): number => {
    if (!range) return 0;
    const t = s / STEPS;
    const v = range.log
      ? 10 ** (Math.log10(range.min) + t * (Math.log10(range.max) - Math.log10(range.min)))
      : range.min + t * (range.max - range.min);
    return Number(v.toPrecision(3));
  };

  if (range) {
    slider = document.createElement("input");
    slider.type = "range";
    slider.min = "0";
    slider.max = String(STEPS);
    slider.step = "1";
    slider.className = "lrp-slider";
    slider.dataset.param = name;
    slider.setAttribute("aria-label", name);
    slider.addEventListener("input", () => {
      current = fromSlider(Number(slider?.value));
      text.value = String(current);
      onInput();
    });
  } else {
    text.dataset.param = name;
  }
  const commit = (): void => {
    const raw = text.value.trim();
    current = raw === "" ? null : Number(raw);
    if (typeof current === "number" && Number.isNaN(current)) current = raw;
    if (slider && typeof current === "number") slider.value = String(toSlider(current));
    onInput();
  };
  text.addEventListener("change", commit);
  text.addEventListener("keydown", (event) => {
    // Enter commits the typed value (and does not reach the notebook's shortcuts).
    if (event.key !== "Enter") return;
    event.preventDefault();
    event.stopPropagation();
    commit();
  });
  el.append(label, ...(slider ? [slider] : []), text);
  return {
    el,
    name,
    value: () => current,
    set(value) {
      current = value;
      if (document.activeElement !== text) text.value = value === null ? "" : String(value);
      if (slider && typeof value === "number" && document.activeElement !== slider) {
        slider.value = String(toSlider(value));
      }
    },
  };
}

function biasSwitch(onInput: () => void): ParamControl {
  const el = document.createElement("label");
  el.className = "lrp-param";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.dataset.param = "zero_params";
  box.addEventListener("change", onInput);
  const span = document.createElement("span");
  span.textContent = "ignore bias";
  el.append(box, span);
  return {
    el,
    name: "zero_params",
    value: () => (box.checked ? "bias" : null),
    set(value) {
      box.checked = value === "bias";
    },
  };
}
