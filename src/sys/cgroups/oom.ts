/**
 * OOM notification for a container's cgroup, for the Task service's TaskOOM event.
 *
 * - v1: an eventfd registered with the memory controller (`cgroup.event_control` ← "<eventfd> <memory.oom_control
 *   fd>"), waited on with the {@linkcode poller}. The kernel signals it on every OOM in the cgroup, and once more when
 *   the cgroup is removed; that last one is recognised (the directory is gone) and ends the watch without a callback.
 *   As in containerd, every OOM signal is reported, even when no process was killed (`oom_kill_disable`).
 * - v2: `memory.events` and `cgroup.events` watched with inotify (the shared instance of inotify.ts); a callback per
 *   increase of `oom_kill`. `cgroup.events` changes when the cgroup empties: the counter is checked once more and
 *   the watch ends, as containerd's does. Without inotify (per-user limits reached) the counter is polled every
 *   second until the cgroup is removed.
 *
 * Kills that happened before the watch started (between `runc start` and the call) are reported once, right after
 * the call returns, so a container that is OOM-killed immediately still gets its TaskOOM.
 *
 * @example
 * ```ts
 * import { loadCgroup, watchOom } from "./mod.ts";
 * const cg = loadCgroup(initPid);
 * const stop = watchOom(cg, () => publish("/tasks/oom", { containerId }));
 * // on container delete:
 * stop();
 * ```
 * @module
 */

import { O_CLOEXEC, O_RDONLY } from "../abi.ts";
import { log } from "../../log.ts";
import { eventfd, eventfdRead } from "../eventfd.ts";
import { ENOENT, ENOTDIR, isErrno } from "../errno.ts";
import { closeFd } from "../fdio.ts";
import { check, cstr, libc } from "../libc.ts";
import { poller } from "../poller.ts";
import { writeFile } from "../procfs.ts";
import { isDirectory, readOptional } from "./fs.ts";
import { kvValue } from "./parse.ts";
import { type FileWatch, IN_IGNORED, IN_MODIFY, watchFile } from "./inotify.ts";
import type { Cgroup } from "./types.ts";
import { every, type Timer } from "../../timer.ts";

/** How often v2 polls memory.events when inotify is unavailable. */
export const OOM_POLL_INTERVAL_MS = 1000;

/**
 * Calls `onOom()` for each OOM event of `cgroup` until the returned stop function is called (or the cgroup is
 * removed). Stop is idempotent and closes every fd the watch opened. Throws when the cgroup has no memory controller
 * or cannot be watched (e.g. it is already gone).
 */
export function watchOom(cgroup: Cgroup, onOom: () => void): () => void {
  const dir = cgroup.memoryDir;
  if (!dir) throw new Error(`cgroup ${cgroup.path} has no memory controller: OOM events cannot be watched`);
  let stopped = false;
  const deliver = () => {
    if (stopped) return;
    try {
      onOom();
    } catch (e) {
      log.error("OOM callback failed", { cgroup: cgroup.path, error: e });
    }
  };
  const stop = cgroup.version === 1 ? watchV1(cgroup, dir, deliver) : watchV2(cgroup, dir, deliver);
  return () => {
    stopped = true;
    stop();
  };
}

/** Reports kills that happened before the watch: after the caller got its stop function. */
function reportEarlier(count: number, deliver: () => void): void {
  if (count > 0) queueMicrotask(deliver);
}

function watchV1(cgroup: Cgroup, dir: string, deliver: () => void): () => void {
  const efd = eventfd(); // non-blocking, close-on-exec
  try {
    const control = `${dir}/memory.oom_control`;
    const ofd = check(libc().open(cstr(control), O_RDONLY | O_CLOEXEC, 0), "open", control);
    try {
      writeFile(`${dir}/cgroup.event_control`, `${efd} ${ofd}`);
    } finally {
      // The kernel holds what it needs; memory.oom_control's fd only names the event.
      libc().close(ofd);
    }
  } catch (e) {
    libc().close(efd);
    throw e;
  }
  const ac = new AbortController();
  let closed = false;
  const stop = () => {
    if (closed) return;
    closed = true;
    ac.abort();
    // Closing the eventfd also unregisters the event in the kernel.
    closeFd(efd);
  };
  (async () => {
    while (!closed) {
      try {
        await poller().wait(efd, "read", ac.signal);
      } catch {
        return; // stopped
      }
      if (closed) return;
      if (eventfdRead(efd) < 0n) continue; // spurious wake-up: nothing was signalled
      if (!isDirectory(dir)) return stop(); // the removal signal
      deliver();
    }
  })().catch((e) => log.error("OOM watch failed", { cgroup: cgroup.path, error: e }));
  // Counted after registering: a kill in between is reported twice rather than never.
  reportEarlier(cgroup.oomKillCount(), deliver);
  return stop;
}

function watchV2(cgroup: Cgroup, dir: string, deliver: () => void): () => void {
  // Counted before watching: every later increase is an event, and the earlier ones are reported once.
  let last = cgroup.oomKillCount();
  const recheck = () => {
    const n = cgroup.oomKillCount();
    if (n > last) {
      last = n;
      deliver();
    }
  };
  const watches: FileWatch[] = [];
  let timer: Timer | undefined;
  const stop = () => {
    for (const w of watches.splice(0)) w.close();
    timer?.cancel();
    timer = undefined;
  };
  const onEvent = (mask: number) => {
    if (mask & IN_IGNORED) return stop(); // the file went away (kernfs only reports this once the watch is closed)
    recheck();
    // An emptied cgroup has no process left to kill (runc never refills it): done, as containerd's watcher is.
    // kernfs does not report rmdir to inotify, so this is also what ends a watch whose owner forgot to stop it.
    if (kvValue(readOptional(`${dir}/cgroup.events`) ?? "populated 0", "populated") === "0") stop();
  };
  try {
    watches.push(watchFile(`${dir}/memory.events`, IN_MODIFY, onEvent));
    watches.push(watchFile(`${dir}/cgroup.events`, IN_MODIFY, onEvent));
  } catch (e) {
    stop();
    // No memory.events (memory controller not enabled, or the cgroup is gone): there is nothing to watch.
    if (isErrno(e, ENOENT, ENOTDIR)) throw e;
    // inotify itself is unavailable (EMFILE, ENOSPC: the per-user limits): poll the counter instead.
    log.warn("inotify unavailable, polling memory.events for OOM kills", { cgroup: cgroup.path, error: e });
    // The poll must not keep alive a process that has nothing else to do: unref'd (src/timer.ts).
    timer = every(OOM_POLL_INTERVAL_MS, () => {
      if (!isDirectory(dir)) return stop();
      recheck();
    });
  }
  reportEarlier(last, deliver);
  return stop;
}
