/**
 * Named pipes with the semantics containerd's shims rely on: opens never block the shim.
 *
 * - `"w"` opens `O_WRONLY|O_NONBLOCK`: it fails at once with SysError ENXIO when no reader has the fifo open
 *   (callers use that to tell "client not attached"), and succeeds when one has.
 * - `"r"` opens `O_RDONLY|O_NONBLOCK` and always succeeds, but until a writer has connected a read returns 0, which
 *   looks like end of file. epoll reports nothing for such a fifo until a writer writes or connects and leaves, so
 *   wait for readability (`poller().wait(fd, "read")`) before the first read, then treat 0 as EOF.
 * - `"rw"` opens `O_RDWR|O_NONBLOCK`: never fails for lack of a peer, and as a writer never sees EPIPE (the fd is its
 *   own reader), which is how the Go shim keeps stdout writable while no client is attached.
 *
 * Every fd returned is O_NONBLOCK and O_CLOEXEC.
 *
 * @example
 * ```ts
 * import { mkfifo, openFifo } from "./fifo.ts";
 * import { ENXIO, isErrno } from "./errno.ts";
 * mkfifo("/tmp/x/stdout", 0o700);
 * try {
 *   openFifo("/tmp/x/stdout", "w");
 * } catch (e) {
 *   if (isErrno(e, ENXIO)) console.log("no reader yet");
 * }
 * ```
 * @module
 */

import { O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY, S_IFIFO, S_IFMT } from "./abi.ts";
import { ENOENT, isErrno } from "./errno.ts";
import { check, cstr, libc, statPath } from "./libc.ts";

/** How to open a fifo; see the module documentation. */
export type FifoMode = "r" | "w" | "rw";

const accessFlags: Record<FifoMode, number> = { r: O_RDONLY, w: O_WRONLY, rw: O_RDWR };

/** Creates a fifo at `path` with permission bits `mode` (minus the umask). Throws SysError EEXIST if it exists. */
export function mkfifo(path: string, mode = 0o600): void {
  check(libc().mkfifo(cstr(path), mode), "mkfifo", path);
}

/** Opens the fifo `path` without blocking; returns the fd (O_NONBLOCK|O_CLOEXEC). Throws SysError (ENXIO, ENOENT). */
export function openFifo(path: string, mode: FifoMode): number {
  const flags = accessFlags[mode];
  if (flags === undefined) throw new TypeError(`invalid fifo mode: ${mode}`);
  return check(libc().open(cstr(path), flags | O_NONBLOCK | O_CLOEXEC, 0), "open", path);
}

/** Whether `path` is a fifo (following symlinks). False when it does not exist; other errors throw SysError. */
export function isFifo(path: string): boolean {
  try {
    return (statPath(path).mode & S_IFMT) === S_IFIFO;
  } catch (err) {
    if (isErrno(err, ENOENT)) return false;
    throw err;
  }
}
