/**
 * Serialized frame output for one connection: frames are written whole and in order, never interleaved, however
 * many callers enqueue concurrently. Small frames that queue up while a write is in flight are coalesced into one
 * write. A write error (dead peer) is reported once through `onError` and later frames are dropped.
 *
 * @example
 * ```ts
 * import { FrameWriter } from "./writer.ts";
 * const conn = await Deno.connect({ transport: "unix", path: "/tmp/x.sock" });
 * const w = new FrameWriter(conn, (err) => console.error("peer gone", err));
 * w.enqueue(new Uint8Array(10));
 * await w.flushed();
 * ```
 * @module
 */

/** The part of a connection the writer needs (`Deno.Conn` has it). */
export interface Writable {
  write(p: Uint8Array): Promise<number>;
}

/** Frames smaller than this are merged with their neighbours in the queue. */
const COALESCE_LIMIT = 64 * 1024;

export class FrameWriter {
  readonly #conn: Writable;
  readonly #onError: (err: unknown) => void;
  readonly #onProgress: (() => void) | undefined;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #running = false;
  #failed = false;
  #idleWaiters: (() => void)[] = [];

  /** `onProgress`, if given, is called after each completed write (a reader paused on {@link queuedBytes} resumes). */
  constructor(conn: Writable, onError: (err: unknown) => void, onProgress?: () => void) {
    this.#conn = conn;
    this.#onError = onError;
    this.#onProgress = onProgress;
  }

  /** Bytes enqueued and not yet written (including the write in flight). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** True once a write failed; nothing more will be written. */
  get failed(): boolean {
    return this.#failed;
  }

  /** True while frames are queued or being written. */
  get busy(): boolean {
    return this.#running;
  }

  /** Queues a complete frame. Never throws; failures go to `onError`. */
  enqueue(frame: Uint8Array): void {
    if (this.#failed) return;
    this.#queue.push(frame);
    this.#queuedBytes += frame.length;
    if (!this.#running) {
      this.#running = true;
      this.#pump();
    }
  }

  /** Resolves when everything queued so far has been written (or writing failed). */
  flushed(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops writing: queued frames are dropped and waiters released. Used when the connection is closed. */
  abandon(): void {
    this.#failed = true;
    this.#queue = [];
    this.#queuedBytes = 0;
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#failed) {
        const buf = this.#take();
        let off = 0;
        while (off < buf.length) off += await this.#conn.write(off === 0 ? buf : buf.subarray(off));
        if (this.#failed) break;
        this.#queuedBytes -= buf.length;
        this.#onProgress?.();
      }
    } catch (err) {
      if (!this.#failed) {
        this.abandon();
        this.#onError(err);
      }
    } finally {
      this.#running = false;
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Next buffer to write: the head frame alone, or several small frames merged. */
  #take(): Uint8Array {
    const q = this.#queue;
    const first = q[0];
    if (q.length === 1 || first.length >= COALESCE_LIMIT) {
      q.shift();
      return first;
    }
    let n = 0, total = 0;
    while (n < q.length && total + q[n].length <= COALESCE_LIMIT) total += q[n++].length;
    if (n <= 1) {
      q.shift();
      return first;
    }
    const out = new Uint8Array(total);
    let off = 0;
    for (const f of q.splice(0, n)) {
      out.set(f, off);
      off += f.length;
    }
    return out;
  }
}
