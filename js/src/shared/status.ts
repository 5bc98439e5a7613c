/**
 * Status line of a widget. Testing contract: `data-role="status"` with `data-status` = the
 * kernel's status, and a text that starts with that status (`ready`, `computing` or `error`),
 * followed by the widget's details (an error message, a short summary), joined by ` · `.
 */
import type { WidgetStatus } from "./types";

export interface StatusView {
  readonly el: HTMLElement;
  /** Shows `status` followed by `details` (empty ones left out). */
  update(status: WidgetStatus, details: string[]): void;
}

export function createStatus(): StatusView {
  const el = document.createElement("div");
  el.className = "lrp-status";
  el.dataset.role = "status";
  el.setAttribute("role", "status");
  el.setAttribute("aria-live", "polite");

  return {
    el,
    update(status, details) {
      el.dataset.status = status;
      el.textContent = [status, ...details.filter((detail) => detail !== "")].join(" · ");
    },
  };
}

/** `count` followed by `noun`, plural unless the count is 1: `1 layer`, `3 layers`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
