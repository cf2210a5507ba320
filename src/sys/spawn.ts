/**
 * Child processes without `Deno.Command`: glibc's `posix_spawn` (a CLONE_VFORK child, safe from a multithreaded
 * process; posix_spawn.ts), stdio on pipes this module makes (read and written through the {@linkcode poller} like
 * every other fd of the shim), and the exit status collected by this module itself, with no Deno resource, stream or
 * tokio task per child.
 *
 * What the child gets, and why:
 * - fds 0/1/2 as asked (`"piped"`: a pipe whose other end is returned, O_NONBLOCK|O_CLOEXEC on our side and blocking
 *   on the child's; `"null"`: /dev/null; `"inherit"`: ours), `extraFds` as 3, 4, …, and nothing else: every other fd
 *   is closed in the child (`posix_spawn_file_actions_addclosefrom_np`), on top of every fd of ours being O_CLOEXEC;
 * - an empty signal mask and every signal at its default action: the server keeps SIGUSR1 blocked or ignored (its
 *   inspector guard) and Deno ignores SIGPIPE, and runc would hand either on to the container's processes;
 * - our environment (read from `environ` at each spawn), plus `env` when given;
 * - `cwd` through `posix_spawn_file_actions_addchdir_np` (glibc ≥ 2.29).
 *
 * Exits: each child gets a pidfd (readable once it exits) waited on through the poller, which also keeps the process
 * alive while a status is pending, as a `Deno.ChildProcess` does. The status promise exists from the moment `spawn`
 * returns, so an exit can never happen "before the caller listens". The shim's subreaper, which reaps every other
 * child, hands the pids of this module to {@linkcode reapSpawned} instead of reaping them itself, so whichever sees
 * the exit first delivers it to the same promise.
 *
 * @example
 * ```ts
 * import { spawn } from "./spawn.ts";
 * import { readAsync } from "./fdio.ts";
 * const child = spawn("runc", { args: ["--version"], stdout: "piped", stderr: "null" });
 * const buf = new Uint8Array(4096);
 * const n = await readAsync(child.stdout, buf);
 * const { code } = await child.status;
 * ```
 * @module
 */

import { CLD_EXITED, O_CLOEXEC, P_PID, SIGINFO, SIGTERM, WEXITED, WNOHANG } from "./abi.ts";
import { EBADF, EINTR, ESRCH, SysError } from "./errno.ts";
import { closeFd, pipe } from "./fdio.ts";
import { check, errno, libc, setNonblocking } from "./libc.ts";
import { devNull, posixSpawn } from "./posix_spawn.ts";
import { poller } from "./poller.ts";
import { signalName } from "./process.ts";

/** How the child gets one stdio stream. */
export type StdioMode = "piped" | "null" | "inherit";

/** What to run and how. */
export interface SpawnOptions {
  args?: string[];
  /** Variables added to (or replacing in) the inherited environment. */
  env?: Record<string, string>;
  /** Variables added only where neither the inherited environment nor `env` has them. */
  envDefaults?: Record<string, string>;
  /** The child's working directory. */
  cwd?: string;
  /** Default "inherit" for all three, as `Deno.Command#spawn`. */
  stdin?: StdioMode;
  stdout?: StdioMode;
  stderr?: StdioMode;
  /**
   * Capacity of the stdout/stderr pipes in bytes (F_SETPIPE_SZ, best effort; Linux's default is 64 KiB): a reader that
   * takes bigger chunks needs fewer wake-ups for a fast writer. Pages are allocated only as data is written.
   */
  pipeCapacity?: number;
  /**
   * Fds the child gets as 3, 4, … (dup2'd, so blocking or not as they are; the caller keeps and closes its own), e.g. a
   * logging driver's input pipes.
   */
  extraFds?: number[];
  /**
   * Owner given to the child's ends of its pipes (fchown), so a process that runs as another user can reopen them
   * through /proc/self/fd (Options.io_uid/io_gid, for rootless and user-namespaced containers, as the Go shim does).
   */
  pipeOwner?: { uid: number; gid: number };
}

/** How a child ended. */
export interface ChildStatus {
  success: boolean;
  /** The exit code, or 128 + the signal number when a signal ended it. */
  code: number;
  /** The signal that ended it, by name. */
  signal: Deno.Signal | null;
}

/** A spawned child. The caller owns the returned pipe fds (close them with `closeFd`). */
export interface Child {
  readonly pid: number;
  /** Our write end of the child's stdin, or -1 unless `stdin: "piped"`. */
  readonly stdin: number;
  /** Our read end of the child's stdout, or -1 unless `stdout: "piped"`. */
  readonly stdout: number;
  /** Our read end of the child's stderr, or -1 unless `stderr: "piped"`. */
  readonly stderr: number;
  /** Settles once the child exited and was reaped; never rejects except if somebody else reaped it (ECHILD). */
  readonly status: Promise<ChildStatus>;
  /** Sends `signal` (default SIGTERM) unless the child was already reaped. */
  kill(signal?: number): void;
}

const F_SETPIPE_SZ = 1031;

interface Pending {
  resolve(s: ChildStatus): void;
  reject(e: unknown): void;
  pidfd: number;
}

/** pid → the child's pending status. */
const pending = new Map<number, Pending>();
const info = new Uint8Array(SIGINFO.size);
const infoView = new DataView(info.buffer);

/** Decodes the siginfo waitid just filled. */
function statusFromInfo(): ChildStatus {
  const code = infoView.getInt32(SIGINFO.code, true);
  const status = infoView.getInt32(SIGINFO.status, true);
  if (code === CLD_EXITED) return { success: status === 0, code: status & 0xff, signal: null };
  return { success: false, code: 128 + status, signal: signalName(status) as Deno.Signal };
}

/** Delivers the status of `pid` (and drops its pidfd). */
function settle(pid: number, outcome: { status: ChildStatus } | { error: unknown }): void {
  const p = pending.get(pid);
  if (!p) return;
  pending.delete(pid);
  if (p.pidfd >= 0) closeFd(p.pidfd); // rejects the pidfd wait with EBADF when the subreaper got here first
  if ("status" in outcome) p.resolve(outcome.status);
  else p.reject(outcome.error);
}

/** Reaps `pid` if it exited; true when it did (or cannot be waited for any more). */
function tryReap(pid: number): boolean {
  info.fill(0);
  for (;;) {
    if (libc().waitid(P_PID, pid, info, WEXITED | WNOHANG) >= 0) break;
    const err = errno();
    if (err === EINTR) continue;
    // ECHILD: reaped by somebody who should not have (a waitpid(-1) elsewhere); never leave the caller hanging.
    settle(pid, { error: new SysError("waitid", err, `pid ${pid}`) });
    return true;
  }
  if (infoView.getInt32(SIGINFO.pid, true) !== pid) return false;
  settle(pid, { status: statusFromInfo() });
  return true;
}

/** Whether `pid` is a child spawned here whose status is still pending (for the subreaper). */
export function isSpawned(pid: number): boolean {
  return pending.has(pid);
}

/**
 * For the subreaper: reaps `pid` if it is one of this module's children and has exited, delivering its status to the
 * waiting caller; true when it did. False (doing nothing) for any other pid.
 */
export function reapSpawned(pid: number): boolean {
  return pending.has(pid) && tryReap(pid);
}

/** Number of children whose status is pending (tests, diagnostics). */
export function pendingChildren(): number {
  return pending.size;
}

/** Waits on the pidfd until the child is reaped (by us, or by the subreaper through reapSpawned). */
async function watch(pid: number, pidfd: number): Promise<void> {
  while (pending.get(pid)?.pidfd === pidfd) {
    try {
      await poller().wait(pidfd, "read");
    } catch (err) {
      if (err instanceof SysError && err.errno === EBADF) return; // settled meanwhile: the pidfd was closed
      // The poller itself failed: nothing else will ever wake us, so fall back to the status as it is now.
      if (!tryReap(pid)) settle(pid, { error: err });
      return;
    }
    tryReap(pid);
  }
}

/**
 * Spawns `cmd` (looked up in PATH when it has no "/"). Throws SysError when it cannot run: ENOENT for a missing
 * binary (`posix_spawn <cmd>`) or a missing `cwd` (`chdir <cwd>`), EACCES, ENOEXEC…
 */
export function spawn(cmd: string, options: SpawnOptions = {}): Child {
  const C = libc();
  const modes: StdioMode[] = [options.stdin ?? "inherit", options.stdout ?? "inherit", options.stderr ?? "inherit"];
  const ours = [-1, -1, -1];
  const theirs: number[] = [];
  const fds = [-1, -1, -1];
  try {
    for (let target = 0; target < 3; target++) {
      const mode = modes[target];
      if (mode === "inherit") continue;
      if (mode === "null") fds[target] = devNull();
      else if (mode === "piped") {
        const [r, w] = pipe(O_CLOEXEC); // blocking; our end is made non-blocking below
        const [child, parent] = target === 0 ? [r, w] : [w, r];
        theirs.push(child);
        ours[target] = parent;
        setNonblocking(parent);
        if (options.pipeOwner) {
          check(C.fchown(child, options.pipeOwner.uid, options.pipeOwner.gid), "fchown", `pipe of fd ${target}`);
        }
        // Refused beyond /proc/sys/fs/pipe-max-size or a user's pipe quota: the default capacity then does.
        if (target > 0 && options.pipeCapacity) C.fcntl(parent, F_SETPIPE_SZ, BigInt(options.pipeCapacity));
        fds[target] = child;
      } else throw new TypeError(`invalid stdio mode ${JSON.stringify(mode)}`);
    }
    const pid = posixSpawn(cmd, {
      args: options.args,
      env: options.env,
      envDefaults: options.envDefaults,
      cwd: options.cwd,
      fds: options.extraFds?.length ? [...fds, ...options.extraFds] : fds,
    });
    return track(pid, ours);
  } catch (err) {
    for (const fd of ours) if (fd >= 0) C.close(fd);
    throw err;
  } finally {
    for (const fd of theirs) C.close(fd);
  }
}

function track(pid: number, fds: number[]): Child {
  const { promise, resolve, reject } = Promise.withResolvers<ChildStatus>();
  promise.catch(() => {}); // a status nobody awaits (a logging driver's) must not become an unhandled rejection
  let pidfd = -1;
  try {
    pidfd = check(libc().pidfd_open(pid, 0), "pidfd_open", `pid ${pid}`);
  } catch {
    // Only without pidfds (Linux < 5.3): the subreaper or the caller's kill/wait must then reap it.
  }
  pending.set(pid, { resolve, reject, pidfd });
  if (pidfd >= 0) watch(pid, pidfd);
  return {
    pid,
    stdin: fds[0],
    stdout: fds[1],
    stderr: fds[2],
    status: promise,
    kill(signal = SIGTERM) {
      if (!pending.has(pid)) return;
      // The pid is ours and unreaped (a zombie at worst), so it cannot have been reused.
      if (libc().kill(pid, signal) < 0) {
        const err = errno();
        if (err !== ESRCH) throw new SysError("kill", err, `pid ${pid}`);
      }
    },
  };
}
