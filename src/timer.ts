/**
 * Unref'd timers that do not load Deno's Node timers module.
 *
 * A process's first `setTimeout`/`setInterval` makes Deno 2.9 load its Node timers module (`node:timers` →
 * `internal/timers.mjs` → `async_hooks`, `errors`, `inspect`): 20–36 ms of main-thread time measured in the shim's
 * server, which paid it on its first RPC. These timers are `Atomics.waitAsync` timeouts instead: V8 schedules them
 * itself, and a pending one keeps nothing alive, exactly like an unref'd Deno timer (`Deno.unrefTimer`).
 *
 * So use them where something else keeps the process alive while the timer matters (the server's listener, the
 * connection a deadline guards, a child being waited for) or where the original timer was unref'd. A sleep that is the
 * only thing a process waits for (a retry in a short-lived command) still needs `setTimeout`: with these, the process
 * would end with the sleep pending.
 *
 * A callback that throws is an unhandled rejection (the process fails, as with an uncaught `setTimeout` callback).
 *
 * @example
 * ```ts
 * import { after, every, sleep } from "./timer.ts";
 * const t = after(5000, () => console.log("unused for 5 s"));
 * t.cancel();
 * const poll = every(10_000, () => {});
 * await sleep(10);
 * poll.cancel();
 * ```
 * @module
 */

/** A pending timer; {@linkcode Timer.cancel} is idempotent and safe from inside the callback. */
export interface Timer {
  /** Stops the timer: a pending callback does not run (and an `every` runs no more). */
  cancel(): void;
  /** False once cancelled or (for {@linkcode after}) once the callback ran. */
  readonly active: boolean;
}

/** A delay as `setTimeout` reads it: NaN, negatives and -0 are 0, +Infinity never fires. */
function delayOf(ms: number): number {
  return ms > 0 ? ms : 0;
}

class WaitTimer implements Timer {
  // One cell per timer: cancel() stores 1 and notifies, which settles the pending wait at once, so a cancelled timer
  // leaves no waiter behind in V8 until its timeout.
  readonly #cell = new Int32Array(new SharedArrayBuffer(4));
  #active = true;

  constructor(ms: number, fn: () => void, repeat: boolean) {
    const delay = delayOf(ms);
    const arm = () => {
      const wait = Atomics.waitAsync(this.#cell, 0, 0, delay);
      // Synchronous results: "not-equal" (cancelled meanwhile) or "timed-out" for a zero delay.
      const settled = wait.async ? wait.value : Promise.resolve(wait.value);
      settled.then((how) => {
        if (!this.#active || how !== "timed-out") return;
        if (!repeat) this.#active = false;
        else arm(); // re-armed before the callback, which may cancel it
        fn();
      });
    };
    arm();
  }

  get active(): boolean {
    return this.#active;
  }

  cancel(): void {
    if (!this.#active) return;
    this.#active = false;
    Atomics.store(this.#cell, 0, 1);
    Atomics.notify(this.#cell, 0);
  }
}

/** Runs `fn` once, `ms` milliseconds from now (unref'd). */
export function after(ms: number, fn: () => void): Timer {
  return new WaitTimer(ms, fn, false);
}

/**
 * Resolves true once `p` settles (fulfilled or rejected), or false after `ms` milliseconds, whichever comes first;
 * the timer is unref'd and cancelled when `p` wins.
 */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: Timer | undefined;
  const late = new Promise<boolean>((r) => timer = after(ms, () => r(false)));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    timer?.cancel();
  }
}

/** Runs `fn` every `ms` milliseconds (at least 1 ms apart), until cancelled (unref'd). */
export function every(ms: number, fn: () => void): Timer {
  return new WaitTimer(Math.max(1, delayOf(ms)), fn, true);
}

/**
 * Resolves after `ms` milliseconds (unref'd: see the module's note). With a signal, rejects with its reason when it
 * aborts first.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const onAbort = () => {
    timer.cancel();
    reject(signal!.reason);
  };
  const timer = after(ms, () => {
    signal?.removeEventListener("abort", onAbort);
    resolve();
  });
  signal?.addEventListener("abort", onAbort, { once: true });
  return promise;
}
