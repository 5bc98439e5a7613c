/**
 * Typed access to the widget model: reading traits, writing the ones the front end owns,
 * sending commands, and subscribing to changes (all undone by `dispose()`).
 *
 * Commands are numbered (request numbers) and at most one is in flight: while the kernel works,
 * only the newest pending command is kept, so a stream of slider moves never queues up work.
 * A heatmap is drawn only when it answers the newest request sent (older ones are dropped).
 */
import type { AnyModel } from "@anywidget/types";
import type { ArrayMessage, Command, ExplorerTraits } from "./types";

export class Transport {
  readonly #model: AnyModel<ExplorerTraits>;
  readonly #disposers: Array<() => void> = [];
  #sent = 0;
  #inFlight = 0;
  #pending: Command | null = null;
  /** Number of messages sent to the kernel (commands and trait changes). */
  messages = 0;

  constructor(model: AnyModel<ExplorerTraits>) {
    this.#model = model;
    this.onChange(["answered"], () => this.#flush());
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

  /** Sets a trait the front end owns (`selected`, `target`, `sample`, `focus_layer`). */
  set<K extends "selected" | "target" | "sample" | "focus_layer">(key: K, value: ExplorerTraits[K]): void {
    this.#model.set(key, value);
    this.#model.save_changes();
    this.messages += 1;
  }

  /** Newest request number handed out. */
  get latestRequest(): number {
    return this.#sent;
  }

  /** True while a command is being computed or waits to be sent. */
  get busy(): boolean {
    return this.#pending !== null || this.#inFlight > this.#model.get("answered");
  }

  /** Queues `command`; it replaces any command not sent yet. */
  send(command: Command): void {
    this.#pending = command;
    this.#flush();
  }

  #flush(): void {
    if (this.#pending === null || this.#inFlight > this.#model.get("answered")) return;
    const command = this.#pending;
    this.#pending = null;
    const request = Math.max(this.#sent, this.#model.get("answered")) + 1;
    this.#sent = request;
    this.#inFlight = request;
    this.#model.send({ ...command, request });
    this.messages += 1;
  }

  /** Whether a heatmap answering `request` (0: computed on the kernel's own initiative) is
   * current: not superseded by a command sent or waiting after it. */
  isCurrent(request: number): boolean {
    if (this.#pending !== null) return false;
    return request === 0 ? this.#inFlight <= this.#model.get("answered") : request >= this.#inFlight;
  }

  /** Removes every listener added through this transport. */
  dispose(): void {
    for (const dispose of this.#disposers.splice(0)) dispose();
  }
}

/** The bytes of a binary trait value, whatever the transport made of them. */
export function bytesOf(data: DataView | ArrayBuffer | Uint8Array): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A float32 view of an array message (copied when the bytes are not 4-byte aligned). */
export function float32Of(message: ArrayMessage): Float32Array {
  const bytes = bytesOf(message.data);
  if (bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  return new Float32Array(bytes.slice().buffer);
}
