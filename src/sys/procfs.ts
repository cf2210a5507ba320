/**
 * Small-file reads and writes through libc, for /proc and /sys (cgroup files): Deno refuses any read of /proc or
 * /sys without `--allow-all`, even with `--allow-read=/proc`.
 *
 * These calls are synchronous on purpose. procfs/sysfs/cgroupfs files are generated in memory by the kernel, are
 * small, and never block on I/O, so a sync read is cheaper than a trip to a worker thread. Do not use these
 * functions for regular files on disks, fifos or devices.
 *
 * @example
 * ```ts
 * import { readFile, readFileOrNull } from "./procfs.ts";
 * const stat = readFile("/proc/self/stat");
 * const gone = readFileOrNull("/proc/999999/stat"); // null
 * ```
 * @module
 */

import { O_CLOEXEC, O_NOCTTY, O_RDONLY, O_TRUNC, O_WRONLY } from "./abi.ts";
import { EINTR, ENOENT, ESRCH, isErrno, SysError } from "./errno.ts";
import { check, cstr, errno, libc } from "./libc.ts";

const CHUNK = 4096;
/** Offset of `d_name` in glibc's `struct dirent` on LP64 (ino 8, off 8, reclen 2, type 1). */
const DIRENT_NAME = 19;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The whole content of `path` as bytes. Throws SysError (ENOENT, EACCES, ...). */
export function readBytes(path: string): Uint8Array<ArrayBuffer> {
  const C = libc();
  const fd = check(C.open(cstr(path), O_RDONLY | O_CLOEXEC | O_NOCTTY, 0), "open", path);
  try {
    let buf = new Uint8Array(CHUNK);
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        const bigger = new Uint8Array(buf.length * 2);
        bigger.set(buf);
        buf = bigger;
      }
      const n = C.read(fd, buf.subarray(len), BigInt(buf.length - len));
      if (n < 0) {
        const err = errno();
        if (err === EINTR) continue;
        throw new SysError("read", err, path);
      }
      if (n === 0) return buf.slice(0, len);
      len += n;
    }
  } finally {
    C.close(fd);
  }
}

/** The whole content of `path` as UTF-8 text. */
export function readFile(path: string): string {
  return decoder.decode(readBytes(path));
}

/**
 * Like {@linkcode readFile}, but `null` when the file does not exist: ENOENT, or ESRCH, which /proc/<pid>/ files
 * return when the process exits between open and read.
 */
export function readFileOrNull(path: string): string | null {
  try {
    return readFile(path);
  } catch (e) {
    if (isErrno(e, ENOENT, ESRCH)) return null;
    throw e;
  }
}

/**
 * Writes `data` to the existing file `path` (O_WRONLY|O_TRUNC, never creates) in one write(2), which is what
 * procfs and cgroup files expect: each write is parsed as one value. Throws SysError on failure or a short write.
 */
export function writeFile(path: string, data: string | Uint8Array): void {
  const C = libc();
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const fd = check(C.open(cstr(path), O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0), "open", path);
  try {
    for (;;) {
      const n = C.write(fd, bytes, BigInt(bytes.length));
      if (n >= 0) {
        if (n !== bytes.length) throw new Error(`write ${path}: short write (${n} of ${bytes.length} bytes)`);
        return;
      }
      const err = errno();
      if (err !== EINTR) throw new SysError("write", err, path);
    }
  } finally {
    C.close(fd);
  }
}

/** The entry names of directory `path` (without "." and ".."), in directory order. Throws SysError. */
export function listDirectory(path: string): string[] {
  const C = libc();
  const dir = C.opendir(cstr(path));
  if (dir === null) throw new SysError("opendir", errno(), path);
  const names: string[] = [];
  try {
    for (;;) {
      const ent = C.readdir(dir);
      if (ent === null) break; // end of directory (or an error, which readdir reports the same way)
      const name = Deno.UnsafePointerView.getCString(ent, DIRENT_NAME);
      if (name !== "." && name !== "..") names.push(name);
    }
  } finally {
    C.closedir(dir);
  }
  return names;
}
