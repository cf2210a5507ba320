/**
 * A backstop for lost completions of `nonblocking: true` FFI calls: while such a call is pending, the event loop is
 * woken now and then by a timer, so that a completion Deno failed to signal is still picked up.
 *
 * Why: with Deno 2.9.6, under load, the poller's `epoll_wait` returned on its blocking-pool thread (the kernel had
 * consumed the one-shot registrations of the ready fds) while the JS promise of the call stayed pending for seconds,
 * the main thread asleep in the runtime's own epoll with nothing to wake it. The first unrelated event (a timer)
 * delivered it. Seen in `tests/ttrpc_fuzz_test.ts` run three at once beside two CPU hogs: 3 of 3 runs stalled,
 * every time with answers due, the poller's call in flight for 0.5–1.8 s, its eventfd count above zero and data
 * waiting in the sockets; with a 20 ms timer running beside each pending call, 3 of 3 passed (bench/analysis.md).
 * The wake-up itself was not reproduced in a small program, so this cannot be a test; the backstop is cheap enough
 * to keep for every pending call.
 *
 * The timer is an `Atomics.waitAsync` timeout (it keeps nothing alive and, unlike `setTimeout`, does not load
 * Deno's Node timers module). It starts at {@linkcode NUDGE_MIN_MS} whenever a new call is watched and doubles up to
 * {@linkcode NUDGE_MAX_MS} while calls stay pending, so an idle process (a server waiting for its next request)
 * wakes a few times a second, and a busy one, where the loss was seen, every few ms.
 *
 * @example
 * ```ts
 * import { libc } from "./libc.ts";
 * import { watchCompletion } from "./nudge.ts";
 * declare const epfd: number, events: Uint8Array;
 * const n = await watchCompletion(libc().epoll_wait_nb(epfd, events, 64, -1));
 * ```
 * @module
 */

/** First interval after a call starts to be watched. */
export const NUDGE_MIN_MS = 4;
/** Longest interval while calls stay pending (an idle process wakes this often). */
export const NUDGE_MAX_MS = 250;

const cell = new Int32Array(new SharedArrayBuffer(4));
let pending = 0;
let armed = false;
let interval = NUDGE_MIN_MS;
let ticks = 0;

/** Returns `call` unchanged, after arranging that the event loop keeps being woken until it settles. */
export function watchCompletion<T>(call: Promise<T>): Promise<T> {
  pending++;
  interval = NUDGE_MIN_MS;
  const done = () => {
    pending--;
  };
  call.then(done, done);
  if (!armed) arm();
  return call;
}

/** Wake-ups so far (for tests and diagnostics). */
export function nudgeTicks(): number {
  return ticks;
}

/** Calls being watched now (for tests and diagnostics). */
export function watchedCalls(): number {
  return pending;
}

function arm(): void {
  armed = true;
  const w = Atomics.waitAsync(cell, 0, 0, interval);
  (w.async ? w.value : Promise.resolve(w.value)).then(tick);
}

function tick(): void {
  armed = false;
  if (pending === 0) return;
  ticks++;
  // Waking is the whole point: returning to the event loop lets it poll the pending op once more.
  interval = Math.min(interval * 2, NUDGE_MAX_MS);
  arm();
}
