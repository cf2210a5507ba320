/**
 * Keeps the long-running server's memory flat.
 *
 * V8 collects the old generation only when it outgrows a limit that it raises as the heap grows, so a server that
 * runs thousands of short processes accumulates promoted garbage (RPC messages, process records, promise chains)
 * and its RSS creeps up by a few hundred bytes per exec, for tens of thousands of execs. Measured on Deno 2.9 with
 * even `await Promise.resolve()` in a loop; a full collection every few hundred processes keeps it flat. This module
 * runs that collection: after every `every` released processes, and once more when the server has been quiet for
 * `idleMs` after a release, so an idle server holds no garbage.
 *
 * A count alone does not bound memory when what is released is large: a container lifecycle leaves far more garbage
 * than an exec (a ttrpc connection per task in containerd 1.6, runc's pipes and outputs, the bundle's files), and a
 * node server's RSS rose from ~51 to ~106 MB over 250 lifecycles before the 256th release collected it. So a release
 * also collects when RSS has grown `growthBytes` over what it was right after the last collection; that baseline is
 * re-read after each collection, so memory that a collection cannot free raises it instead of causing a collection
 * per release.
 *
 * It needs V8's `--expose-gc` (in `SHIM_V8_FLAGS`); without it `gc` is missing and this does nothing.
 * @module
 */

import { log } from "../log.ts";
import { libc } from "../sys/libc.ts";

/** V8's full collection, present with `--expose-gc`. */
type Gc = () => void;

export interface HeapKeeperOptions {
  /** Collect after this many releases. */
  every?: number;
  /** Collect once when no release happened for this long after the last one. */
  idleMs?: number;
  /** Collect when RSS grew this much over its value right after the last collection (default 6 MiB). */
  growthBytes?: number;
  /** Reads the process's RSS in bytes; defaults to `Deno.memoryUsage().rss`. */
  rss?: () => number;
  /** The collector; defaults to V8's `gc` global. */
  gc?: Gc;
  /** Run after each collection; defaults to glibc's malloc_trim(0) when `gc` is the default. */
  trim?: () => void;
}

/** Counts released processes and runs a full garbage collection at a bounded rate. */
export class HeapKeeper {
  readonly #every: number;
  readonly #idleMs: number;
  readonly #gc: Gc | undefined;
  readonly #trim: (() => void) | undefined;
  readonly #growth: number;
  readonly #rss: () => number;
  #baseline: number;
  #since = 0;
  #idle: ReturnType<typeof setTimeout> | undefined;
  /** Collections run so far (for diagnostics and tests). */
  collections = 0;

  constructor(opts: HeapKeeperOptions = {}) {
    this.#every = opts.every ?? 256;
    this.#idleMs = opts.idleMs ?? 2000;
    this.#gc = opts.gc ?? (globalThis as { gc?: Gc }).gc;
    this.#trim = opts.trim ?? (opts.gc ? undefined : () => void libc().malloc_trim(0n));
    this.#growth = opts.growthBytes ?? 6 * 1024 * 1024;
    this.#rss = opts.rss ?? (() => Deno.memoryUsage().rss);
    this.#baseline = this.#gc ? this.#rss() : 0;
    if (!this.#gc) log.debug("heap keeper: no gc() (V8 --expose-gc missing); memory is left to V8's heuristics");
  }

  /** Records that a process (and everything kept for it) was released. */
  released(): void {
    if (!this.#gc) return;
    if (++this.#since >= this.#every || this.#rss() - this.#baseline >= this.#growth) {
      this.collect();
      return;
    }
    clearTimeout(this.#idle);
    const t = setTimeout(() => this.collect(), this.#idleMs);
    // An idle server must still be able to exit while this is pending.
    Deno.unrefTimer(t);
    this.#idle = t;
  }

  /** Runs a full collection now. */
  collect(): void {
    clearTimeout(this.#idle);
    this.#idle = undefined;
    this.#since = 0;
    if (!this.#gc) return;
    this.#gc();
    this.#trim?.();
    this.#baseline = this.#rss();
    this.collections++;
  }

  /** Cancels a pending idle collection. */
  close(): void {
    clearTimeout(this.#idle);
    this.#idle = undefined;
  }
}
