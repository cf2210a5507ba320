/**
 * eventfd(2): a kernel counter behind an fd. The poller uses one to wake its in-flight `epoll_wait`; cgroup v1 OOM
 * notification (`cgroup.event_control`) also reports through one.
 *
 * @example
 * ```ts
 * import { eventfd, eventfdRead, eventfdWrite } from "./eventfd.ts";
 * const fd = eventfd(); // EFD_CLOEXEC | EFD_NONBLOCK
 * eventfdWrite(fd, 1);
 * eventfdRead(fd); // 1n, then -1n (nothing pending)
 * ```
 * @module
 */

import { EFD_CLOEXEC, EFD_NONBLOCK } from "./abi.ts";
import { EAGAIN, EINTR, SysError } from "./errno.ts";
import { check, errno, libc } from "./libc.ts";

// One 8-byte scratch for all reads/writes: the calls are synchronous, so it is never shared across an await.
const scratch = new BigUint64Array(1);

/** Creates an eventfd with `initval`; flags default to EFD_CLOEXEC|EFD_NONBLOCK (CLOEXEC is always added). */
export function eventfd(initval = 0, flags: number = EFD_CLOEXEC | EFD_NONBLOCK): number {
  return check(libc().eventfd(initval, flags | EFD_CLOEXEC), "eventfd");
}

/**
 * Adds `value` to the counter. Returns false if that would overflow the counter on a non-blocking eventfd (EAGAIN),
 * which for wake-ups means a wake-up is pending anyway.
 */
export function eventfdWrite(fd: number, value: number | bigint = 1n): boolean {
  scratch[0] = BigInt(value);
  for (;;) {
    if (libc().write(fd, scratch, 8n) === 8) return true;
    const err = errno();
    if (err === EAGAIN) return false;
    if (err !== EINTR) throw new SysError("write", err, `eventfd ${fd}`);
  }
}

/**
 * Reads and resets the counter (or decrements it by one with EFD_SEMAPHORE). Returns -1n when the counter is zero
 * on a non-blocking eventfd.
 */
export function eventfdRead(fd: number): bigint {
  for (;;) {
    if (libc().read(fd, scratch, 8n) === 8) return scratch[0];
    const err = errno();
    if (err === EAGAIN) return -1n;
    if (err !== EINTR) throw new SysError("read", err, `eventfd ${fd}`);
  }
}
