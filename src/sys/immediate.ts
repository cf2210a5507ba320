/**
 * A callback at the end of the event loop's current turn, after the completions the turn delivered and their
 * microtasks have run: Node's `setImmediate` "check" phase, which Deno 2.9's core runs itself
 * (`Deno[Deno.internal].core.queueImmediate`), used here without booting Node compatibility.
 *
 * Why not a public API: `setTimeout(fn, 0)` loads Deno's Node timers module on first use (20–36 ms, src/timer.ts)
 * and fires from the timer wheel, at 1 ms granularity; a `MessageChannel` message is an op whose completion can be
 * delivered in the same batch as, and before, other ops' completions, so code that blocks in it (the poller's linger,
 * src/sys/poller.ts) could hold back a completion already received. An immediate runs after the whole batch.
 *
 * The immediate is ref'd (the process stays alive until it has run), as `setImmediate` is. Where the runtime lacks
 * the internals, {@linkcode immediateQueue} returns null and callers keep another way.
 *
 * {@linkcode turnEnd} orders two kinds of end-of-turn work: work that should follow this turn's answers without
 * delaying them (`soon`: a ttrpc connection's next read, the TaskExecAdded event's Forward), and a wait that blocks the
 * JS thread (`last`: the poller's linger), which must not start while `soon` work, or the microtasks it left, is still
 * to run. The core runs the immediates queued before its pass in order, with the microtasks drained between them, and
 * those queued during the pass in the next one.
 *
 * @example
 * ```ts
 * import { immediateQueue, turnEnd } from "./immediate.ts";
 * const queue = immediateQueue();
 * queue?.(() => console.log("after this turn's completions"));
 * turnEnd()?.last(() => console.log("third"));
 * turnEnd()?.soon(() => console.log("second"));
 * ```
 * @module
 */

/** The part of Deno's core used here (the names of its `setImmediate` machinery in Deno 2.9). */
interface ImmediateCore {
  queueImmediate(item: ImmediateItem): void;
  immediateRefCount(increase: boolean): void;
  kRefed: symbol;
}

/** The fields the core's immediate list and `runImmediates` read and write (Node's `Immediate` shape). */
interface ImmediateItem {
  _onImmediate: (() => void) | null;
  _argv: undefined;
  _destroyed: boolean;
  _idleNext: ImmediateItem | null;
  _idlePrev: ImmediateItem | null;
  asyncId: number;
  triggerAsyncId: number;
  [key: symbol]: unknown;
}

let queue: ((fn: () => void) => void) | null | undefined;

function findCore(): ImmediateCore | null {
  const internal = (Deno as unknown as { internal?: symbol }).internal;
  if (internal === undefined) return null;
  const core = (Deno as unknown as Record<symbol, { core?: Partial<ImmediateCore> } | undefined>)[internal]?.core;
  if (
    typeof core?.queueImmediate !== "function" || typeof core.immediateRefCount !== "function" ||
    typeof core.kRefed !== "symbol"
  ) return null;
  return core as ImmediateCore;
}

/**
 * A function that runs `fn` once at the end of the current event-loop turn, or null when this runtime offers no
 * such hook. `fn` must not throw (an exception would be reported as uncaught, as from `setImmediate`).
 */
export function immediateQueue(): ((fn: () => void) => void) | null {
  if (queue !== undefined) return queue;
  const core = findCore();
  queue = core && ((fn) => {
    const item: ImmediateItem = {
      _onImmediate: fn,
      _argv: undefined,
      _destroyed: false,
      _idleNext: null,
      _idlePrev: null,
      asyncId: 0,
      triggerAsyncId: 0,
      [core.kRefed]: true,
    };
    // runImmediates() takes the reference back when it runs the item (kRefed set).
    core.immediateRefCount(true);
    core.queueImmediate(item);
  });
  return queue;
}

/** End-of-turn work in two steps ({@linkcode turnEnd}). Callbacks must not throw; one that does is reported. */
export interface TurnEnd {
  /** Runs `fn` at the end of this turn (or the next, when queued by a `last` callback), before any `last` callback. */
  soon(fn: () => void): void;
  /**
   * Runs `fn` at the end of this turn after every `soon` callback queued so far and the microtasks they left; a
   * `soon` callback queued later, before `fn` ran, makes `fn` wait one more turn and run after it.
   */
  last(fn: () => void): void;
}

let ends: TurnEnd | null | undefined;

function runAll(fns: (() => void)[]): void {
  for (const fn of fns) {
    try {
      fn();
    } catch (e) {
      reportError(e);
    }
  }
}

/** The process's end-of-turn queue, or null when this runtime has no immediates ({@linkcode immediateQueue}). */
export function turnEnd(): TurnEnd | null {
  if (ends !== undefined) return ends;
  const queue = immediateQueue();
  if (!queue) return ends = null;
  let soon: (() => void)[] = [];
  let last: (() => void)[] = [];
  // What is queued with the core for its next pass: the `soon` step (always followed by the `last` step) and the
  // `last` step.
  let soonQueued = false;
  let lastQueued = false;
  const runSoon = () => {
    soonQueued = false;
    const batch = soon;
    soon = [];
    runAll(batch);
  };
  const runLast = () => {
    lastQueued = false;
    if (soon.length > 0) {
      // Queued after this pass was laid out: it runs first, in the next pass, and this step after it.
      schedule(true);
      return;
    }
    const batch = last;
    last = [];
    runAll(batch);
  };
  const schedule = (withSoon: boolean) => {
    if (withSoon && !soonQueued && !lastQueued) {
      soonQueued = lastQueued = true;
      queue(runSoon);
      queue(runLast);
    } else if (!lastQueued) {
      lastQueued = true;
      queue(runLast);
    }
    // Otherwise a `soon` arriving behind a queued `last` step is found by runLast, which defers itself.
  };
  ends = {
    soon: (fn) => {
      soon.push(fn);
      schedule(true);
    },
    last: (fn) => {
      last.push(fn);
      schedule(false);
    },
  };
  return ends;
}

/**
 * Resolves at the end of this turn ({@linkcode TurnEnd.soon}), after the microtasks queued before it; where the runtime
 * has no immediates, at once (as `await` of a resolved promise).
 */
export function turnEnded(): Promise<void> {
  return new Promise((resolve) => atTurnEnd(resolve));
}

/** Runs `fn` at the end of this turn ({@linkcode TurnEnd.soon}); where the runtime has no immediates, at once. */
export function atTurnEnd(fn: () => void): void {
  const ends = turnEnd();
  if (ends) ends.soon(fn);
  else fn();
}
