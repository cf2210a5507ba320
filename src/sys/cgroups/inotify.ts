/**
 * File-change notification through one process-wide inotify instance, read through the {@linkcode poller}.
 *
 * One instance serves every watch because inotify instances are a scarce per-user resource
 * (`fs.inotify.max_user_instances`, 128 by default, shared by every shim of the host); the instance's fd is closed,
 * and its poller wait dropped, as soon as the last watch is closed, so an idle process holds nothing.
 *
 * Watching the same file twice shares the kernel's watch (inotify has one per inode); each caller still gets its own
 * callback and its own close. When the kernel drops a watch by itself (the file was deleted, e.g. its cgroup was
 * removed), the callbacks get `IN_IGNORED` once and nothing after.
 *
 * @example
 * ```ts
 * import { IN_MODIFY, watchFile } from "./inotify.ts";
 * const w = watchFile("/sys/fs/cgroup/default/c1/memory.events", IN_MODIFY, (mask) => console.log("changed", mask));
 * // ...
 * w.close();
 * ```
 * @module
 */

import { O_CLOEXEC, O_NONBLOCK } from "../abi.ts";
import { log } from "../../log.ts";
import { check, cstr, libc } from "../libc.ts";
import { closeFd, read } from "../fdio.ts";
import { poller } from "../poller.ts";

/** The file was written to. */
export const IN_MODIFY = 0x2;
/** The watch was removed (explicitly, or because the file was deleted or its file system unmounted). */
export const IN_IGNORED = 0x8000;
const IN_MASK_ADD = 0x20000000;
/** struct inotify_event: wd i32, mask u32, cookie u32, len u32, then `len` bytes of name. */
const EVENT_HEADER = 16;

/** A registered watch; close it exactly when you no longer want callbacks (closing twice is harmless). */
export interface FileWatch {
  close(): void;
}

type Listener = (mask: number) => void;

interface Instance {
  fd: number;
  byWd: Map<number, Set<Listener>>;
  stop: AbortController;
}

let current: Instance | null = null;

/**
 * Calls `onEvent(mask)` whenever `path` sees one of the events in `mask` (plus `IN_IGNORED` when the kernel drops
 * the watch). Throws SysError when inotify is unavailable (EMFILE, ENOSPC: the per-user limits) or `path` cannot
 * be watched (ENOENT).
 */
export function watchFile(path: string, mask: number, onEvent: (mask: number) => void): FileWatch {
  const inst = current ?? start();
  let wd: number;
  try {
    // MASK_ADD: a second watcher of the same file must not narrow what the first one asked for.
    wd = check(libc().inotify_add_watch(inst.fd, cstr(path), mask | IN_MASK_ADD), "inotify_add_watch", path);
  } catch (e) {
    if (inst.byWd.size === 0) shutdown(inst);
    throw e;
  }
  let listeners = inst.byWd.get(wd);
  if (!listeners) inst.byWd.set(wd, listeners = new Set());
  // A fresh function per watch, so that the same callback registered twice is two watches.
  const listener: Listener = (m) => onEvent(m);
  listeners.add(listener);
  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      const set = inst.byWd.get(wd);
      if (!set?.delete(listener)) return; // the kernel already dropped the watch
      if (set.size === 0) {
        inst.byWd.delete(wd);
        libc().inotify_rm_watch(inst.fd, wd); // EINVAL when the kernel removed it meanwhile: nothing to do
      }
      if (inst.byWd.size === 0) shutdown(inst);
    },
  };
}

/** Number of kernel watches held by the shared instance (for tests and diagnostics). */
export function activeWatches(): number {
  return current?.byWd.size ?? 0;
}

function start(): Instance {
  const fd = check(libc().inotify_init1(O_NONBLOCK | O_CLOEXEC), "inotify_init1");
  const inst: Instance = { fd, byWd: new Map(), stop: new AbortController() };
  current = inst;
  readLoop(inst).catch((e) => log.error("inotify: reading events failed", { error: e }));
  return inst;
}

function shutdown(inst: Instance): void {
  if (current === inst) current = null;
  inst.stop.abort();
  closeFd(inst.fd);
}

async function readLoop(inst: Instance): Promise<void> {
  // Room for many events; names are empty for watches on files, so each event is 16 bytes.
  const buf = new Uint8Array(4096);
  const view = new DataView(buf.buffer);
  const { signal } = inst.stop;
  while (!signal.aborted) {
    const n = read(inst.fd, buf);
    if (n < 0) {
      try {
        await poller().wait(inst.fd, "read", signal);
      } catch {
        if (signal.aborted) return;
        throw new Error("inotify fd was closed under the reader");
      }
      continue;
    }
    for (let off = 0; off + EVENT_HEADER <= n; off += EVENT_HEADER + view.getUint32(off + 12, true)) {
      const wd = view.getInt32(off, true);
      const mask = view.getUint32(off + 4, true);
      const listeners = inst.byWd.get(wd);
      if (!listeners) continue; // closed meanwhile
      if (mask & IN_IGNORED) inst.byWd.delete(wd);
      for (const l of [...listeners]) {
        try {
          l(mask);
        } catch (e) {
          log.error("inotify: watch callback failed", { error: e });
        }
      }
      if (signal.aborted) return; // a callback closed the last watch
    }
    if (inst.byWd.size === 0) {
      shutdown(inst);
      return;
    }
  }
}
