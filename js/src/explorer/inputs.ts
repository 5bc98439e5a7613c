/**
 * Inputs and targets: a thumbnail per sample (`data-role="thumbnail"`, click to show it) and the
 * target picker (`data-role="target-select"`: predicted class, the sample's top classes with
 * their probabilities, or any class).
 */
import { bytesOf } from "../shared/arrays";
import { labelled, select, setOptions } from "../shared/controls";
import type { ArrayMessage } from "../shared/types";

export interface InputsOptions {
  onSample: (sample: number) => void;
  onTarget: (target: number | null) => void;
}

export interface InputsView {
  readonly el: HTMLElement;
  update(state: {
    images: ArrayMessage;
    sample: number;
    target: number | null;
    predictions: Array<Array<[number, number]>>;
    classNames: string[];
  }): void;
}

export function createInputs(options: InputsOptions): InputsView {
  const el = document.createElement("div");
  el.className = "lrp-inputs";
  const strip = document.createElement("div");
  strip.className = "lrp-thumbs";
  const target = select("target-select", []);
  target.addEventListener("change", () => options.onTarget(target.value === "predicted" ? null : Number(target.value)));
  el.append(strip, labelled("Target", target));
  let drawn: ArrayMessage | null = null;

  const drawThumbs = (images: ArrayMessage): void => {
    const [n = 0, h = 0, w = 0] = images.shape;
    const bytes = bytesOf(images.data);
    strip.replaceChildren();
    for (let s = 0; s < n; s++) {
      const canvas = document.createElement("canvas");
      canvas.className = "lrp-thumb";
      canvas.dataset.role = "thumbnail";
      canvas.dataset.sample = String(s);
      canvas.width = w;
      canvas.height = h;
      const context = canvas.getContext("2d");
      if (context && w > 0 && h > 0) {
        const pixels = context.createImageData(w, h);
        for (let i = 0; i < w * h; i++) {
          for (let ch = 0; ch < 3; ch++) pixels.data[i * 4 + ch] = bytes[(s * w * h + i) * 3 + ch] ?? 0;
          pixels.data[i * 4 + 3] = 255;
        }
        context.putImageData(pixels, 0, 0);
      }
      canvas.addEventListener("click", () => options.onSample(s));
      strip.append(canvas);
    }
  };

  return {
    el,
    update({ images, sample, target: current, predictions, classNames }) {
      if (images !== drawn) {
        drawThumbs(images);
        drawn = images;
      }
      strip.querySelectorAll<HTMLElement>(".lrp-thumb").forEach((thumb, i) => {
        thumb.dataset.active = String(i === sample);
      });
      const top = predictions[sample] ?? [];
      const name = (c: number): string => classNames[c] ?? String(c);
      setOptions(target, [
        ["predicted", `predicted: ${top[0] ? name(top[0][0]) : "?"}`],
        ...top.map(([c, p]): [string, string] => [String(c), `${name(c)} (p=${p.toFixed(2)})`]),
        ...classNames
          .map((_, c): [string, string] => [String(c), name(c)])
          .filter(([c]) => !top.some(([t]) => String(t) === c)),
      ]);
      target.value = current === null ? "predicted" : String(current);
    },
  };
}
