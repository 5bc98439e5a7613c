/**
 * Status line of a widget. Testing contract: `data-role="status"` with `data-status` = the
 * kernel's status, and a text that starts with that status (`ready`, `computing` or `error`),
 * followed by the widget's details (an error message, a short summary), joined by ` · `.
 * Without a kernel (see `./connection.ts`) the text starts with `no kernel connected: view only`
 * instead, and `data-connection` is `none` (`kernel` otherwise).
 */
import { VIEW_ONLY_TEXT } from "./connection";
import type { WidgetStatus } from "./types";

export interface StatusView {
  readonly el: HTMLElement;
  /** Shows `status` followed by `details` (empty ones left out). */
  update(status: WidgetStatus, details: string[]): void;
  /** Says whether a kernel answers (`viewOnly` false) or not. */
  setViewOnly(viewOnly: boolean): void;
}

export function createStatus(): StatusView {
  const el = document.createElement("div");
  el.className = "lrp-status";
  el.dataset.role = "status";
  el.dataset.connection = "kernel";
  el.setAttribute("role", "status");
  el.setAttribute("aria-live", "polite");
  let shown: { status: WidgetStatus; details: string[] } = { status: "ready", details: [] };
  let viewOnly = false;

  const show = (): void => {
    el.dataset.status = shown.status;
    el.dataset.connection = viewOnly ? "none" : "kernel";
    const head = viewOnly ? VIEW_ONLY_TEXT : shown.status;
    el.textContent = [head, ...shown.details.filter((detail) => detail !== "")].join(" · ");
  };

  return {
    el,
    update(status, details) {
      shown = { status, details };
      show();
    },
    setViewOnly(next) {
      viewOnly = next;
      show();
    },
  };
}

/** `count` followed by `noun`, plural unless the count is 1: `1 layer`, `3 layers`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
