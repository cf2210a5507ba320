/**
 * Unix stream sockets by path, through libc: a `sockaddr_un` builder, a listener for runc's console socket, and a
 * synchronous probe for a live listener, and a synchronous request/answer exchange (what `start` asks before reusing a
 * group's server).
 * @module
 */

import { AF_UNIX, POLLFD, POLLIN, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, SOCKADDR_UN } from "./abi.ts";
import { EAGAIN, EINTR, ENAMETOOLONG, SysError } from "./errno.ts";
import { check, cstr, errno, libc } from "./libc.ts";

/** `struct sockaddr_un` for `path` and the address length to pass with it. */
export function sockaddrUn(path: string, syscall: string): { addr: Uint8Array; len: number } {
  const bytes = cstr(path);
  if (bytes.length > SOCKADDR_UN.pathMax) throw new SysError(syscall, ENAMETOOLONG, path);
  const addr = new Uint8Array(SOCKADDR_UN.size);
  new DataView(addr.buffer).setUint16(SOCKADDR_UN.family, AF_UNIX, true);
  addr.set(bytes, SOCKADDR_UN.path);
  return { addr, len: SOCKADDR_UN.path + bytes.length };
}

/** A non-blocking, close-on-exec unix stream socket fd. */
function unixSocket(path: string): number {
  return check(libc().socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), "socket", path);
}

/** socket + bind + listen on `path`, non-blocking and close-on-exec. */
export function listenUnix(path: string, backlog = 4): number {
  const { addr, len } = sockaddrUn(path, "bind");
  const fd = unixSocket(path);
  try {
    check(libc().bind(fd, addr, len), "bind", path);
    check(libc().listen(fd, backlog), "listen", path);
    return fd;
  } catch (e) {
    libc().close(fd);
    throw e;
  }
}

/**
 * Whether something listens on the unix socket `path`, without waiting: a non-blocking connect either succeeds at
 * once, is refused (no listener: ECONNREFUSED, ENOENT...) or finds the backlog full (EAGAIN: a listener that is
 * alive but busy, which counts as alive). The connection is closed right away.
 */
export function unixListening(path: string): boolean {
  let target: { addr: Uint8Array; len: number };
  try {
    target = sockaddrUn(path, "connect");
  } catch {
    return false;
  }
  const fd = unixSocket(path);
  try {
    if (libc().connect(fd, target.addr, target.len) === 0) return true;
    return errno() === EAGAIN;
  } finally {
    libc().close(fd);
  }
}

/** Waits up to `ms` for `fd` to become readable (any fd < 0: just sleeps); true when it did. Blocks the thread. */
function pollIn(fd: number, ms: number): boolean {
  const pfd = new Uint8Array(POLLFD.size);
  const view = new DataView(pfd.buffer);
  view.setInt32(POLLFD.fd, fd, true);
  view.setInt16(POLLFD.events, POLLIN, true);
  const n = libc().poll(pfd, fd < 0 ? 0n : 1n, Math.max(0, Math.ceil(ms)));
  return n > 0;
}

/** What {@link unixExchange} got. */
export type Exchange =
  /** Nothing listens on the path (no file, refused, or still a full backlog at the deadline). */
  | { kind: "absent" }
  /** Connected and sent; `data` is everything read until `complete` said so, EOF, or the deadline. */
  | { kind: "answered"; data: Uint8Array; complete: boolean };

/**
 * Connects to `path`, writes `request` and reads until `complete(received)` is true, the peer closes, or `timeoutMs`
 * passed: a synchronous round trip for short-lived commands, where starting Deno's async I/O and timers costs more
 * than the exchange. A full backlog (EAGAIN) is retried until the deadline.
 */
export function unixExchange(
  path: string,
  request: Uint8Array,
  complete: (received: Uint8Array) => boolean,
  timeoutMs: number,
): Exchange {
  let target: { addr: Uint8Array; len: number };
  try {
    target = sockaddrUn(path, "connect");
  } catch {
    return { kind: "absent" };
  }
  const deadline = performance.now() + timeoutMs;
  const fd = unixSocket(path);
  try {
    while (libc().connect(fd, target.addr, target.len) !== 0) {
      const e = errno();
      if (e === EINTR) continue;
      if (e !== EAGAIN || performance.now() >= deadline) return { kind: "absent" };
      pollIn(-1, 5);
    }
    for (let off = 0; off < request.length;) {
      const n = libc().write(fd, request.subarray(off), BigInt(request.length - off));
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        if (e === EAGAIN && performance.now() < deadline) {
          pollIn(-1, 1);
          continue;
        }
        return { kind: "answered", data: new Uint8Array(), complete: false };
      }
      off += n;
    }
    let received = new Uint8Array();
    const buf = new Uint8Array(4096);
    while (!complete(received)) {
      const left = deadline - performance.now();
      if (left <= 0) return { kind: "answered", data: received, complete: false };
      if (!pollIn(fd, left)) continue;
      const n = libc().read(fd, buf, BigInt(buf.length));
      if (n < 0) {
        const e = errno();
        if (e === EINTR || e === EAGAIN) continue;
        return { kind: "answered", data: received, complete: false };
      }
      if (n === 0) return { kind: "answered", data: received, complete: false };
      const next = new Uint8Array(received.length + n);
      next.set(received);
      next.set(buf.subarray(0, n), received.length);
      received = next;
    }
    return { kind: "answered", data: received, complete: true };
  } finally {
    libc().close(fd);
  }
}
