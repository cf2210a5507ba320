/**
 * Raw I/O on non-blocking fds (pipes, fifos, pty masters, sockets): sync `read`/`write` that report "would block"
 * as -1, and async helpers that wait through the {@linkcode poller} when they would block.
 *
 * The sync calls run on the JS thread (so errno is visible and there is no thread hop per chunk). A stream that
 * always has data would then never leave the microtask queue, starving timers and other I/O (27 ms stalls were
 * measured), so the async helpers take a real event-loop turn ({@linkcode Poller.turn}) whenever they have run for
 * more than {@linkcode YIELD_AFTER_MS} without one.
 *
 * @example
 * ```ts
 * import { copy, pipe } from "./fdio.ts";
 * const [r, w] = pipe();
 * // ... hand w to a child, close our copy of w ...
 * const bytes = await copy(r, outFd); // until EOF
 * ```
 * @module
 */

import { O_APPEND, O_CLOEXEC, O_CREAT, O_NONBLOCK, O_WRONLY } from "./abi.ts";
import { EAGAIN, SysError } from "./errno.ts";
import { callAgain, check, cstr, errno, libc } from "./libc.ts";
import { existingPoller, poller } from "./poller.ts";

/** Longest stretch of back-to-back sync I/O before the async helpers yield to the event loop. */
export const YIELD_AFTER_MS = 2;

/** When the current slice of sync I/O began; undefined until the first I/O (see {@linkcode overBudget}). */
let sliceStart: number | undefined;

/**
 * Whether this module's I/O has run for too long without a real event-loop turn. The first slice starts with the
 * first I/O, not when this module loaded: a server's first read (its first connection, already waiting when it
 * accepted) then costs no yield, which would create the poller and wait for a turn through its thread (5-6 ms of
 * the first answer here).
 */
function overBudget(): boolean {
  const now = performance.now();
  if (sliceStart === undefined) sliceStart = now;
  return now - sliceStart >= YIELD_AFTER_MS;
}

/** Takes a real event-loop turn so that timers and other I/O get to run. */
async function yieldTurn(): Promise<void> {
  await poller().turn();
  sliceStart = performance.now();
}

/**
 * For loops of sync I/O outside this module (socket streams): a promise to await when the time slice is used up
 * (a real event-loop turn), else undefined, so the common case costs no promise.
 */
export function paceIo(): Promise<void> | undefined {
  return overBudget() ? yieldTurn() : undefined;
}

/** Waits for readiness of `fd` through the poller and starts a new time slice (see {@linkcode paceIo}). */
export async function waitFor(fd: number, direction: "read" | "write", signal?: AbortSignal): Promise<void> {
  await poller().wait(fd, direction, signal);
  sliceStart = performance.now();
}

/**
 * read(2) into `buf`: the number of bytes (> 0), 0 at end of file, or -1 if it would block. Retries EINTR and
 * throws SysError for anything else (a pty master whose slave side is all closed fails with EIO).
 */
export function read(fd: number, buf: Uint8Array): number {
  for (;;) {
    const n = libc().read(fd, buf, BigInt(buf.byteLength));
    if (n >= 0) return n;
    const err = errno();
    if (err === EAGAIN) return -1;
    if (!callAgain(err)) throw new SysError("read", err, `fd ${fd}`);
  }
}

/**
 * write(2) from `buf`: the number of bytes written (possibly fewer than `buf.length`), or -1 if it would block.
 * Retries EINTR and throws SysError for anything else, e.g. EPIPE when no reader is left (SIGPIPE is ignored by Deno).
 */
export function write(fd: number, buf: Uint8Array): number {
  return writeBytes(fd, buf, buf.byteLength);
}

/** write(2) of the first `len` bytes of `buf`, without making a subarray. */
function writeBytes(fd: number, buf: Uint8Array, len: number): number {
  for (;;) {
    const n = libc().write(fd, buf, BigInt(len));
    if (n >= 0) return n;
    const err = errno();
    if (err === EAGAIN) return -1;
    if (!callAgain(err)) throw new SysError("write", err, `fd ${fd}`);
  }
}

/**
 * Reads at least one byte into `buf`, waiting for readiness as needed; resolves to the count, or 0 at end of file.
 * Rejects with `signal.reason` on abort. (A fifo opened for reading before any writer connected reads as EOF:
 * wait for readability first, see fifo.ts.)
 */
export function readAsync(fd: number, buf: Uint8Array, signal?: AbortSignal): Promise<number> {
  // Fast path without an async frame: data is usually there, and a copy loop calls this once per chunk.
  if (!overBudget() && !signal?.aborted) {
    const n = read(fd, buf);
    if (n >= 0) return Promise.resolve(n);
  }
  return readSlow(fd, buf, signal);
}

async function readSlow(fd: number, buf: Uint8Array, signal?: AbortSignal): Promise<number> {
  if (overBudget()) await yieldTurn();
  for (;;) {
    signal?.throwIfAborted();
    const n = read(fd, buf);
    if (n >= 0) return n;
    await waitFor(fd, "read", signal);
  }
}

/** Writes all of `buf`, waiting for writability as needed. Rejects with SysError (EPIPE...) or on abort. */
export function writeAll(fd: number, buf: Uint8Array, signal?: AbortSignal): Promise<void> {
  if (!overBudget() && !signal?.aborted) {
    let n: number;
    try {
      n = write(fd, buf);
    } catch (err) {
      // Always a rejection, never a throw: callers chain .catch() (a throw there became an unhandled rejection).
      return Promise.reject(err);
    }
    if (n === buf.byteLength) return Promise.resolve();
    if (n > 0) return writeSlow(fd, buf.subarray(n), buf.byteLength - n, signal);
  }
  return writeSlow(fd, buf, buf.byteLength, signal);
}

async function writeSlow(fd: number, buf: Uint8Array, len: number, signal?: AbortSignal): Promise<void> {
  if (overBudget()) await yieldTurn();
  let off = 0;
  while (off < len) {
    signal?.throwIfAborted();
    // The common case writes everything at once: only a partial write pays for a subarray.
    const n = off === 0 ? writeBytes(fd, buf, len) : writeBytes(fd, buf.subarray(off), len - off);
    if (n < 0) await waitFor(fd, "write", signal);
    else off += n;
  }
}

/** Options of {@linkcode copy}. */
export interface CopyOptions {
  /** Read size; pipes and fifos hand out at most their capacity (64 KiB by default) per read. */
  bufferSize?: number;
  signal?: AbortSignal;
}

/**
 * Copies from `src` to `dst` until end of file on `src`; resolves to the number of bytes copied. One buffer is
 * allocated per call and reused for every chunk. `src` and `dst` must be non-blocking (or always-ready) fds.
 * A pty master signals its end with SysError EIO rather than EOF; a console copy catches that (`isErrno(e, EIO)`).
 */
export async function copy(src: number, dst: number, options: CopyOptions = {}): Promise<number> {
  const { signal } = options;
  const buf = new Uint8Array(options.bufferSize ?? 128 * 1024);
  let total = 0;
  // Plain sync calls per chunk, no promise unless something would block or the time slice is used up: this is
  // the loop that carries container output, so per-chunk overhead is what bounds throughput.
  for (;;) {
    signal?.throwIfAborted();
    if (overBudget()) await yieldTurn();
    const n = read(src, buf);
    if (n === 0) return total;
    if (n < 0) {
      await waitFor(src, "read", signal);
      continue;
    }
    let off = 0;
    while (off < n) {
      const k = off === 0 ? writeBytes(dst, buf, n) : writeBytes(dst, buf.subarray(off), n - off);
      if (k >= 0) off += k;
      else {
        signal?.throwIfAborted();
        await waitFor(dst, "write", signal);
      }
    }
    total += n;
  }
}

/** open(path, O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, 0644): a blocking fd for appending (regular files write at once). */
export function openAppend(path: string): number {
  return check(libc().open(cstr(path), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644), "open", path);
}

/** A pipe as `[readFd, writeFd]`, with pipe2(2) `flags` on both ends (default O_CLOEXEC|O_NONBLOCK). */
export function pipe(flags: number = O_CLOEXEC | O_NONBLOCK): [number, number] {
  const fds = new Int32Array(2);
  check(libc().pipe2(fds, flags), "pipe2");
  return [fds[0], fds[1]];
}

/** Forgets `fd` in the poller (failing its pending waits with EBADF), then closes it. */
export function closeFd(fd: number): void {
  existingPoller()?.forget(fd);
  check(libc().close(fd), "close", `fd ${fd}`);
}
