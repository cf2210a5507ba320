/**
 * runc's `--console-socket` receiver and pty window-size control.
 *
 * For a container with `process.terminal: true`, runc connects to a unix socket that we listen on and sends the pty
 * master over SCM_RIGHTS (payload: the pty's name, e.g. "/dev/ptmx"). {@linkcode ConsoleSocket} listens in a fresh
 * temp directory, accepts through the poller (the JS thread never blocks), and hands back the master as an
 * O_NONBLOCK|O_CLOEXEC fd for fdio. Once every slave fd is closed (the container's processes exited), reading
 * the master fails with SysError EIO: for a console that means end of output.
 *
 * @example
 * ```ts
 * import { ConsoleSocket, resizePty } from "./console.ts";
 * const socket = await ConsoleSocket.create();
 * try {
 *   // runc create --console-socket ${socket.path} ...
 *   const master = await socket.receiveMaster();
 *   resizePty(master, 132, 40);
 * } finally {
 *   socket.close();
 * }
 * ```
 * @module
 */

import { SOCK_CLOEXEC, SOCK_NONBLOCK, TIOCGWINSZ, TIOCSWINSZ, WINSIZE } from "./abi.ts";
import { EAGAIN, ECONNABORTED, EINTR, SysError } from "./errno.ts";
import { check, cstr, errno, libc, setNonblocking } from "./libc.ts";
import { existingPoller, poller } from "./poller.ts";
import { listenUnix } from "./unix_socket.ts";
import { receiveWithFds } from "./fd_passing.ts";
import { after } from "../timer.ts";

const decoder = new TextDecoder();

/** A pty window size in character cells. */
export interface PtySize {
  cols: number;
  rows: number;
}

/** What runc sent: the pty master and the name it gave it. */
export interface ReceivedConsole {
  /** The pty master, O_NONBLOCK|O_CLOEXEC. The caller owns it. */
  fd: number;
  /** The message payload, normally "/dev/ptmx" or the slave's path. */
  name: string;
}

/** A listening unix socket in its own temp directory, for `runc create|exec --console-socket`. */
export class ConsoleSocket {
  /** The socket path to pass to runc. */
  readonly path: string;
  /** The temp directory holding the socket, removed by close(). */
  readonly dir: string;
  readonly #fd: number;
  readonly #closing = new AbortController();
  #closed = false;

  private constructor(dir: string, path: string, fd: number) {
    this.dir = dir;
    this.path = path;
    this.#fd = fd;
  }

  /**
   * Listens on `<tmp>/pty.sock`, where `<tmp>` is a new directory under `dir` (default: the system temp directory).
   * Throws SysError ENAMETOOLONG when the socket path exceeds the 107 bytes a unix socket address can hold.
   */
  static async create(dir?: string): Promise<ConsoleSocket> {
    const tmp = await Deno.makeTempDir({ dir, prefix: "pty" });
    const path = `${tmp}/pty.sock`;
    try {
      return new ConsoleSocket(tmp, path, listenUnix(path));
    } catch (e) {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      throw e;
    }
  }

  /**
   * Waits (up to `timeoutMs`) for runc to connect and send the pty master. Rejects with `Deno.errors.TimedOut` on
   * timeout, with an Error if the socket is closed meanwhile, and with SysError for system failures.
   */
  async receive(timeoutMs = 30000): Promise<ReceivedConsole> {
    if (this.#closed) throw new Error(`console socket ${this.path} is closed`);
    const timeout = new AbortController();
    // Unref'd (the accept's poller wait keeps the process alive), and not a Deno timer: src/timer.ts.
    const timer = after(
      timeoutMs,
      () => timeout.abort(new Deno.errors.TimedOut(`console socket ${this.path}: no pty from runc in ${timeoutMs} ms`)),
    );
    const signal = AbortSignal.any([this.#closing.signal, timeout.signal]);
    try {
      const conn = await this.#accept(signal);
      try {
        return await receiveFd(conn, signal);
      } finally {
        existingPoller()?.forget(conn);
        libc().close(conn);
      }
    } finally {
      timer.cancel();
    }
  }

  /** Like {@linkcode receive}, returning only the master fd (O_NONBLOCK|O_CLOEXEC; the caller closes it). */
  async receiveMaster(timeoutMs = 30000): Promise<number> {
    return (await this.receive(timeoutMs)).fd;
  }

  /** Closes the listener (failing a pending receive), and removes the socket and its temp directory. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort(new Error(`console socket ${this.path} is closed`));
    existingPoller()?.forget(this.#fd);
    const C = libc();
    C.close(this.#fd);
    C.unlink(cstr(this.path));
    C.rmdir(cstr(this.dir));
  }

  async #accept(signal: AbortSignal): Promise<number> {
    const C = libc();
    for (;;) {
      signal.throwIfAborted();
      const conn = C.accept4(this.#fd, null, null, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (conn >= 0) return conn;
      const err = errno();
      if (err === EAGAIN) await poller().wait(this.#fd, "read", signal);
      else if (err !== EINTR && err !== ECONNABORTED) throw new SysError("accept4", err, this.path);
    }
  }
}

/** The longest pty name runc sends with the master fd. */
const NAME_SIZE = 4096;

/** recvmsg on the connected socket until it yields the SCM_RIGHTS message: the pty master and its name. */
async function receiveFd(conn: number, signal: AbortSignal): Promise<ReceivedConsole> {
  signal.throwIfAborted();
  const { data, fds, truncated } = await receiveWithFds(conn, NAME_SIZE, 4, () => poller().wait(conn, "read", signal));
  // runc sends exactly one fd; anything extra (or a truncated set) is closed rather than leaked.
  const C = libc();
  if (fds.length === 0 || truncated) {
    for (const fd of fds) C.close(fd);
    throw new Error(
      data.length === 0 && fds.length === 0
        ? "console socket: runc closed the connection without sending a pty"
        : `console socket: expected one pty fd, got ${fds.length}${truncated ? " (control data truncated)" : ""}`,
    );
  }
  for (const extra of fds.slice(1)) C.close(extra);
  const fd = fds[0];
  try {
    setNonblocking(fd);
  } catch (e) {
    C.close(fd);
    throw e;
  }
  return { fd, name: decoder.decode(data) };
}

/** Sets the window size of the pty behind `fd` (master or slave); the foreground process group gets SIGWINCH. */
export function resizePty(fd: number, cols: number, rows: number): void {
  const ws = new Uint8Array(WINSIZE.size);
  const view = new DataView(ws.buffer);
  view.setUint16(WINSIZE.row, rows, true);
  view.setUint16(WINSIZE.col, cols, true);
  check(libc().ioctl(fd, BigInt(TIOCSWINSZ), ws), "ioctl(TIOCSWINSZ)", `fd ${fd}`);
}

/** The window size of the pty behind `fd`. */
export function getPtySize(fd: number): PtySize {
  const ws = new Uint8Array(WINSIZE.size);
  check(libc().ioctl(fd, BigInt(TIOCGWINSZ), ws), "ioctl(TIOCGWINSZ)", `fd ${fd}`);
  const view = new DataView(ws.buffer);
  return { cols: view.getUint16(WINSIZE.col, true), rows: view.getUint16(WINSIZE.row, true) };
}
