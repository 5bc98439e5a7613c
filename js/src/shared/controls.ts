/** Small form controls shared by the panels: labelled selects, sliders with a number box. */

export function labelled(text: string, control: HTMLElement): HTMLLabelElement {
  const label = document.createElement("label");
  label.className = "lrp-field";
  const span = document.createElement("span");
  span.textContent = text;
  label.append(span, control);
  return label;
}

export function select(role: string, options: Array<[string, string]>): HTMLSelectElement {
  const el = document.createElement("select");
  el.className = "lrp-select";
  el.dataset.role = role;
  setOptions(el, options);
  return el;
}

export function setOptions(el: HTMLSelectElement, options: Array<[string, string]>): void {
  const value = el.value;
  el.replaceChildren(
    ...options.map(([key, text]) => {
      const option = document.createElement("option");
      option.value = key;
      option.textContent = text;
      return option;
    }),
  );
  if (options.some(([key]) => key === value)) el.value = value;
}

export function button(role: string, text: string, onClick: () => void): HTMLButtonElement {
  const el = document.createElement("button");
  el.type = "button";
  el.className = "lrp-button";
  el.dataset.role = role;
  el.textContent = text;
  el.addEventListener("click", onClick);
  return el;
}

/** The opacity slider of a map drawn over its input (0 to 1, `data-role="opacity"`). */
export function opacitySlider(value: number): HTMLInputElement {
  const el = document.createElement("input");
  el.type = "range";
  el.min = "0";
  el.max = "1";
  el.step = "0.05";
  el.value = String(value);
  el.dataset.role = "opacity";
  return el;
}
