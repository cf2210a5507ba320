/**
 * Giving memory back to the kernel, for a long-lived process whose work comes in bursts: glibc malloc's free pages, the
 * pages of the main thread's stack that lie below where it runs now, and those of the shared scratch buffers.
 *
 * A stack page, once touched, stays in the process's private dirty memory until it exits: the kernel does not know
 * that the part below the stack pointer is dead. A Deno process touches ~420 KiB of its main thread's stack while it
 * starts (module compilation recurses deeply), and an idle server runs a few KiB deep. Every idle Deno process pays
 * that; a long-lived shim server need not. `madvise(MADV_DONTNEED)` on the range below the stack pointer, minus a
 * margin, drops those pages; if the thread goes that deep again, the kernel hands it zeroed pages, which is all a
 * stack below its pointer may hold.
 *
 * The stack pointer is read from `/proc/thread-self/syscall` (the thread's own read of it is the system call it shows,
 * with its stack pointer), the stack's range from `/proc/self/maps` (the `[stack]` line: only the main thread's stack
 * is named so, and the kernel never merges it with a neighbouring mapping).
 *
 * @example
 * ```ts
 * import { idleStackRelease, trimMalloc } from "./memory.ts";
 * const release = idleStackRelease(); // reads /proc now
 * trimMalloc();
 * const bytes = release(); // 0 when there was nothing to give back (or not on the main thread)
 * ```
 * @module
 */
import { addressOf, libc } from "./libc.ts";
import { readFile } from "./procfs.ts";

const MADV_DONTNEED = 4;
/**
 * What stays below the stack pointer: room for the frames of the calls that follow the read of it (the madvise
 * itself, a few KiB). The range's end is aligned down to {@linkcode ALIGN}, which leaves 64–128 KiB in all.
 */
export const STACK_MARGIN = 64 * 1024;
/** The largest page size of the architectures the shim runs on (64 KiB on some aarch64 kernels). */
const ALIGN = 64 * 1024;

/**
 * The range `[start, start + length)` of the main thread's stack that lies more than `margin` below the stack pointer
 * shown in `syscallText` (`/proc/thread-self/syscall`), within the `[stack]` mapping of `mapsText`
 * (`/proc/self/maps`); undefined when the thread is not in a system call, not on that stack, or nothing is that deep.
 */
export function idleStackRange(
  syscallText: string,
  mapsText: string,
  margin: number = STACK_MARGIN,
): { start: number; length: number } | undefined {
  // "nr arg1 … arg6 sp pc" in a system call, "-1 sp pc" blocked outside one, "running" otherwise.
  const fields = syscallText.trim().split(/\s+/);
  if (fields.length < 3 || fields[0] === "running") return undefined;
  const sp = Number.parseInt(fields[fields.length - 2], 16);
  if (!Number.isSafeInteger(sp) || sp <= 0) return undefined;
  for (const line of mapsText.split("\n")) {
    if (!line.endsWith("[stack]")) continue;
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (!m) return undefined;
    const lo = Number.parseInt(m[1], 16), hi = Number.parseInt(m[2], 16);
    if (sp < lo || sp >= hi) return undefined;
    const end = Math.floor((sp - margin) / ALIGN) * ALIGN;
    return end > lo ? { start: lo, length: end - lo } : undefined;
  }
  return undefined;
}

/**
 * Reads where the main thread's stack pointer is now and returns what drops the stack pages below it (minus
 * {@linkcode STACK_MARGIN}): a call that reads no file, so a caller can read first, collect the garbage of the
 * reading, and release after. The release returns how many bytes of address range it gave back (not all were
 * necessarily resident), 0 when there was nothing to do. Must be called from the main thread, which JS runs on in
 * `deno run`; from any other the stack pointer is outside `[stack]` and nothing is released. Never throws: the pages
 * are only memory, not worth a failure.
 */
export function idleStackRelease(margin: number = STACK_MARGIN): () => number {
  let range: { start: number; length: number } | undefined;
  try {
    // Through libc (Deno reads nothing under /proc without --allow-all), on this thread: the system call the file
    // shows is this very read.
    range = idleStackRange(readFile("/proc/thread-self/syscall"), readFile("/proc/self/maps"), margin);
  } catch {
    range = undefined;
  }
  if (!range) return () => 0;
  const { start, length } = range;
  return () => {
    try {
      return libc().madvise(BigInt(start), BigInt(length), MADV_DONTNEED) === 0 ? length : 0;
    } catch {
      return 0;
    }
  };
}

/** glibc's malloc_trim(0): the free pages of every arena back to the kernel (and the main heap's free end). */
export function trimMalloc(): void {
  try {
    libc().malloc_trim(0n);
  } catch { /* without FFI nothing to trim */ }
}

/** Every buffer made by {@linkcode scratchBuffer}. */
const scratchBuffers: Uint8Array[] = [];

/**
 * A module's scratch buffer (off V8's moving heap) whose contents are dead between uses: each use fills it and copies
 * what it needs out of it synchronously, within one turn of JS. The pages a burst of work touched in it are given
 * back by {@linkcode releaseScratchBuffers}, which may run at any point where no such use is on the stack: a timer's
 * callback, say.
 */
export function scratchBuffer(size: number): Uint8Array {
  const buf = new Uint8Array(new ArrayBuffer(size));
  scratchBuffers.push(buf);
  return buf;
}

/**
 * Gives back the whole pages inside every {@linkcode scratchBuffer} (the next use finds them zeroed, and fills them
 * anyway); returns how many bytes of address range that was. Never throws.
 */
export function releaseScratchBuffers(): number {
  let released = 0;
  for (const buf of scratchBuffers) {
    try {
      const at = Number(addressOf(buf));
      // 4 KiB pages, else (a 64 KiB-page kernel refuses an unaligned start) 64 KiB ones.
      for (const page of [4096, ALIGN]) {
        const start = Math.ceil(at / page) * page, end = Math.floor((at + buf.byteLength) / page) * page;
        if (end <= start) break;
        if (libc().madvise(BigInt(start), BigInt(end - start), MADV_DONTNEED) === 0) {
          released += end - start;
          break;
        }
      }
    } catch { /* only memory */ }
  }
  return released;
}
