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
 * @example
 * ```ts
 * import { immediateQueue } from "./immediate.ts";
 * const queue = immediateQueue();
 * queue?.(() => console.log("after this turn's completions"));
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
