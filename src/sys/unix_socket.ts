/**
 * Unix stream sockets by path, through libc: a `sockaddr_un` builder, a listener for runc's console socket, and a
 * synchronous probe for a live listener (what `start` asks before reusing a group's server).
 * @module
 */

import { AF_UNIX, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, SOCKADDR_UN } from "./abi.ts";
import { EAGAIN, ENAMETOOLONG, SysError } from "./errno.ts";
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
