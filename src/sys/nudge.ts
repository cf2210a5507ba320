/**
 * A backstop for lost completions of `nonblocking: true` FFI calls: while such a call is pending, the event loop is
 * woken now and then by a signal, so that a completion Deno failed to signal is still picked up.
 *
 * Why: with Deno 2.9.6, under heavy load, the poller's `epoll_wait` returned on its blocking-pool thread (the kernel
 * had consumed the one-shot registrations of the ready fds, and the poller's eventfd count stayed above zero) while
 * the JS promise of the call stayed pending for 0.05–1.8 s at a time, the main thread asleep in the runtime's own
 * epoll; the next unrelated event (a timer) delivered it. Seen in `tests/ttrpc_fuzz_test.ts` run three at once beside
 * two CPU hogs and the other work of the machine: the server then moved only when something else woke the process
 * (76 `epoll_wait` calls in 5 s) and the test's 5 s no-answer watchdog fired, in 9 of 9 runs in one period, in none
 * of 9 in another (the load on the shared machine differed). A timer beside the pending call made those runs pass.
 * `Atomics.waitAsync` timeouts, tried first as that timer, were themselves delivered late in a stalled run (3 wake-ups
 * in 5 s from a 16–32 ms chain); signals were not (48 in 5 s): Deno receives them on its reactor, as it does socket
 * readiness for `Deno.Conn`. The cause inside Deno was not found and not reproduced in a small program, so this is a
 * backstop, and only its mechanism is unit-tested (bench/analysis.md has the runs).
 *
 * The timer is a POSIX timer (`timer_create`, CLOCK_MONOTONIC) raising SIGURG: a signal whose default action is to
 * be ignored, so an alarm that outlives Deno's handler (a runtime torn down, as between test files, where SIGALRM
 * killed the process) does nothing, and one nobody else uses (only a socket with F_SETOWN and out-of-band data
 * raises it). The kernel gives a process-directed signal to the main thread, asleep in the runtime's epoll, so the
 * blocking-pool thread's `epoll_wait` is rarely interrupted (an EINTR there is a spurious wake-up the poller
 * retries). Signal listeners keep nothing alive; POSIX timers are not inherited by children. The interval starts at
 * {@linkcode NUDGE_MIN_MS} when a call is watched after a quiet spell and doubles up to {@linkcode NUDGE_MAX_MS} while
 * calls stay pending; the timer stops at the first tick with nothing pending. A wake-up costs ~1.7 ms of CPU and ~3.5
 * context switches on this VM (30 s of an idle process at 1 s: 50 ms of CPU, 104 switches; a benchmark run with it at
 * 1 s put 20 idle per-pod servers at 2.7× the Go shims' idle CPU), so the idle end of the back-off is 30 s: after a
 * burst of calls the timer wakes ~13 times over the next minute (8 ms doubling), then twice a minute. The losses were
 * seen in busy processes, where it runs at 8–32 ms; a completion lost at the very edge of an idle spell waits for the
 * next tick, at most 30 s.
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

import { log } from "../log.ts";
import { check, libc } from "./libc.ts";

/** First interval after a call starts to be watched. */
export const NUDGE_MIN_MS = 8;
/** A timer slowed down past this is set back to the shortest interval by a new call. */
export const NUDGE_RESTART_ABOVE_MS = 4 * NUDGE_MIN_MS;
/** Longest interval while calls stay pending (an idle process wakes this often). */
export const NUDGE_MAX_MS = 30_000;

const CLOCK_MONOTONIC = 1;
const SIGEV_SIGNAL = 0;
const SIGURG = 23;
/** struct itimerspec: it_interval { tv_sec, tv_nsec }, it_value { tv_sec, tv_nsec }. */
const itimerspec = new BigInt64Array(4);
/** The timer_t of the process's timer, once created. */
let timer: bigint | undefined;

let pending = 0;
/** The period the timer runs at; 0 when stopped. */
let armedFor = 0;
let ticks = 0;
let restarts = 0;
let failed = false;

/** Returns `call` unchanged, after arranging that the event loop keeps being woken until it settles. */
export function watchCompletion<T>(call: Promise<T>): Promise<T> {
  pending++;
  const done = () => {
    pending--;
  };
  call.then(done, done);
  if (armedFor === 0 || armedFor > NUDGE_RESTART_ABOVE_MS) {
    // Stopped, or slowed down by a quiet spell: a new call starts over at the shortest interval. (While calls keep
    // coming, the interval is left to grow a little: every wake-up costs CPU.)
    if (armedFor > 0) restarts++;
    arm(NUDGE_MIN_MS);
  }
  return call;
}

/** Wake-ups so far (for tests and diagnostics). */
export function nudgeTicks(): number {
  return ticks;
}

/** Times a slowed-down timer was set back to the shortest interval by a new call (for tests and diagnostics). */
export function nudgeRestarts(): number {
  return restarts;
}

/** Calls being watched now (for tests and diagnostics). */
export function watchedCalls(): number {
  return pending;
}

/** (Re)starts the timer at period `ms` (0 stops it). Never throws: without a timer the backstop is just absent. */
function arm(ms: number): void {
  try {
    if (timer === undefined) {
      // struct sigevent: sigev_value (8 bytes), sigev_signo, sigev_notify, then padding up to 64 bytes.
      const sev = new Int32Array(16);
      sev[2] = SIGURG;
      sev[3] = SIGEV_SIGNAL;
      const id = new BigUint64Array(1);
      check(
        libc().timer_create(CLOCK_MONOTONIC, new Uint8Array(sev.buffer), new Uint8Array(id.buffer)),
        "timer_create",
      );
      Deno.addSignalListener("SIGURG", onAlarm);
      timer = id[0];
    }
    const sec = BigInt(Math.floor(ms / 1000));
    const nsec = BigInt((ms % 1000) * 1_000_000);
    itimerspec[0] = itimerspec[2] = sec;
    itimerspec[1] = itimerspec[3] = nsec;
    check(libc().timer_settime(timer, 0, new Uint8Array(itimerspec.buffer), null), "timer_settime");
    armedFor = ms;
  } catch (err) {
    if (!failed) log.warn("no nudge timer; a lost FFI completion waits for the next event", { error: err });
    failed = true;
    armedFor = ms === 0 ? 0 : NUDGE_MIN_MS; // no retry at every call
  }
}

function onAlarm(): void {
  if (armedFor === 0) return;
  if (pending === 0) return arm(0);
  ticks++;
  // Waking is the whole point: the event loop polls the pending op once more on its way back to sleep.
  if (armedFor < NUDGE_MAX_MS) arm(Math.min(armedFor * 2, NUDGE_MAX_MS));
}
