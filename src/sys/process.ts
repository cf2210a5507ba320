/**
 * Process-level Linux calls: pids, signals, the child-subreaper flag, oom_score_adj, and raw fd plumbing
 * (dup2/close, redirecting the shim's own stderr to containerd's `log` fifo).
 *
 * `kill` goes through libc because `Deno.kill` of a pid Deno did not spawn needs unscoped `--allow-run`.
 *
 * @example
 * ```ts
 * import { kill, signalNumber } from "./process.ts";
 * import { ESRCH, isErrno } from "./errno.ts";
 * try {
 *   kill(4242, signalNumber("SIGTERM"));
 * } catch (e) {
 *   if (!isErrno(e, ESRCH)) throw e; // already gone
 * }
 * ```
 * @module
 */

import {
  O_CLOEXEC,
  O_NONBLOCK,
  O_WRONLY,
  PR_GET_CHILD_SUBREAPER,
  PR_GET_NAME,
  PR_SET_CHILD_SUBREAPER,
  PR_SET_NAME,
} from "./abi.ts";
import { ENOENT } from "./errno.ts";
import { addressOf, check, cstr, errno, libc } from "./libc.ts";
import { readFile, writeFile } from "./procfs.ts";
import { after, type Timer } from "../timer.ts";

/** This process's pid (equal to `Deno.pid`). */
export function getpid(): number {
  return libc().getpid();
}

/**
 * Sends signal `signal` (a number; see {@linkcode signalNumber}) to `pid`. Signal 0 only checks existence.
 * Throws a SysError: ESRCH when the process does not exist (or is a zombie already reaped), EPERM when not allowed.
 */
export function kill(pid: number, signal: number): void {
  check(libc().kill(pid, signal), "kill", String(pid));
}

/**
 * Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER), or stops being one with
 * `enabled = false` (orphans reparented before that stay our children).
 */
export function setChildSubreaper(enabled = true): void {
  check(libc().prctl(PR_SET_CHILD_SUBREAPER, enabled ? 1n : 0n, 0n, 0n, 0n), "prctl(PR_SET_CHILD_SUBREAPER)");
}

/** Longest name the kernel keeps for a thread (TASK_COMM_LEN 16, including the NUL). */
export const MAX_PROCESS_NAME = 15;

/**
 * Names the calling thread (PR_SET_NAME); called from the main thread, that is the name `ps`, `top` and `pgrep`
 * show for the process (`/proc/<pid>/comm`). Longer names are refused rather than silently cut.
 */
export function setProcessName(name: string): void {
  const bytes = cstr(name);
  if (bytes.length - 1 > MAX_PROCESS_NAME || bytes.length === 1) {
    throw new RangeError(`a process name has 1 to ${MAX_PROCESS_NAME} bytes: ${JSON.stringify(name)}`);
  }
  // An explicit ArrayBuffer is off the V8 heap, so the address stays valid for the call.
  const buf = new Uint8Array(new ArrayBuffer(16));
  buf.set(bytes);
  check(libc().prctl(PR_SET_NAME, addressOf(buf), 0n, 0n, 0n), "prctl(PR_SET_NAME)");
}

/** The calling thread's name (PR_GET_NAME). */
export function processName(): string {
  const out = new Uint8Array(new ArrayBuffer(16));
  check(libc().prctl(PR_GET_NAME, addressOf(out), 0n, 0n, 0n), "prctl(PR_GET_NAME)");
  const end = out.indexOf(0);
  return new TextDecoder().decode(out.subarray(0, end < 0 ? out.length : end));
}

/** Whether this process is a child subreaper. */
export function isChildSubreaper(): boolean {
  // An explicit ArrayBuffer is always off the V8 heap, so its address is stable while the kernel writes to it.
  const out = new Int32Array(new ArrayBuffer(4));
  check(libc().prctl(PR_GET_CHILD_SUBREAPER, addressOf(out), 0n, 0n, 0n), "prctl(PR_GET_CHILD_SUBREAPER)");
  return out[0] !== 0;
}

/**
 * Writes `/proc/<pid>/oom_score_adj` (-1000..1000). Lowering it below the current value needs CAP_SYS_RESOURCE,
 * which root lacks on some hosts: that fails with SysError EACCES, and the caller decides whether it matters.
 */
export function setOomScoreAdj(pid: number, value: number): void {
  if (!Number.isInteger(value) || value < -1000 || value > 1000) {
    throw new RangeError(`oom_score_adj out of range: ${value}`);
  }
  writeFile(`/proc/${pid}/oom_score_adj`, String(value));
}

/** Reads `/proc/<pid>/oom_score_adj`. */
export function getOomScoreAdj(pid: number): number {
  return Number.parseInt(readFile(`/proc/${pid}/oom_score_adj`).trim(), 10);
}

/** dup2(2): makes `newFd` a copy of `oldFd` (the copy does not have CLOEXEC). */
export function dup2(oldFd: number, newFd: number): void {
  check(libc().dup2(oldFd, newFd), "dup2", `${oldFd} ${newFd}`);
}

/** close(2). Callers that waited on `fd` through the poller must `poller().forget(fd)` first. */
export function close(fd: number): void {
  check(libc().close(fd), "close", String(fd));
}

/** Whether `path` names a directory entry (lstat), for telling a real ENOENT from a clobbered errno. */
function pathExists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Points this process's fd 2 at the fifo `path` (containerd's `log` fifo) without ever blocking: the fifo is opened
 * `O_WRONLY|O_NONBLOCK`, so the open fails with SysError ENXIO if nobody reads it (containerd opens it first), and a
 * write to a full fifo fails with EAGAIN instead of stalling the shim (src/log.ts drops the line). The file
 * description is shared with fd 2, so fd 2 is non-blocking afterwards; fd 2 itself is not CLOEXEC (it never is).
 */
export function redirectStderrToFifo(path: string): void {
  const open = () => libc().open(cstr(path), O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0);
  let ret = open();
  // ENOENT for a path that is there: errno read after the runtime's one-time initialisation (libc.ts, callAgain).
  if (ret < 0 && errno() === ENOENT && pathExists(path)) ret = open();
  const fd = check(ret, "open", path);
  try {
    dup2(fd, 2);
  } finally {
    libc().close(fd);
  }
}

// Linux signal numbers (asm-generic; x86-64 and aarch64 agree). Index = number.
const names = [
  "",
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
];
const aliases: Record<string, number> = { SIGIOT: 6, SIGPOLL: 29, SIGCLD: 17 };
/** glibc reserves 32 and 33 for itself, so SIGRTMIN is 34 as seen by programs. */
const SIGRTMIN = 34;
const SIGRTMAX = 64;

/**
 * The number of a signal named like "SIGKILL", "KILL", "kill", "SIGRTMIN+3" or "9".
 * Throws RangeError for an unknown name.
 */
export function signalNumber(name: string): number {
  const s = name.trim().toUpperCase();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= SIGRTMAX) return n;
    throw new RangeError(`unknown signal: ${name}`);
  }
  const full = s.startsWith("SIG") ? s : `SIG${s}`;
  const i = names.indexOf(full);
  if (i > 0) return i;
  if (full in aliases) return aliases[full];
  const rt = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(full);
  if (rt) {
    const off = rt[3] ? Number(rt[3]) * (rt[2] === "+" ? 1 : -1) : 0;
    const n = (rt[1] === "MIN" ? SIGRTMIN : SIGRTMAX) + off;
    if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
  }
  throw new RangeError(`unknown signal: ${name}`);
}

/** The name of signal `n` ("SIGKILL" for 9, "SIGRTMIN+2" for 36), or `"SIG<n>"` when it has none. */
export function signalName(n: number): string {
  if (n > 0 && n < names.length) return names[n];
  if (n === SIGRTMIN) return "SIGRTMIN";
  if (n > SIGRTMIN && n <= SIGRTMAX) return `SIGRTMIN+${n - SIGRTMIN}`;
  return `SIG${n}`;
}

const SIGUSR1 = 10;
const SIG_BLOCK = 0;
const SIG_UNBLOCK = 1;
const SIG_IGN = Deno.UnsafePointer.create(1n);

/** A kernel sigset_t (glibc's 128-byte one) holding SIGUSR1 only. */
function usr1Set(): Uint8Array {
  const set = new BigUint64Array(16);
  set[0] = 1n << BigInt(SIGUSR1 - 1);
  return new Uint8Array(set.buffer);
}

/**
 * Blocks or unblocks SIGUSR1 for the calling thread (the JS thread, the one every `Deno.Command` spawns from); returns
 * whether it was blocked before.
 */
function setUsr1Blocked(blocked: boolean): boolean {
  const old = new Uint8Array(128);
  check(libc().pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, usr1Set(), old), "pthread_sigmask");
  return (old[(SIGUSR1 - 1) >> 3] & (1 << ((SIGUSR1 - 1) & 7))) !== 0;
}

/** Sets SIGUSR1 to SIG_IGN (dropping one pending); true when a handler (Deno's inspector trigger) was replaced. */
function ignoreUsr1(): boolean {
  const old = Deno.UnsafePointer.value(libc().signal(SIGUSR1, SIG_IGN));
  return BigInt(old) > 1n; // neither SIG_DFL (0) nor SIG_IGN (1)
}

/** True while the guard keeps SIGUSR1 blocked in the JS thread (Deno's handler not replaced yet). */
let guarding = false;
let guardTimer: Timer | undefined;

function endGuard(): void {
  guardTimer?.cancel();
  guardTimer = undefined;
  if (!guarding) return;
  guarding = false;
  setUsr1Blocked(false);
}

/** A running {@linkcode guardInspectorSignal}. */
export interface InspectorGuard {
  /** Stops the poll and unblocks SIGUSR1 in the JS thread (idempotent). */
  stop(): void;
  /** The poll's pace for the first 3 s: fast when SIGUSR1 reached this process unblocked, slow when it came blocked. */
  readonly pollMs: number;
}

/**
 * Deno 2.9.2+ opens the V8 inspector on 127.0.0.1:9229 when the process receives SIGUSR1 (Node's convention),
 * installing that handler about 500 ms after start-up. In a root-owned shim that would let any local user attach and
 * run code as root. The server calls this first thing: SIGUSR1 is set to SIG_IGN at once, and the JS thread keeps it
 * blocked (`start` spawns it with SIGUSR1 blocked: src/shim/start_boot.ts) until Deno has installed its handler,
 * which a poll then replaces with SIG_IGN again — Deno installs it once. So a SIGUSR1 never reaches Deno's handler:
 * it is pending (blocked in every thread) until the handler is gone, and SIG_IGN drops it. Children must not inherit
 * the blocked mask (runc hands it on to the container's processes): spawn them through
 * {@linkcode spawnWithInspectorSignalUnblocked}.
 *
 * The poll's pace: a process that got SIGUSR1 blocked from its exec on (what `start` does) has it blocked in every
 * thread the runtime made, so a signal waits, pending, however late the poll comes; the poll then only ends the
 * guard, every `blockedPollMs`. A server started some other way (SIGUSR1 not blocked: the runtime's own threads take
 * it) is exposed between Deno's installation and the next poll, so there it polls every `pollMs`. A fast poll costs
 * a young server CPU it would rather give to its first requests: in the 1.5 s after a server's first answer, 14.9 ms
 * against 8.2 ms at 250 ms (10 interleaved pairs, bench/analysis.md).
 */
export function guardInspectorSignal(pollMs = 20, giveUpMs = 60_000, blockedPollMs = 250): InspectorGuard {
  ignoreUsr1();
  const inherited = setUsr1Blocked(true);
  guarding = true;
  const pace = inherited ? Math.max(pollMs, blockedPollMs) : pollMs;
  const startedAt = Date.now();
  const poll = () => {
    if (ignoreUsr1()) return endGuard();
    // Fast while Deno is expected to arm (≈0.5 s), then rarely: an idle server must not wake 50 times a second.
    const elapsed = Date.now() - startedAt;
    if (elapsed > giveUpMs) {
      // Stays blocked in the JS thread; spawns still check (see spawnWithInspectorSignalUnblocked).
      guardTimer = undefined;
      return;
    }
    guardTimer = after(elapsed < 3000 ? pace : 1000, poll);
  };
  // Unref'd, and not Deno timers, which would load Deno's Node timers module at the server's boot (src/timer.ts).
  guardTimer = after(pace, poll);
  return { stop: endGuard, pollMs: pace };
}

/**
 * Runs `spawn` with SIGUSR1 unblocked in the JS thread, so the child gets a clean signal mask while the inspector
 * guard is active. If Deno's handler is already installed it is replaced first (and the guard ends).
 */
export function spawnWithInspectorSignalUnblocked<T>(spawn: () => T): T {
  if (!guarding) return spawn();
  if (ignoreUsr1()) {
    endGuard();
    return spawn();
  }
  setUsr1Blocked(false);
  try {
    return spawn();
  } finally {
    setUsr1Blocked(true);
  }
}
