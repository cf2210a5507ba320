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
 * Quiet after any activity counts too ({@link HeapKeeper.busy}, called after every RPC): a per-pod server that just
 * ran `runc create` and `runc start` holds ~11 MiB of freed memory in the malloc arenas of Deno's blocking threads
 * (27.6 MiB private dirty instead of 16.6 MiB, measured), which nothing returns until `malloc_trim`. So when the server
 * goes quiet and either a process was released or RSS grew `idleGrowthBytes` since the last collection, it collects
 * once. A server polled now and then without growing (a Stats every few seconds) is not collected each time.
 *
 * It needs V8's `--expose-gc` (in `SHIM_V8_FLAGS`); without it `gc` is missing and this does nothing.
 * @module
 */

import { log } from "../log.ts";
import { idleStackRelease, releaseScratchBuffers, trimMalloc } from "../sys/memory.ts";
import { after, type Timer } from "../timer.ts";
import { atTurnEnd } from "../sys/immediate.ts";

/**
 * V8's full collection, present with `--expose-gc`. With `flavor: "last-resort"` V8 collects as for a low-memory
 * notification: several passes, compacting, and it shrinks the new space and releases free pages.
 */
type Gc = (opts?: { type: "major"; execution: "sync"; flavor: "regular" | "last-resort" }) => void;

export interface HeapKeeperOptions {
  /** Collect after this many releases. */
  every?: number;
  /** Collect once when no release happened for this long after the last one. */
  idleMs?: number;
  /** Collect when RSS grew this much over its value right after the last collection (default 6 MiB). */
  growthBytes?: number;
  /** Collect when the server goes quiet and RSS grew this much since the last collection (default 1 MiB). */
  idleGrowthBytes?: number;
  /** Reads the process's RSS in bytes; defaults to `Deno.memoryUsage().rss`. */
  rss?: () => number;
  /** The collector; defaults to V8's `gc` global. */
  gc?: Gc;
  /** Collect once in the first quiet spell after construction (default true; the server's boot leaves garbage). */
  collectAfterBoot?: boolean;
  /**
   * Called before each collection, and what it returns runs after it (so that the garbage of its preparation is
   * collected too); when `gc` is the default, defaults to {@linkcode prepareGiveBack}: glibc's malloc_trim(0), the
   * main thread's stack below where it runs and the scratch buffers' pages (src/sys/memory.ts).
   */
  giveBack?: () => () => void;
  /**
   * Where a collection that a release calls for runs; defaults to the end of the event loop's turn
   * (src/sys/immediate.ts), after the answer of the Delete that released the process is written, so that the
   * collection (2–3 ms) does not delay that answer. Tests pass `(fn) => fn()`.
   */
  defer?: (fn: () => void) => void;
}

/**
 * What gives the kernel back, after a collection, what the process touched but no longer uses (src/sys/memory.ts):
 * malloc's free pages, the shared scratch buffers' pages, and the main thread's stack below where it runs now, read
 * before the collection. Deno's boot leaves ~420 KiB of stack touched that an idle server, a few KiB deep, never uses
 * again (bench/analysis.md, session 11).
 */
export function prepareGiveBack(): () => void {
  const releaseStack = idleStackRelease();
  return () => {
    trimMalloc();
    releaseStack();
    releaseScratchBuffers();
  };
}

/** Counts released processes and runs a full garbage collection at a bounded rate. */
export class HeapKeeper {
  readonly #every: number;
  readonly #idleMs: number;
  readonly #gc: Gc | undefined;
  readonly #giveBack: (() => () => void) | undefined;
  readonly #growth: number;
  readonly #idleGrowth: number;
  readonly #rss: () => number;
  #baseline: number;
  #since = 0;
  /** Something was released (or the server booted) since the last collection. */
  #pending = false;
  /** When the last release or call happened (ms, `performance.now()`). */
  #lastActive = 0;
  #idle: Timer | undefined;
  readonly #defer: (fn: () => void) => void;
  /** A collection called for by a release is waiting for its turn to end. */
  #deferred = false;
  /** Collections run so far (for diagnostics and tests). */
  collections = 0;

  constructor(opts: HeapKeeperOptions = {}) {
    this.#every = opts.every ?? 256;
    this.#idleMs = opts.idleMs ?? 2000;
    this.#gc = opts.gc ?? (globalThis as { gc?: Gc }).gc;
    this.#giveBack = opts.giveBack ?? (opts.gc ? undefined : prepareGiveBack);
    this.#growth = opts.growthBytes ?? 6 * 1024 * 1024;
    this.#idleGrowth = opts.idleGrowthBytes ?? 1024 * 1024;
    this.#rss = opts.rss ?? (() => Deno.memoryUsage().rss);
    this.#defer = opts.defer ?? atTurnEnd;
    this.#baseline = this.#gc ? this.#rss() : 0;
    if (!this.#gc) log.debug("heap keeper: no gc() (V8 --expose-gc missing); memory is left to V8's heuristics");
    // Booting (loading and compiling the modules) leaves garbage too: the first quiet spell collects it.
    if (opts.collectAfterBoot !== false) {
      this.#pending = true;
      this.busy();
    }
  }

  /** Records that a process (and everything kept for it) was released. */
  released(): void {
    if (!this.#gc) return;
    this.#pending = true;
    if (!this.#deferred && (++this.#since >= this.#every || this.#rss() - this.#baseline >= this.#growth)) {
      this.#deferred = true;
      const before = this.collections;
      this.#defer(() => {
        this.#deferred = false;
        if (this.collections === before) this.collect(); // unless the idle collection ran meanwhile
      });
      return;
    }
    this.busy();
  }

  /**
   * Records activity (an RPC answered): once the server has been quiet for `idleMs`, it collects if anything was
   * released or RSS grew since the last collection. One timer, re-armed only when it fires, not per call.
   */
  busy(): void {
    if (!this.#gc) return;
    this.#lastActive = performance.now();
    if (this.#idle === undefined) this.#arm(this.#idleMs);
  }

  #arm(ms: number): void {
    // Unref'd (an idle server must still be able to exit while this is pending), and not a Deno timer: the first of
    // those would load Deno's Node timers module into every server (src/timer.ts).
    this.#idle = after(ms, () => {
      this.#idle = undefined;
      const quiet = performance.now() - this.#lastActive;
      if (quiet < this.#idleMs) return this.#arm(this.#idleMs - quiet);
      if (this.#pending || this.#rss() - this.#baseline >= this.#idleGrowth) this.collect(true);
    });
  }

  /**
   * Runs a full collection now. `reduce` (the quiet-time collection) asks V8 for its memory-reducing collection, which
   * gives back the heap's free pages too: an idle server's heap shrank from 8.8 to 6.2 MiB committed (2.6 MiB less
   * private dirty) for ~8 ms of CPU instead of ~2.5 ms, measured on the loaded server modules.
   */
  collect(reduce = false): void {
    this.#idle?.cancel();
    this.#idle = undefined;
    this.#since = 0;
    this.#pending = false;
    if (!this.#gc) return;
    const giveBack = this.#giveBack?.();
    if (reduce) this.#gc({ type: "major", execution: "sync", flavor: "last-resort" });
    else this.#gc();
    giveBack?.();
    this.#baseline = this.#rss();
    this.collections++;
  }

  /** Cancels a pending idle collection. */
  close(): void {
    this.#idle?.cancel();
    this.#idle = undefined;
  }
}
