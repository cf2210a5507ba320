/**
 * The child subreaper: reaps every process that ends up as our child (container inits and other orphans reparented
 * to the shim) and fans their exits out to listeners, without stealing the exit status of `Deno.Command` children,
 * and hands the exits of children spawned through src/sys/spawn.ts (runc, logging drivers) to their own waiting
 * callers instead of the listeners.
 *
 * Design (b) of deno-platform.md Q2. Deno reaps its own children with `wait4(pid)` after a pidfd fires, and a child
 * reaped by somebody else makes `child.status` reject with ECHILD. So on SIGCHLD the reaper *peeks* with
 * `waitid(P_ALL, WEXITED|WNOHANG|WNOWAIT)` and reaps (`waitpid(pid)`) only pids that are not registered Deno
 * children. Children must therefore be spawned through {@linkcode Reaper.spawn}, which registers the pid before any
 * SIGCHLD can be handled. (`Deno.Command#output()`, node:child_process, or a spawn elsewhere would lose its status.)
 *
 * The peek always returns the lowest zombie; when that is a Deno child that tokio has not reaped yet, later orphans
 * hide behind it, so the reaper retries on a short timer until the Deno child is gone. SIGCHLDs coalesce, so every
 * pass loops until nothing is left. An unref'd slow poll catches anything a lost wake-up could leave behind.
 *
 * @example
 * ```ts
 * import { reaper } from "./reaper.ts";
 * const r = reaper();
 * const off = r.onExit((e) => console.log(`pid ${e.pid} exited with ${e.status}`));
 * // A Deno.Command child in a process that reaps (the shim spawns runc through src/sys/spawn.ts instead):
 * const child = r.spawn("sh", { args: ["-c", "exit 3"] });
 * const { code } = await child.status; // never ECHILD
 * off();
 * ```
 * @module
 */

import { log } from "../log.ts";
import { CLD_EXITED, P_ALL, P_PID, SIGINFO, WEXITED, WNOHANG, WNOWAIT } from "./abi.ts";
import { ECHILD, EINTR, SysError } from "./errno.ts";
import { errno, libc } from "./libc.ts";
import { setChildSubreaper, spawnWithInspectorSignalUnblocked } from "./process.ts";
import { isSpawned, reapSpawned } from "./spawn.ts";
import { after, every, type Timer } from "../timer.ts";

/** A reaped child that was spawned neither through Deno nor through src/sys/spawn.ts. */
export interface Exit {
  pid: number;
  /** The exit code, or 128 + the signal number when a signal killed it (as shells and containerd report it). */
  status: number;
  exitedAt: Date;
}

/** The process-wide reaper; see the module documentation. */
export interface Reaper {
  /** `new Deno.Command(cmd, options).spawn()`, with the pid registered so its status is left to Deno. */
  spawn(cmd: string | URL, options?: Deno.CommandOptions): Deno.ChildProcess;
  /** Calls `listener` for every other reaped child (container processes, orphans); returns the unsubscribe function. */
  onExit(listener: (e: Exit) => void): () => void;
  /**
   * For tests: reaps what is already exited, then removes the SIGCHLD listener, timers and listeners, and clears
   * the subreaper flag, so later code in the same process (other test files) is unaffected. A later `reaper()`
   * starts afresh.
   */
  stop(): void;
}

/** Retry delay while a Deno child's zombie hides the queue; grows to RETRY_MAX_MS if it stays (busy event loop). */
const RETRY_MS = 2;
const RETRY_MAX_MS = 50;
/**
 * Safety poll: SIGCHLD and the retry timer do the real work (Deno's signal listener coalesces signals but never drops
 * the last one, and every pass loops until nothing is left), so this only backs up a wake-up lost elsewhere; the Go
 * shim has no such poll at all. Rare and unref'd: each poll costs the runtime three wake-ups (its timer wheel fires
 * early twice), and at 10 s an idle per-pod server spent 13–14 ms of CPU a minute, 8–10 ms at 60 s (bench/analysis.md,
 * session 18).
 */
const SAFETY_POLL_MS = 60_000;

/** Decodes a waitpid(2) status word into an exit code or 128 + signal (for callers that wait themselves). */
export function exitStatus(wstatus: number): number {
  const signal = wstatus & 0x7f;
  return signal === 0 ? (wstatus >> 8) & 0xff : 128 + signal;
}

class SubReaper implements Reaper {
  /** pid → number of live Deno children with that pid (a pid can be reused before the old status settles). */
  readonly #denoChildren = new Map<number, number>();
  readonly #listeners = new Set<(e: Exit) => void>();
  readonly #info = new Uint8Array(SIGINFO.size);
  readonly #infoView = new DataView(this.#info.buffer);
  readonly #onSignal = () => this.#reap();
  #retryTimer: Timer | undefined;
  #retryDelay = RETRY_MS;
  #pollTimer: Timer | undefined;
  #stopped = false;

  constructor() {
    setChildSubreaper();
    Deno.addSignalListener("SIGCHLD", this.#onSignal);
    // Unref'd, and not a Deno timer: the first of those loads Deno's Node timers module (src/timer.ts).
    this.#pollTimer = every(SAFETY_POLL_MS, () => this.#reap());
  }

  spawn(cmd: string | URL, options?: Deno.CommandOptions): Deno.ChildProcess {
    // With a clean signal mask while the server's inspector guard blocks SIGUSR1 (runc would hand it on).
    const child = spawnWithInspectorSignalUnblocked(() => new Deno.Command(cmd, options).spawn());
    // Synchronously after spawn: the SIGCHLD handler is JS too, so it cannot run in between.
    const pid = child.pid;
    this.#denoChildren.set(pid, (this.#denoChildren.get(pid) ?? 0) + 1);
    const release = () => {
      const n = this.#denoChildren.get(pid) ?? 0;
      if (n <= 1) this.#denoChildren.delete(pid);
      else this.#denoChildren.set(pid, n - 1);
    };
    child.status.then(release, release);
    return child;
  }

  onExit(listener: (e: Exit) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stop(): void {
    if (this.#stopped) return;
    this.#reap();
    this.#stopped = true;
    setChildSubreaper(false);
    Deno.removeSignalListener("SIGCHLD", this.#onSignal);
    this.#retryTimer?.cancel();
    this.#pollTimer?.cancel();
    this.#retryTimer = this.#pollTimer = undefined;
    this.#listeners.clear();
    if (singleton === this) singleton = undefined;
  }

  #reap(): void {
    if (this.#stopped) return;
    const C = libc();
    for (;;) {
      this.#info.fill(0);
      if (C.waitid(P_ALL, 0, this.#info, WEXITED | WNOHANG | WNOWAIT) < 0) {
        const err = errno();
        if (err === EINTR) continue;
        if (err !== ECHILD) log.error("reaper: waitid failed", { error: new SysError("waitid", err) });
        break; // ECHILD: no children at all
      }
      const pid = this.#infoView.getInt32(SIGINFO.pid, true);
      if (pid === 0) break; // children exist, none has exited
      if (isSpawned(pid)) {
        // posix_spawn'ed by us (runc…): its status goes to the call waiting for it, not to the exit listeners.
        if (reapSpawned(pid)) continue;
        this.#scheduleRetry();
        return;
      }
      if (this.#denoChildren.has(pid)) {
        // Deno reaps this one itself (its status promise settles soon); everything behind it waits for a retry.
        this.#scheduleRetry();
        return;
      }
      // Reap exactly this pid; waitid P_PID fills the same siginfo, and WNOHANG keeps this from ever blocking.
      this.#info.fill(0);
      if (C.waitid(P_PID, pid, this.#info, WEXITED | WNOHANG) < 0) {
        const err = errno();
        if (err === EINTR || err === ECHILD) continue; // ECHILD: reaped by someone else meanwhile
        log.error("reaper: waitid failed", { pid, error: new SysError("waitid", err) });
        break;
      }
      if (this.#infoView.getInt32(SIGINFO.pid, true) !== pid) {
        // Cannot happen for a zombie the peek just showed; never spin on it, look again later.
        this.#scheduleRetry();
        return;
      }
      this.#emit({ pid, status: this.#statusFromInfo(), exitedAt: new Date() });
    }
    this.#retryDelay = RETRY_MS;
  }

  /** The exit code (CLD_EXITED) or 128 + signal (CLD_KILLED, CLD_DUMPED) from the siginfo just filled. */
  #statusFromInfo(): number {
    const code = this.#infoView.getInt32(SIGINFO.code, true);
    const status = this.#infoView.getInt32(SIGINFO.status, true);
    return code === CLD_EXITED ? status & 0xff : 128 + status;
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined) return;
    this.#retryTimer = after(this.#retryDelay, () => {
      this.#retryTimer = undefined;
      this.#reap();
    });
    this.#retryDelay = Math.min(this.#retryDelay * 2, RETRY_MAX_MS);
  }

  #emit(e: Exit): void {
    for (const listener of this.#listeners) {
      try {
        listener(e);
      } catch (err) {
        log.error("reaper: exit listener threw", { pid: e.pid, error: err });
      }
    }
  }
}

let singleton: SubReaper | undefined;

/**
 * The process-wide reaper. The first call makes this process a child subreaper and installs the SIGCHLD listener.
 * Register exit listeners before starting anything whose exit matters: exits are delivered once, as they happen.
 */
export function reaper(): Reaper {
  return singleton ??= new SubReaper();
}
