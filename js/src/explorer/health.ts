/**
 * Health panel (`data-role="health"`): relevance leaving each layer along the network, for the
 * shown sample, as horizontal bars; layers that break conservation or produce non-finite values
 * are highlighted (`data-violation`). Clicking a bar selects that layer. Relevance created or lost
 * outside modules (a residual `+` in `forward` without a canonizer) comes last, not clickable.
 */
import type { HealthEntry } from "./types";

export function createHealth(onSelect: (name: string) => void): {
  el: HTMLElement;
  update(health: HealthEntry[], sample: number): void;
} {
  const el = document.createElement("div");
  el.className = "lrp-panel lrp-health";
  el.dataset.role = "health";
  return {
    el,
    update(health, sample) {
      const values = health.map((entry) => entry.leaving[sample] ?? entry.leaving[0] ?? 0);
      const top = Math.max(1e-12, ...values.map((v) => (Number.isFinite(v) ? Math.abs(v) : 0)));
      const title = document.createElement("div");
      title.className = "lrp-panel-title";
      const broken = health.filter((entry) => entry.violation).length;
      title.textContent = `Relevance per layer${broken ? ` · ${broken} break conservation` : ""}`;
      el.replaceChildren(
        title,
        ...health.map((entry, i) => {
          const row = document.createElement("div");
          row.className = "lrp-health-row";
          row.dataset.healthLayer = entry.name;
          row.dataset.violation = entry.violation;
          const value = values[i] ?? 0;
          const subject = entry.module ? `${entry.name} (${entry.rule})` : "relevance at the input";
          const fix = entry.module ? "" : " by operations outside modules: use a canonizer";
          row.title = `${subject}: ${value.toPrecision(4)}${entry.violation ? ` — ${entry.violation}${fix}` : ""}`;
          const label = document.createElement("span");
          label.textContent = entry.name;
          const bar = document.createElement("span");
          bar.className = "lrp-bar";
          bar.style.width = `${Number.isFinite(value) ? (Math.abs(value) / top) * 100 : 100}%`;
          row.append(label, bar);
          if (entry.module) row.addEventListener("click", () => onSelect(entry.name));
          else row.classList.add("lrp-health-outside");
          return row;
        }),
      );
    },
  };
}
