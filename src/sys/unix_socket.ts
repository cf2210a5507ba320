/**
 * Unix stream sockets by path, through libc: a `sockaddr_un` builder, listen/accept/connect on non-blocking
 * close-on-exec fds, the peer's credentials (SO_PEERCRED), a synchronous probe for a live listener and a synchronous
 * request/answer exchange (what `start` asks before reusing a group's server). None of this needs Deno's net
 * permission. (A socket file's owner is libc.ts's `ownerUid`.)
 *
 * @example
 * ```ts
 * import { acceptUnix, listenUnix, peerCredentials } from "./unix_socket.ts";
 * const fd = listenUnix("/tmp/s.sock", 4096);
 * const conn = acceptUnix(fd); // -1 while nobody is waiting
 * if (conn >= 0) console.log(peerCredentials(conn).uid);
 * ```
 * @module
 */

import {
  AF_UNIX,
  F_SETFD,
  FD_CLOEXEC,
  LOCK_EX,
  O_CLOEXEC,
  O_RDONLY,
  POLLFD,
  POLLIN,
  SHUT_WR,
  SO_ACCEPTCONN,
  SO_ERROR,
  SO_PEERCRED,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOCKADDR_UN,
  SOL_SOCKET,
  UCRED,
} from "./abi.ts";
import { EADDRINUSE, EAGAIN, ECONNABORTED, EINPROGRESS, EINTR, ENAMETOOLONG, isErrno, SysError } from "./errno.ts";
import { callAgain, check, cstr, errno, lastError, libc, setNonblocking } from "./libc.ts";
import { sendWithFds } from "./fd_passing.ts";
// No static import of fdio.ts (and with it the poller, nudge and eventfd modules): `start` uses this module for its
// synchronous exchange. Together with start_boot.ts this took 2.8 ms off a `start` that reuses a server on a slow day
// (bench/analysis.md, session 9). connectUnix loads fdio for the one wait it may need.

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

/** socket + bind + listen on `path`, non-blocking and close-on-exec. Throws SysError (EADDRINUSE...). */
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
 * socket + bind + listen on `path` for a new server of a group (what `start` does, a server started by hand, a spare
 * taking its socket): the listening fd, or undefined when a live listener already owns the path (a concurrent `start`
 * of the same group won). Only a dead socket file, whose server is gone, is replaced.
 *
 * Under an exclusive flock(2) of the socket's directory, held by every caller for the few system calls this takes: a
 * socket that another caller has bound but not yet put to listen refuses connections exactly like a dead one, and
 * was taken for dead and replaced by a concurrent `start`, which left the first listener orphaned (its server then
 * waited a minute for a Create that could not reach it). The lock is released when its fd is closed.
 */
export function listenReplacingDead(path: string, backlog: number): number | undefined {
  const slash = path.lastIndexOf("/");
  const dir = slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
  const C = libc();
  const dirFd = check(C.open(cstr(dir), O_RDONLY | O_CLOEXEC, 0), "open", dir);
  try {
    while (C.flock(dirFd, LOCK_EX) !== 0) {
      if (errno() !== EINTR) throw lastError("flock", dir);
    }
    try {
      return listenUnix(path, backlog);
    } catch (err) {
      if (!isErrno(err, EADDRINUSE)) throw err;
    }
    if (unixListening(path)) return undefined;
    try {
      Deno.removeSync(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return listenUnix(path, backlog);
  } finally {
    C.close(dirFd);
  }
}

/**
 * Takes over a listening socket inherited as `fd` (what `start` hands the server it spawns): checks that it is one
 * (SO_ACCEPTCONN; ENOTSOCK for anything else), and makes it close-on-exec (dup2 onto an inherited fd number cleared
 * that, and no child of ours may hold the listener) and non-blocking. Throws SysError, or Error when not listening.
 */
export function adoptListening(fd: number): void {
  const v = new Int32Array(1);
  optLen[0] = 4;
  check(
    libc().getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, new Uint8Array(v.buffer), new Uint8Array(optLen.buffer)),
    "getsockopt(SO_ACCEPTCONN)",
    `fd ${fd}`,
  );
  if (v[0] === 0) throw new Error(`fd ${fd} is a socket that does not listen`);
  check(libc().fcntl(fd, F_SETFD, BigInt(FD_CLOEXEC)), "fcntl(F_SETFD)", `fd ${fd}`);
  setNonblocking(fd);
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

/**
 * accept4 on a non-blocking listening fd: a new non-blocking, close-on-exec connection fd, or -1 when no connection
 * is waiting. Connections that were aborted before being accepted are skipped. Throws SysError (EMFILE...).
 */
export function acceptUnix(listenFd: number): number {
  for (;;) {
    const fd = libc().accept4(listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    const err = errno();
    if (err === EAGAIN) return -1;
    if (!callAgain(err) && err !== ECONNABORTED) throw new SysError("accept4", err, `fd ${listenFd}`);
  }
}

/** Who is at the other end of a unix socket, as the kernel recorded it at connect time. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

const ucred = new Uint8Array(UCRED.size);
const ucredView = new DataView(ucred.buffer);
const optLen = new Uint32Array(1);

/** getsockopt(SO_PEERCRED): the peer's pid, uid and gid. Throws SysError. */
export function peerCredentials(fd: number): PeerCredentials {
  optLen[0] = UCRED.size;
  check(libc().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucred, new Uint8Array(optLen.buffer)), "getsockopt", `fd ${fd}`);
  return {
    pid: ucredView.getInt32(UCRED.pid, true),
    uid: ucredView.getUint32(UCRED.uid, true),
    gid: ucredView.getUint32(UCRED.gid, true),
  };
}

/** shutdown(SHUT_WR): the peer reads end of file; this side can still read. Throws SysError (ENOTCONN...). */
export function shutdownWrite(fd: number): void {
  check(libc().shutdown(fd, SHUT_WR), "shutdown", `fd ${fd}`);
}

/** How long {@linkcode connectUnix} keeps retrying a listener whose backlog is full. */
const CONNECT_BUSY_MS = 5000;

/**
 * Connects to the unix socket `path` (a `unix://` prefix is allowed) and resolves to a non-blocking, close-on-exec
 * fd. A listener whose backlog is full (EAGAIN) is retried with a growing pause for up to 5 s, as a blocking
 * connect would wait. Rejects with SysError (ENOENT, ECONNREFUSED, EAGAIN after the retries...).
 */
export async function connectUnix(path: string): Promise<number> {
  path = path.replace(/^unix:\/\//, "");
  const { addr, len } = sockaddrUn(path, "connect");
  const started = Date.now();
  for (let pause = 1;; pause = Math.min(pause * 2, 100)) {
    const fd = unixSocket(path);
    try {
      if (libc().connect(fd, addr, len) === 0) return fd;
      const err = errno();
      if (err === EINPROGRESS) {
        const { waitFor } = await import("./fdio.ts");
        await waitFor(fd, "write");
        const soErr = socketError(fd);
        if (soErr === 0) return fd;
        throw new SysError("connect", soErr, path);
      }
      if (err !== EAGAIN && err !== EINTR) throw new SysError("connect", err, path);
      if (Date.now() - started > CONNECT_BUSY_MS) throw new SysError("connect", err, path);
    } catch (e) {
      libc().close(fd);
      throw e;
    }
    libc().close(fd);
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

function socketError(fd: number): number {
  const v = new Int32Array(1);
  optLen[0] = 4;
  check(
    libc().getsockopt(fd, SOL_SOCKET, SO_ERROR, new Uint8Array(v.buffer), new Uint8Array(optLen.buffer)),
    "getsockopt",
  );
  return v[0];
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
  /**
   * Connected and sent; `data` is everything read until `complete` said so, EOF, or the deadline. `peerPid` is the
   * listener's process as the kernel recorded it at connect time; `error` the errno that ended the read or write early
   * (ECONNRESET: the listener closed with this connection still in its backlog, so it never accepted it); `eof` that
   * the peer closed its end before `complete` said so.
   */
  | { kind: "answered"; data: Uint8Array; complete: boolean; peerPid: number; error?: number; eof?: boolean };

/**
 * A request {@linkcode unixSend} wrote, whose answer is still to be read: {@linkcode SentRequest.receive} reads it and
 * closes the socket (call it once; until then the socket stays open).
 */
export interface SentRequest {
  kind: "sent";
  /**
   * Reads until `complete(received)` is true, the peer closes, or `timeoutMs` (from now) passed, then closes the
   * socket. What went wrong while sending is answered at once.
   */
  receive(complete: (received: Uint8Array) => boolean, timeoutMs: number): Exchange;
}

/**
 * The first half of {@linkcode unixExchange}: connects to `path` and writes `request` (with `opts.fds`), retrying a
 * full backlog (EAGAIN) for up to `timeoutMs`. The caller does other work while the peer answers, then reads the
 * answer with {@linkcode SentRequest.receive}.
 */
export function unixSend(
  path: string,
  request: Uint8Array,
  timeoutMs: number,
  opts: { fds?: readonly number[] } = {},
): { kind: "absent" } | SentRequest {
  let target: { addr: Uint8Array; len: number };
  try {
    target = sockaddrUn(path, "connect");
  } catch {
    return { kind: "absent" };
  }
  const deadline = performance.now() + timeoutMs;
  const fd = unixSocket(path);
  let open = true;
  const closeOnce = () => {
    if (open) libc().close(fd);
    open = false;
  };
  try {
    while (libc().connect(fd, target.addr, target.len) !== 0) {
      const e = errno();
      if (e === EINTR) continue;
      if (e !== EAGAIN || performance.now() >= deadline) {
        closeOnce();
        return { kind: "absent" };
      }
      pollIn(-1, 5);
    }
    const peerPid = peerCredentials(fd).pid;
    const unanswered = (error?: number): SentRequest => ({
      kind: "sent",
      receive: () => {
        closeOnce();
        return { kind: "answered", data: new Uint8Array(), complete: false, peerPid, error };
      },
    });
    for (let off = 0; off < request.length;) {
      let n: number;
      if (off === 0 && opts.fds?.length) {
        try {
          n = sendWithFds(fd, request, opts.fds);
        } catch (err) {
          return unanswered(err instanceof SysError ? err.errno : undefined);
        }
      } else {
        n = libc().write(fd, request.subarray(off), BigInt(request.length - off));
      }
      if (n < 0) {
        const e = errno();
        if (callAgain(e)) continue; // EINTR, or a clobbered errno (libc.ts): a write cannot fail with ENOENT
        if (e === EAGAIN && performance.now() < deadline) {
          pollIn(-1, 1);
          continue;
        }
        return unanswered(e);
      }
      off += n;
    }
    return {
      kind: "sent",
      receive: (complete, ms) => {
        try {
          return receiveAnswer(fd, peerPid, complete, performance.now() + ms);
        } finally {
          closeOnce();
        }
      },
    };
  } catch (err) {
    closeOnce();
    throw err;
  }
}

/** Reads from `fd` until `complete(received)`, end of file, an error or `deadline` (a `performance.now()` time). */
function receiveAnswer(
  fd: number,
  peerPid: number,
  complete: (received: Uint8Array) => boolean,
  deadline: number,
): Exchange {
  let received = new Uint8Array();
  const buf = new Uint8Array(4096);
  while (!complete(received)) {
    const left = deadline - performance.now();
    if (left <= 0) return { kind: "answered", data: received, complete: false, peerPid };
    if (!pollIn(fd, left)) continue;
    const n = libc().read(fd, buf, BigInt(buf.length));
    if (n < 0) {
      const e = errno();
      if (callAgain(e) || e === EAGAIN) continue; // (a read cannot fail with ENOENT: libc.ts, callAgain)
      return { kind: "answered", data: received, complete: false, peerPid, error: e };
    }
    if (n === 0) return { kind: "answered", data: received, complete: false, peerPid, eof: true };
    const next = new Uint8Array(received.length + n);
    next.set(received);
    next.set(buf.subarray(0, n), received.length);
    received = next;
  }
  return { kind: "answered", data: received, complete: true, peerPid };
}

/**
 * Connects to `path`, writes `request` and reads until `complete(received)` is true, the peer closes, or `timeoutMs`
 * passed: a synchronous round trip for short-lived commands, where starting Deno's async I/O and timers costs more
 * than the exchange. A full backlog (EAGAIN) is retried until the deadline. `opts.fds` go with the request's first
 * byte (SCM_RIGHTS; the peer gets copies, the caller keeps its own). {@linkcode unixSend} is its first half.
 */
export function unixExchange(
  path: string,
  request: Uint8Array,
  complete: (received: Uint8Array) => boolean,
  timeoutMs: number,
  opts: { fds?: readonly number[] } = {},
): Exchange {
  const deadline = performance.now() + timeoutMs;
  const sent = unixSend(path, request, timeoutMs, opts);
  return sent.kind === "absent" ? sent : sent.receive(complete, deadline - performance.now());
}
