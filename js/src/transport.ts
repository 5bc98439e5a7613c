/**
 * Typed access to the widget model: reading traits, writing the ones the front end owns, and
 * subscribing to changes. Every subscription is undone by `dispose()` (called when the view is
 * removed), so a re-rendered widget never leaves listeners behind.
 */
import type { AnyModel } from "@anywidget/types";
import type { ExplorerTraits } from "./types";

export class Transport {
  readonly #model: AnyModel<ExplorerTraits>;
  readonly #disposers: Array<() => void> = [];

  constructor(model: AnyModel<ExplorerTraits>) {
    this.#model = model;
  }

  /** Current value of a synced trait. */
  get<K extends keyof ExplorerTraits>(key: K): ExplorerTraits[K] {
    return this.#model.get(key);
  }

  /** Calls `callback` whenever one of `keys` changes, until `dispose()`. */
  onChange(keys: Array<keyof ExplorerTraits>, callback: () => void): void {
    for (const key of keys) {
      const event = `change:${key}`;
      this.#model.on(event, callback);
      this.#disposers.push(() => this.#model.off(event, callback));
    }
  }

  /** Sends the selection to the kernel (the `selected` trait). */
  setSelected(names: readonly string[]): void {
    this.#model.set("selected", [...names]);
    this.#model.save_changes();
  }

  /** Removes every listener added through this transport. */
  dispose(): void {
    for (const dispose of this.#disposers.splice(0)) dispose();
  }
}
