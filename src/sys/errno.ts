/**
 * Linux errno values and {@linkcode SysError}, the error every `src/sys` function throws when a system call fails.
 *
 * Pure data: this module does not touch FFI, so errors can be built and matched anywhere (tests included).
 * Numbers are the asm-generic ones, identical on x86-64 and aarch64.
 *
 * @example
 * ```ts
 * import { ENXIO, SysError } from "./errno.ts";
 * const e = new SysError("open", ENXIO, "/run/x/stdout");
 * e.message; // "open /run/x/stdout: No such device or address (ENXIO)"
 * e.code;    // "ENXIO"
 * ```
 * @module
 */

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const ENOEXEC = 8;
export const EBADF = 9;
export const ECHILD = 10;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const EXDEV = 18;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const ETXTBSY = 26;
export const EFBIG = 27;
export const ENOSPC = 28;
export const ESPIPE = 29;
export const EROFS = 30;
export const EMLINK = 31;
export const EPIPE = 32;
export const ERANGE = 34;
export const ENAMETOOLONG = 36;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ELOOP = 40;
export const ENODATA = 61;
export const ENOTSOCK = 88;
export const EOPNOTSUPP = 95;
export const EADDRINUSE = 98;
export const ECONNABORTED = 103;
export const ECONNRESET = 104;
export const ENOTCONN = 107;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;
export const EINPROGRESS = 115;
export const ECANCELED = 125;

/** errno → [symbolic name, glibc's strerror text]. */
const table: Record<number, [string, string]> = {
  [EPERM]: ["EPERM", "Operation not permitted"],
  [ENOENT]: ["ENOENT", "No such file or directory"],
  [ESRCH]: ["ESRCH", "No such process"],
  [EINTR]: ["EINTR", "Interrupted system call"],
  [EIO]: ["EIO", "Input/output error"],
  [ENXIO]: ["ENXIO", "No such device or address"],
  [E2BIG]: ["E2BIG", "Argument list too long"],
  [ENOEXEC]: ["ENOEXEC", "Exec format error"],
  [EBADF]: ["EBADF", "Bad file descriptor"],
  [ECHILD]: ["ECHILD", "No child processes"],
  [EAGAIN]: ["EAGAIN", "Resource temporarily unavailable"],
  [ENOMEM]: ["ENOMEM", "Cannot allocate memory"],
  [EACCES]: ["EACCES", "Permission denied"],
  [EFAULT]: ["EFAULT", "Bad address"],
  [EBUSY]: ["EBUSY", "Device or resource busy"],
  [EEXIST]: ["EEXIST", "File exists"],
  [EXDEV]: ["EXDEV", "Invalid cross-device link"],
  [ENODEV]: ["ENODEV", "No such device"],
  [ENOTDIR]: ["ENOTDIR", "Not a directory"],
  [EISDIR]: ["EISDIR", "Is a directory"],
  [EINVAL]: ["EINVAL", "Invalid argument"],
  [ENFILE]: ["ENFILE", "Too many open files in system"],
  [EMFILE]: ["EMFILE", "Too many open files"],
  [ENOTTY]: ["ENOTTY", "Inappropriate ioctl for device"],
  [ETXTBSY]: ["ETXTBSY", "Text file busy"],
  [EFBIG]: ["EFBIG", "File too large"],
  [ENOSPC]: ["ENOSPC", "No space left on device"],
  [ESPIPE]: ["ESPIPE", "Illegal seek"],
  [EROFS]: ["EROFS", "Read-only file system"],
  [EMLINK]: ["EMLINK", "Too many links"],
  [EPIPE]: ["EPIPE", "Broken pipe"],
  [ERANGE]: ["ERANGE", "Numerical result out of range"],
  [ENAMETOOLONG]: ["ENAMETOOLONG", "File name too long"],
  [ENOSYS]: ["ENOSYS", "Function not implemented"],
  [ENOTEMPTY]: ["ENOTEMPTY", "Directory not empty"],
  [ELOOP]: ["ELOOP", "Too many levels of symbolic links"],
  [ENODATA]: ["ENODATA", "No data available"],
  [ENOTSOCK]: ["ENOTSOCK", "Socket operation on non-socket"],
  [EOPNOTSUPP]: ["EOPNOTSUPP", "Operation not supported"],
  [EADDRINUSE]: ["EADDRINUSE", "Address already in use"],
  [ECONNABORTED]: ["ECONNABORTED", "Software caused connection abort"],
  [ECONNRESET]: ["ECONNRESET", "Connection reset by peer"],
  [ENOTCONN]: ["ENOTCONN", "Transport endpoint is not connected"],
  [ETIMEDOUT]: ["ETIMEDOUT", "Connection timed out"],
  [ECONNREFUSED]: ["ECONNREFUSED", "Connection refused"],
  [EINPROGRESS]: ["EINPROGRESS", "Operation now in progress"],
  [ECANCELED]: ["ECANCELED", "Operation canceled"],
};

/** The symbolic name of an errno ("ENXIO"), or "errno N" when it is not in the table. */
export function errnoName(errno: number): string {
  return table[errno]?.[0] ?? `errno ${errno}`;
}

/** The human text of an errno ("No such device or address"). */
export function errnoMessage(errno: number): string {
  return table[errno]?.[1] ?? `Unknown error ${errno}`;
}

/** A failed system call: which call, on what (path or fd, if known), and the errno. */
export class SysError extends Error {
  /** The raw errno value (compare with the constants of this module). */
  readonly errno: number;
  /** The failing call, e.g. "open" or "kill". */
  readonly syscall: string;
  /** The symbolic errno name, e.g. "ENOENT" (like Node's `err.code`). */
  readonly code: string;
  /** The path or object the call was about, if any. */
  readonly path?: string;

  constructor(syscall: string, errno: number, path?: string) {
    const where = path === undefined ? syscall : `${syscall} ${path}`;
    super(`${where}: ${errnoMessage(errno)} (${errnoName(errno)})`);
    this.name = "SysError";
    this.errno = errno;
    this.syscall = syscall;
    this.code = errnoName(errno);
    this.path = path;
  }
}

/** True when `e` is a {@linkcode SysError} carrying one of `errnos`. */
export function isErrno(e: unknown, ...errnos: number[]): e is SysError {
  return e instanceof SysError && errnos.includes(e.errno);
}
