/**
 * A unary ttrpc client over one connection: concurrent calls on odd, increasing stream ids, deadlines sent as
 * `timeout_nano` and enforced locally, metadata, and a {@link ClosedError} (`ttrpc: closed`) for every pending and
 * later call once the connection is gone.
 *
 * @example
 * ```ts
 * import { Client } from "./client.ts";
 * const client = await Client.connectUnix("/run/containerd/containerd.sock.ttrpc");
 * try {
 *   const reply = await client.call("containerd.services.events.ttrpc.v1.Events", "Forward", new Uint8Array(), {
 *     timeoutMs: 5000,
 *     metadata: { "containerd-namespace-ttrpc": "default" },
 *   });
 *   console.log(reply.length);
 * } finally {
 *   client.close();
 * }
 * ```
 * @module
 */
import { log } from "../log.ts";
import { type Conn, toConn } from "./conn.ts";
import { type Frame, FrameDecoder, type FrameHeader, FrameType, MAX_DATA_LENGTH } from "./frame.ts";
import { decodeResponse, encodeRequestFrame, type KeyValue } from "./message.ts";
import { canceled, ClosedError, Code, deadlineExceeded, errorFromStatus, internal, TtrpcError } from "./status.ts";
import { FrameWriter } from "./writer.ts";
import { Deadlines } from "./deadlines.ts";
import { turnEnded } from "../sys/immediate.ts";

/** Per-call options. */
export interface CallOptions {
  /** Deadline relative to now: sent to the server as `timeout_nano`, and the call rejects with DeadlineExceeded. */
  timeoutMs?: number;
  /** Metadata sent with the request; keys are lower-cased, an array value sends the key once per element. */
  metadata?: Record<string, string | string[]> | Map<string, string[]>;
  /** Cancels the call: it rejects with Canceled and a late answer is ignored. */
  signal?: AbortSignal;
}

/** Client settings. */
export interface ClientOptions {
  /** Called once when the connection is gone, with the reason (undefined after {@link Client.close}). */
  onClose?: (reason: unknown) => void;
}

interface PendingCall {
  resolve(payload: Uint8Array): void;
  reject(err: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const MAX_STREAM_ID = 0xffffffff;

/** A ttrpc client bound to one connection. */
export class Client {
  /** Resolves when the connection has closed, for whatever reason. */
  readonly closed: Promise<void>;
  readonly #conn: Conn;
  readonly #writer: FrameWriter;
  readonly #decoder: FrameDecoder;
  readonly #pending = new Map<number, PendingCall>();
  /** The calls' timeouts, under one timer for the connection (deadlines.ts). */
  readonly #deadlines = new Deadlines<number>((streamId) => this.#fail(streamId, deadlineExceeded()));
  readonly #onClose: ((reason: unknown) => void) | undefined;
  #nextStreamId = 1;
  #isClosed = false;
  #resolveClosed!: () => void;

  /**
   * Connects to a unix socket (`unix://` prefix allowed) with `Deno.connect` (which needs net permission) and
   * returns a client using it. Without net permission, connect another way and pass the {@link Conn} to the
   * constructor.
   */
  static async connectUnix(path: string, opts?: ClientOptions): Promise<Client> {
    const conn = await Deno.connect({ transport: "unix", path: path.replace(/^unix:\/\//, "") });
    return new Client(conn, opts);
  }

  /** Takes ownership of `conn`: it is read from at once and closed with the client. */
  constructor(conn: Conn | Deno.Conn, opts: ClientOptions = {}) {
    conn = toConn(conn);
    this.#conn = conn;
    this.#onClose = opts.onClose;
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
    this.#writer = new FrameWriter(conn, (err) => this.#shutdown(err));
    this.#decoder = new FrameDecoder({ onFrame: (f) => this.#onFrame(f), onOversize: (h) => this.#onOversize(h) });
    this.#readLoop();
  }

  /** True once the connection is closed; calls then fail with {@link ClosedError}. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Number of calls waiting for an answer. */
  get pendingCalls(): number {
    return this.#pending.size;
  }

  /**
   * Calls `service`/`method` with an encoded request message and resolves with the encoded reply. Rejects with a
   * {@link TtrpcError} carrying the server's status, DeadlineExceeded on timeout, Canceled on abort, ResourceExhausted
   * for a request over 4 MiB, and {@link ClosedError} when the connection is or becomes closed.
   */
  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    if (this.#isClosed) return Promise.reject(new ClosedError());
    const { signal, timeoutMs } = opts;
    if (signal?.aborted) return Promise.reject(canceled());
    if (timeoutMs !== undefined && !(timeoutMs > 0)) return Promise.reject(deadlineExceeded());
    const streamId = this.#nextStreamId;
    if (streamId > MAX_STREAM_ID) {
      const err = new TtrpcError(Code.ResourceExhausted, "ttrpc: stream ids exhausted on this connection");
      return Promise.reject(err);
    }
    let frame: Uint8Array;
    try {
      frame = encodeRequestFrame(streamId, {
        service,
        method,
        payload,
        timeoutNano: timeoutMs === undefined ? 0 : Math.round(timeoutMs * 1e6),
        metadata: opts.metadata ? toKeyValues(opts.metadata) : undefined,
      });
    } catch (err) {
      return Promise.reject(err);
    }
    this.#nextStreamId += 2;
    return new Promise<Uint8Array>((resolve, reject) => {
      const call: PendingCall = { resolve, reject, signal, onAbort: undefined };
      if (timeoutMs !== undefined) this.#deadlines.add(streamId, timeoutMs);
      if (signal) {
        call.onAbort = () => this.#fail(streamId, canceled());
        signal.addEventListener("abort", call.onAbort, { once: true });
      }
      this.#pending.set(streamId, call);
      this.#writer.enqueue(frame);
    });
  }

  /** Closes the connection; pending calls reject with {@link ClosedError}. */
  close(): void {
    this.#shutdown(undefined);
  }

  async #readLoop(): Promise<void> {
    let reason: unknown;
    try {
      while (!this.#isClosed) {
        const chunk = await this.#conn.read();
        if (chunk === null) break;
        this.#decoder.push(chunk);
        // What the answers just delivered set off (a handler's next step, a server's own answer) runs in this turn's
        // microtasks: read again after it, so that the next read's syscalls do not go first.
        await turnEnded();
      }
    } catch (err) {
      reason = err;
    }
    this.#shutdown(reason ?? new Deno.errors.UnexpectedEof("ttrpc: connection closed by peer"));
  }

  #onFrame(f: Frame): void {
    if (f.type !== FrameType.Response) return; // Data/unknown frames: nothing to do for a unary client
    const call = this.#take(f.streamId);
    if (!call) return; // answer to a call that timed out or was canceled
    let res;
    try {
      res = decodeResponse(f.data);
    } catch (err) {
      call.reject(internal(`ttrpc: failed to decode response: ${err instanceof Error ? err.message : err}`));
      return;
    }
    if (res.status && res.status.code !== Code.OK) call.reject(errorFromStatus(res.status));
    else call.resolve(res.payload);
  }

  #onOversize(h: FrameHeader): void {
    if (h.type !== FrameType.Response) return;
    const msg = `message length ${h.length} exceed maximum message size of ${MAX_DATA_LENGTH}`;
    this.#fail(h.streamId, new TtrpcError(Code.ResourceExhausted, msg));
  }

  /** Removes a pending call and releases its timer and abort listener. */
  #take(streamId: number): PendingCall | undefined {
    const call = this.#pending.get(streamId);
    if (!call) return undefined;
    this.#pending.delete(streamId);
    this.#deadlines.delete(streamId);
    if (call.onAbort) call.signal?.removeEventListener("abort", call.onAbort);
    return call;
  }

  #fail(streamId: number, err: unknown): void {
    this.#take(streamId)?.reject(err);
  }

  #shutdown(reason: unknown): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#deadlines.clear();
    this.#writer.abandon();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    for (const id of [...this.#pending.keys()]) this.#fail(id, new ClosedError(reason));
    this.#resolveClosed();
    if (this.#onClose) {
      try {
        this.#onClose(reason);
      } catch (err) {
        log.error("ttrpc: client onClose callback failed", { error: err });
      }
    }
  }
}

function toKeyValues(md: Record<string, string | string[]> | Map<string, string[]>): KeyValue[] {
  const out: KeyValue[] = [];
  const entries = md instanceof Map ? md.entries() : Object.entries(md);
  for (const [k, v] of entries) {
    const key = k.toLowerCase();
    if (Array.isArray(v)) { for (const value of v) out.push({ key, value }); }
    else out.push({ key, value: v });
  }
  return out;
}
