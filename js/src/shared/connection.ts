/**
 * Whether a kernel answers the page, and what the page does without one ("view only").
 *
 * The page pings the kernel when it renders and starts a clock whenever it sends a command;
 * anything the kernel sends (a trait change, a custom message such as the ping's answer) stops
 * the clock. If the clock runs out (`NO_ANSWER_MS`), or the page knows it has no kernel (a
 * standalone file from `save_html`), the page is view only until the kernel is heard again: the
 * status line says so and the controls that need the kernel are disabled; controls that only
 * redraw (colormap, opacity, scale, sample) keep working.
 */

/** How long the page waits for any answer from the kernel before it says there is none. */
export const NO_ANSWER_MS = 5000;

/** What the status line says while the page is view only. */
export const VIEW_ONLY_TEXT = "no kernel connected: view only";

/** Disables the form controls matching `selector` (or inside elements matching it) below
 * `root` while view only, including controls added or re-enabled later, and re-enables exactly
 * those it disabled when the kernel is back. */
export interface ControlGuard {
  set(viewOnly: boolean): void;
  dispose(): void;
}

const FORM_CONTROLS = "button, select, input, textarea";

export function guardKernelControls(root: HTMLElement, selector: string): ControlGuard {
  const disabled = new Set<HTMLButtonElement | HTMLSelectElement | HTMLInputElement | HTMLTextAreaElement>();
  let viewOnly = false;
  const disableAll = (): void => {
    for (const match of root.querySelectorAll<HTMLElement>(selector)) {
      const controls = match.matches(FORM_CONTROLS) ? [match] : [...match.querySelectorAll<HTMLElement>(FORM_CONTROLS)];
      for (const control of controls as Array<HTMLInputElement>) {
        if (control.disabled) continue;
        control.disabled = true;
        control.dataset.kernelControl = "disabled";
        disabled.add(control);
      }
    }
  };
  const observer = new MutationObserver(() => {
    if (viewOnly) disableAll();
  });
  return {
    set(next) {
      if (next === viewOnly) return;
      viewOnly = next;
      root.dataset.viewOnly = String(next);
      if (next) {
        disableAll();
        // New controls, and controls the widget re-enables itself, are disabled again.
        observer.observe(root, { childList: true, subtree: true, attributes: true, attributeFilter: ["disabled"] });
        return;
      }
      observer.disconnect();
      for (const control of disabled) {
        control.disabled = false;
        delete control.dataset.kernelControl;
      }
      disabled.clear();
    },
    dispose() {
      observer.disconnect();
    },
  };
}
