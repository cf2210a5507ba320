/**
 * The deadlines of one connection's calls, watched by a single timer armed for the earliest of them, for the server
 * (a handler's deadline) and the client (a call's timeout) alike.
 *
 * containerd's deadlines are seconds long and nearly every call ends long before: a timer per call (a shared buffer and
 * an `Atomics.waitAsync`, src/timer.ts) cost 5–10 µs of each call's answer, warm, and arming or cancelling one posts a
 * task to V8's platform. Here a call that ends in time costs a map entry, and the one timer is re-armed only when an
 * earlier deadline arrives or when it fires (at most once per deadline length while calls keep coming). The server's
 * handlers and the client's calls share it; the client had a timer per call before (the event publisher's Forward,
 * 5 s each), and dropping it changed no RPC row measurably.
 *
 * @example
 * ```ts
 * import { Deadlines } from "./deadlines.ts";
 * const deadlines = new Deadlines<number>((id) => console.log(`call ${id} timed out`));
 * deadlines.add(1, 5000);
 * deadlines.delete(1); // answered in time
 * deadlines.clear(); // the connection closed
 * ```
 * @module
 */
import { after, type Timer } from "../timer.ts";

/** Longer deadlines get no timer (they outlive any real call, and `setTimeout`'s range). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A set of keys, each with a deadline; `onExpire` runs for each key whose deadline passed (it is removed first). */
export class Deadlines<K> {
  readonly #due = new Map<K, number>();
  readonly #onExpire: (key: K) => void;
  #timer: Timer | undefined;
  /** When the timer is due (`performance.now()` ms); Infinity when none is armed. */
  #armedFor = Infinity;

  constructor(onExpire: (key: K) => void) {
    this.#onExpire = onExpire;
  }

  /** Number of keys watched. */
  get size(): number {
    return this.#due.size;
  }

  /** Whether the timer is armed (for tests and diagnostics). */
  get armed(): boolean {
    return this.#timer !== undefined;
  }

  /**
   * Watches `key`, due `ms` from now (replacing an earlier deadline of the same key). Returns false, watching
   * nothing, when `ms` is beyond {@linkcode MAX_TIMER_MS}.
   */
  add(key: K, ms: number): boolean {
    if (!(ms <= MAX_TIMER_MS)) return false;
    const at = performance.now() + ms;
    this.#due.set(key, at);
    if (at < this.#armedFor) this.#arm(at);
    return true;
  }

  /** Stops watching `key` (its call ended). The timer stays armed: when it fires it finds nothing due. */
  delete(key: K): void {
    this.#due.delete(key);
  }

  /** Stops watching everything and disarms the timer. */
  clear(): void {
    this.#due.clear();
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  #arm(at: number): void {
    this.#timer?.cancel();
    this.#armedFor = at;
    // Unref'd (a connection keeps the process alive), and not a Deno timer: src/timer.ts.
    this.#timer = after(Math.max(0, Math.ceil(at - performance.now())), () => this.#fire());
  }

  /** Expires every key whose deadline passed, then re-arms for the earliest left. */
  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = performance.now();
    for (const [key, at] of [...this.#due]) {
      // An earlier callback may have removed it, or cleared everything.
      if (at > now || this.#due.get(key) !== at) continue;
      this.#due.delete(key);
      this.#onExpire(key);
    }
    let next = Infinity;
    for (const at of this.#due.values()) if (at < next) next = at;
    // A callback may have added a deadline, and armed for it.
    if (next < this.#armedFor) this.#arm(next);
  }
}
