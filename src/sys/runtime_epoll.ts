/**
 * The epoll instances of the process other than the caller's own: in a Deno process, the runtime's reactor (tokio's
 * epoll, in which Deno 2.9 registers its waker eventfd and its signal pipe, and every socket or pipe Deno itself
 * reads). An epoll fd is itself pollable: it reads as ready while its ready list is not empty, so nesting the
 * runtime's epoll in another one tells a thread blocked there that the runtime has I/O of its own: a signal (a
 * `Deno.Command` child's SIGCHLD), a pipe it reads. Not every kind of work: tokio writes its waker eventfd only
 * while its thread is parked in that epoll, so a blocking-pool completion that lands while JS runs (or blocks)
 * leaves it quiet. Only the poller's linger uses this (src/sys/poller.ts, which says what that costs).
 *
 * They are found by listing `/proc/self/fd` and keeping the fds whose `/proc/self/fdinfo` has `tfd:` lines, which
 * only an epoll with registrations shows. Found once, when the caller asks: an epoll made later is not seen.
 *
 * @example
 * ```ts
 * import { runtimeEpollFds } from "./runtime_epoll.ts";
 * declare const myEpfd: number;
 * const theirs = runtimeEpollFds([myEpfd]); // e.g. [4, 6]: Deno 2.9's reactor (fd 6 a duplicate of 4)
 * ```
 * @module
 */

import { listDirectory, readFileOrNull } from "./procfs.ts";

/** Whether `/proc/self/fdinfo/<fd>` text is an epoll instance's with at least one registration. */
export function isEpollInfo(fdinfo: string): boolean {
  return /^tfd:/m.test(fdinfo);
}

/** The process's epoll fds (with registrations) except `own`, in fd order; empty where /proc cannot tell. */
export function runtimeEpollFds(own: readonly number[]): number[] {
  let names: string[];
  try {
    names = listDirectory("/proc/self/fd");
  } catch {
    return [];
  }
  const fds: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || own.includes(fd)) continue;
    let info: string | null;
    try {
      info = readFileOrNull(`/proc/self/fdinfo/${fd}`); // null: closed since the listing
    } catch {
      continue; // e.g. EACCES under an LSM: not one we can use
    }
    if (info !== null && isEpollInfo(info)) fds.push(fd);
  }
  return fds.sort((a, b) => a - b);
}
