/**
 * Reads a raw stream fd (a connected socket or a pipe) on Deno's own I/O reactor, the event loop's epoll on the main
 * thread, instead of waiting for readiness on the {@linkcode poller}, whose `epoll_wait` is a `nonblocking: true` FFI
 * call that Deno completes through a blocking-pool thread: a second thread to wake per event (~50 µs per wake-up
 * against ~15 µs here, measured with Deno 2.9.6; the numbers are in bench/analysis.md).
 *
 * The only Deno API that takes an arbitrary fd onto the reactor without a net permission is Node compatibility's
 * stream handle (`process.binding("pipe_wrap").Pipe`, what `new net.Socket({ fd })` is built on): `open(fd)` adopts
 * the fd as it is (no dup: closing the handle closes the fd), `readStart` delivers each chunk as a fresh ArrayBuffer
 * of exactly the bytes read, with the count or a negative errno in `stream_wrap`'s shared state. This module uses
 * that handle and nothing of `node:net`'s streams, and turns it back into pull-style reads with back-pressure:
 * reading stops while {@linkcode QUEUE_LIMIT} bytes wait for a reader. The first use boots Node compatibility in
 * the process, once: measured in the shim's server, 20–80 ms of main-thread time (quiet to loaded 2-vCPU host) and
 * ~2 MiB of PSS, which is why the shim only boots it when a connection is idle (`"auto"` in unix_stream.ts).
 *
 * A handle keeps the process alive only while a read waits, as a pending poller wait does.
 *
 * Where the binding is missing or refuses the fd, {@linkcode ReactorReader.open} returns undefined and the caller
 * keeps the poller.
 *
 * @example
 * ```ts
 * import { ReactorReader } from "./reactor_reader.ts";
 * declare const socketFd: number;
 * const reader = ReactorReader.open(socketFd); // takes ownership of the fd
 * if (reader) {
 *   const chunk = await reader.read(); // null at end of file
 *   reader.close(); // closes the fd
 * }
 * ```
 * @module
 */

import { SysError } from "./errno.ts";

/** Reading stops while this many bytes are read but not yet taken by a reader (one more chunk may arrive). */
export const QUEUE_LIMIT = 64 * 1024;

/** libuv's end-of-file code. */
const UV_EOF = -4095;

/** The part of Node compatibility's `Pipe` handle used here. */
interface PipeHandle {
  open(fd: number): number;
  readStart(): number;
  readStop(): number;
  close(cb?: () => void): void;
  ref(): void;
  unref(): void;
  onread: ((buf?: ArrayBuffer) => void) | null;
}

interface Binding {
  Pipe: new (type: number) => PipeHandle;
  socketType: number;
  state: Int32Array;
  kNread: number;
  kOffset: number;
}

type NodeProcess = { binding?: (name: string) => unknown } | undefined;

let binding: Binding | null | undefined;
let processSource: () => NodeProcess = () => (globalThis as { process?: NodeProcess }).process;

/**
 * Where to find Node's `process` object, for a program that hides the `process` global (the shim does, so that
 * bundled npm code does not boot Node compatibility at start-up): pass the global's original getter before hiding
 * it. Node compatibility then boots only when the first fd is adopted.
 */
export function setNodeProcessSource(get: () => unknown): void {
  processSource = get as () => NodeProcess;
  if (binding === null) binding = undefined; // a failed look-up through the hidden global may succeed now
}

/** Node compatibility's stream handle, or null when this runtime has none (checked once). */
function loadBinding(): Binding | null {
  if (binding !== undefined) return binding;
  binding = null;
  try {
    const proc = processSource();
    if (typeof proc?.binding !== "function") return binding;
    const pipeWrap = proc.binding("pipe_wrap") as {
      Pipe?: new (type: number) => PipeHandle;
      constants?: { SOCKET?: number };
    };
    const streamWrap = proc.binding("stream_wrap") as {
      streamBaseState?: Int32Array;
      kReadBytesOrError?: number;
      kArrayBufferOffset?: number;
    };
    const { Pipe, constants } = pipeWrap;
    const { streamBaseState, kReadBytesOrError, kArrayBufferOffset } = streamWrap;
    if (
      typeof Pipe !== "function" || typeof constants?.SOCKET !== "number" ||
      !(streamBaseState instanceof Int32Array) || typeof kReadBytesOrError !== "number" ||
      typeof kArrayBufferOffset !== "number"
    ) return binding;
    binding = {
      Pipe,
      socketType: constants.SOCKET,
      state: streamBaseState,
      kNread: kReadBytesOrError,
      kOffset: kArrayBufferOffset,
    };
  } catch {
    binding = null;
  }
  return binding;
}

/** Whether fds can be read on the reactor in this runtime (boots Node compatibility on first call). */
export function reactorReadsAvailable(): boolean {
  return loadBinding() !== null;
}

/** Whether Node compatibility's stream handle is already loaded, so that adopting an fd costs nothing more. */
export function reactorReadsReady(): boolean {
  return !!binding;
}

/** Pull-style reads of one fd on Deno's reactor. Owns the fd from {@linkcode ReactorReader.open} on. */
export class ReactorReader {
  readonly #fd: number;
  readonly #handle: PipeHandle;
  readonly #binding: Binding;
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  /** undefined while the stream is open; null after end of file; the error after a failed read. */
  #end: SysError | null | undefined;
  #waiter: PromiseWithResolvers<Uint8Array | null> | null = null;
  #reading = false;
  #closed = false;

  private constructor(fd: number, handle: PipeHandle, b: Binding) {
    this.#fd = fd;
    this.#handle = handle;
    this.#binding = b;
    handle.onread = (buf) => this.#onRead(buf);
    // Only a waiting read keeps the process alive (see #wait).
    handle.unref();
  }

  /**
   * Adopts `fd` (a non-blocking connected stream socket or pipe) onto the reactor; from then on the reader owns it
   * and {@linkcode close} closes it. Undefined, with `fd` untouched, when this runtime cannot do that.
   */
  static open(fd: number): ReactorReader | undefined {
    const b = loadBinding();
    if (!b) return undefined;
    let handle: PipeHandle;
    try {
      handle = new b.Pipe(b.socketType);
      if (handle.open(fd) !== 0) return undefined;
    } catch {
      return undefined;
    }
    return new ReactorReader(fd, handle, b);
  }

  /** Bytes read from the fd that no {@linkcode read} has taken yet (at most about QUEUE_LIMIT + one chunk). */
  get queuedBytes(): number {
    return this.#queued;
  }

  /**
   * The next chunk (at most 64 KiB, in a new array the caller owns), null at end of file (and on every read after
   * it). Rejects with SysError for a failed read (ECONNRESET...), with `Deno.errors.BadResource` once closed, and
   * when another read is still waiting.
   */
  read(): Promise<Uint8Array | null> {
    if (this.#closed) return Promise.reject(closedError());
    const chunk = this.#queue.shift();
    if (chunk) {
      this.#queued -= chunk.length;
      // The reader keeps up again: read ahead (bounded by QUEUE_LIMIT) so the next call finds data.
      if (this.#queued < QUEUE_LIMIT) this.#start();
      return Promise.resolve(chunk);
    }
    if (this.#end === null) return Promise.resolve(null);
    if (this.#end) return Promise.reject(this.#end);
    if (this.#waiter) return Promise.reject(new Error("a read is already waiting on this connection"));
    this.#start();
    if (this.#end !== undefined) return this.#end === null ? Promise.resolve(null) : Promise.reject(this.#end);
    this.#waiter = Promise.withResolvers();
    this.#handle.ref();
    return this.#waiter.promise;
  }

  /** Stops reading, closes the handle and the fd; a waiting read rejects with `Deno.errors.BadResource`. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop();
    this.#handle.onread = null;
    this.#handle.close();
    this.#queue.length = 0;
    this.#queued = 0;
    this.#settle((w) => w.reject(closedError()));
  }

  #start(): void {
    if (this.#reading || this.#end !== undefined || this.#closed) return;
    const r = this.#handle.readStart();
    if (r < 0) this.#finish(new SysError("read", -r, `fd ${this.#fd}`));
    else this.#reading = true;
  }

  #stop(): void {
    if (!this.#reading) return;
    this.#reading = false;
    this.#handle.readStop();
  }

  #onRead(buf?: ArrayBuffer): void {
    if (this.#closed) return;
    const { state, kNread, kOffset } = this.#binding;
    const n = state[kNread];
    if (n > 0 && buf) {
      const chunk = new Uint8Array(buf, state[kOffset], n);
      if (this.#waiter) {
        this.#settle((w) => w.resolve(chunk));
        return;
      }
      this.#queue.push(chunk);
      this.#queued += n;
      if (this.#queued >= QUEUE_LIMIT) this.#stop();
      return;
    }
    if (n >= 0) return; // nothing read (a spurious wake-up)
    this.#finish(n === UV_EOF ? null : new SysError("read", -n, `fd ${this.#fd}`));
  }

  /** End of file or a read error: no more reads; queued chunks are still handed out first. */
  #finish(end: SysError | null): void {
    this.#end = end;
    this.#stop();
    if (end === null) this.#settle((w) => w.resolve(null));
    else this.#settle((w) => w.reject(end));
  }

  #settle(fn: (w: PromiseWithResolvers<Uint8Array | null>) => void): void {
    const w = this.#waiter;
    if (!w) return;
    this.#waiter = null;
    if (!this.#closed) this.#handle.unref();
    fn(w);
  }
}

function closedError(): Deno.errors.BadResource {
  return new Deno.errors.BadResource("connection closed");
}
