/**
 * Status line. Testing contract: `data-role="status"`, whose text starts with the kernel's status
 * (`ready`, `computing` or `error`), followed by the error message or a short summary.
 */
import type { ExplorerStatus } from "../types";

export interface StatusState {
  status: ExplorerStatus;
  error: string;
  computeMs: number;
  layerCount: number;
  selectedCount: number;
}

export interface StatusView {
  readonly el: HTMLElement;
  update(state: StatusState): void;
}

export function createStatus(): StatusView {
  const el = document.createElement("div");
  el.className = "lrp-status";
  el.dataset.role = "status";
  el.setAttribute("role", "status");
  el.setAttribute("aria-live", "polite");

  return {
    el,
    update({ status, error, computeMs, layerCount, selectedCount }) {
      el.dataset.status = status;
      const parts: string[] = [status];
      if (status === "error" && error) parts.push(error);
      if (status === "ready") parts.push(`last compute ${computeMs.toFixed(0)} ms`);
      parts.push(`${layerCount} layer${layerCount === 1 ? "" : "s"}`);
      if (selectedCount > 0) parts.push(`${selectedCount} selected`);
      el.textContent = parts.join(" · ");
    },
  };
}
