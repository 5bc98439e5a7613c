/**
 * The page's link to the kernel: typed access to a widget model, reading traits, writing the
 * ones the front end owns, sending commands through a request queue, and subscribing to changes
 * (all undone by `dispose()`). Shared by the Explorer and Compare entries: `T` is the widget's
 * traits, `C` its commands, `Owned` the traits the page may write.
 *
 * Commands are numbered (request numbers) and at most one is in flight: while the kernel works,
 * only the newest pending command of each coalescing key is kept (one key unless the caller
 * gives others), so a stream of slider moves never queues up work. A heatmap is drawn only when
 * it answers the newest request sent (older ones are dropped).
 */
import type { AnyModel } from "@anywidget/types";

/** What every widget using a `Kernel` syncs: the last request the kernel handled. */
// biome-ignore lint/suspicious/noExplicitAny: anywidget's own model constraint (ObjectHash); the traits are interfaces, which have no index signature and so do not fit Record<string, unknown>.
export type KernelTraits = Record<string, any> & { answered: number };

export class Kernel<T extends KernelTraits, C extends object, Owned extends keyof T = never> {
  readonly #model: AnyModel<T>;
  readonly #disposers: Array<() => void> = [];
  #sent = 0;
  #inFlight = 0;
  /** Commands not sent yet, oldest first, the newest one per coalescing key. */
  readonly #pending = new Map<string, C>();
  /** Coalescing key of the command being computed. */
  #inFlightKey = "";
  /** Number of messages sent to the kernel (commands and trait changes). */
  messages = 0;

  constructor(model: AnyModel<T>) {
    this.#model = model;
    this.onChange(["answered"], () => this.#flush());
  }

  /** Current value of a synced trait. */
  get<K extends keyof T>(key: K): T[K] {
    return this.#model.get(key);
  }

  /** Calls `callback` whenever one of `keys` changes, until `dispose()`. */
  onChange(keys: Array<keyof T & string>, callback: () => void): void {
    for (const key of keys) {
      const event = `change:${key}`;
      this.#model.on(event, callback);
      this.#disposers.push(() => this.#model.off(event, callback));
    }
  }

  /** Sets a trait the front end owns; counted in `messages` unless `count` is false (display
   * state such as a colormap, which asks the kernel for no computation). */
  set<K extends Owned>(key: K, value: T[K], count = true): void {
    this.#model.set(key, value);
    this.#model.save_changes();
    if (count) this.messages += 1;
  }

  /** Newest request number handed out. */
  get latestRequest(): number {
    return this.#sent;
  }

  /** True while a command is being computed or waits to be sent. */
  get busy(): boolean {
    return this.#pending.size > 0 || this.#inFlight > this.#model.get("answered");
  }

  /** Whether a command whose coalescing key starts with `prefix` waits to be sent. */
  hasPending(prefix: string): boolean {
    for (const key of this.#pending.keys()) if (key.startsWith(prefix)) return true;
    return false;
  }

  /** Whether a command whose coalescing key starts with `prefix` waits or is being computed:
   * trait values the kernel sends meanwhile are older than what the user has set. */
  isEditing(prefix: string): boolean {
    const computing = this.#inFlight > this.#model.get("answered") && this.#inFlightKey.startsWith(prefix);
    return computing || this.hasPending(prefix);
  }

  /** Queues `command`; it replaces the command with the same `key` not sent yet. */
  send(command: C, key = ""): void {
    this.#pending.delete(key);
    this.#pending.set(key, command);
    this.#flush();
  }

  /** Sends `message` at once, without a request number and ahead of any queue (e.g. a cancel
   * that must reach the kernel while a long command runs). */
  sendNow(message: object): void {
    this.#model.send(message);
    this.messages += 1;
  }

  #flush(): void {
    if (this.#pending.size === 0 || this.#inFlight > this.#model.get("answered")) return;
    const [key, command] = this.#pending.entries().next().value as [string, C];
    this.#pending.delete(key);
    this.#inFlightKey = key;
    const request = Math.max(this.#sent, this.#model.get("answered")) + 1;
    this.#sent = request;
    this.#inFlight = request;
    this.#model.send({ ...command, request });
    this.messages += 1;
  }

  /** Whether a heatmap answering `request` (0: computed on the kernel's own initiative) is
   * current: not superseded by a command sent or waiting after it. */
  isCurrent(request: number): boolean {
    if (this.#pending.size > 0) return false;
    return request === 0 ? this.#inFlight <= this.#model.get("answered") : request >= this.#inFlight;
  }

  /** Removes every listener added through this link. */
  dispose(): void {
    for (const dispose of this.#disposers.splice(0)) dispose();
  }
}
