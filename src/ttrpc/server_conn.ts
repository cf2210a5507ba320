/**
 * One server-side ttrpc connection: reads frames, enforces the stream-id rules, runs each request's handler
 * concurrently with its deadline and cancellation, and writes the answers through a serialized writer.
 *
 * Back-pressure: a client that sends requests and does not read the answers must not make the server hold them
 * without bound. While more than {@link MAX_UNSENT_BYTES} of answers wait to be written, or more than
 * {@link MAX_UNANSWERED} requests wait for their handler, the connection stops reading; the client's writes then
 * block in its own socket buffer. Other connections are not affected.
 *
 * End of input is a half-close, not a hang-up: every request received before it is still answered, then the
 * connection closes.
 *
 * Internal to the server; {@link ConnectionHooks} is all it knows of it.
 *
 * @example
 * ```ts
 * import { ServerConnection } from "./server_conn.ts";
 * import { unimplemented } from "./status.ts";
 * const listener = Deno.listen({ transport: "unix", path: "/tmp/one.sock" });
 * const conn = new ServerConnection(await listener.accept(), {
 *   lookup: (service, method) => service === "x.v1.Echo" && method === "Echo" ? (p) => p : unimplemented(`method ${method}`),
 *   onClosed: () => listener.close(),
 *   maxDataLength: 4 << 20,
 * });
 * await conn.run();
 * ```
 * @module
 */
import { log } from "../log.ts";
import type { Conn } from "./conn.ts";
import { type Frame, FrameDecoder, type FrameHeader, FrameType } from "./frame.ts";
import type { CallContext, Handler } from "./handler.ts";
import { decodeRequest, encodeResponseFrame, type RequestMessage } from "./message.ts";
import {
  canceled,
  Code,
  deadlineExceeded,
  internal,
  invalidArgument,
  type Status,
  statusFromError,
  TtrpcError,
} from "./status.ts";
import { FrameWriter } from "./writer.ts";
import { Deadlines } from "./deadlines.ts";
import { turnEnded } from "../sys/immediate.ts";

/** What a connection needs from its server. */
export interface ConnectionHooks {
  /** The handler for a call, or the error to answer with (Unimplemented). */
  lookup(service: string, method: string): Handler | TtrpcError;
  /** Called once, when the connection has closed. */
  onClosed(conn: ServerConnection): void;
  /** Largest frame data accepted. */
  maxDataLength: number;
}

/** Reading pauses while more answer bytes than this are queued unsent; it resumes at half. */
export const MAX_UNSENT_BYTES = 1 << 20;
/** Reading pauses while more requests than this are being handled (the Go shim stops at ~20,000). */
export const MAX_UNANSWERED = 20_000;
const EMPTY = new Uint8Array(0);

/** A call whose answer has not been sent yet. */
interface PendingCall {
  streamId: number;
  /** Own controller when the call has a deadline; otherwise the connection's signal is used. */
  ctl: AbortController | undefined;
}

/** One accepted connection: reads frames, runs handlers, writes answers. */
export class ServerConnection {
  readonly #hooks: ConnectionHooks;
  readonly #conn: Conn;
  readonly #writer: FrameWriter;
  readonly #decoder: FrameDecoder;
  /** Aborted when the connection closes; the signal of calls without a deadline. */
  readonly #closed = new AbortController();
  readonly #pending = new Map<number, PendingCall>();
  #lastStreamId = 0;
  /** Handlers that have not settled yet (including ones already answered by their deadline). */
  #running = 0;
  #idleWaiters: (() => void)[] = [];
  #closeWhenIdle = false;
  /** Set while reading is paused by back-pressure: resumes the read loop. */
  #resume: (() => void) | undefined;
  /** Calls with a deadline, watched by one timer for the connection (deadlines.ts). */
  readonly #deadlines = new Deadlines<PendingCall>((call) => this.#expire(call));

  constructor(conn: Conn, hooks: ConnectionHooks) {
    this.#hooks = hooks;
    this.#conn = conn;
    this.#writer = new FrameWriter(conn, (err) => {
      log.debug("ttrpc: write failed; closing connection", { error: err });
      this.close();
    }, () => this.#maybeResume());
    this.#decoder = new FrameDecoder({
      onFrame: (f) => this.#onFrame(f),
      onOversize: (h) => this.#onOversize(h),
      maxDataLength: hooks.maxDataLength,
    });
  }

  /**
   * Reads and dispatches until end of input, a read error or {@link close}. At end of input the requests already
   * received are still answered; resolves once the connection has closed.
   */
  async run(): Promise<void> {
    try {
      while (!this.#closed.signal.aborted) {
        if (this.#overLimit()) {
          await new Promise<void>((resolve) => this.#resume = resolve);
          continue;
        }
        const chunk = await this.#conn.read();
        if (chunk === null) {
          // Half-closed (or gone): answer what was asked, then close.
          await this.closeWhenIdle();
          return;
        }
        if (this.#closed.signal.aborted) break;
        this.#decoder.push(chunk);
        // Handlers dispatched from this chunk that need no I/O (State, Exec) answer in this turn's microtasks: read
        // again after them, so that the next read's syscalls (an EAGAIN read and the poller's epoll_ctl) do not go
        // before their answers.
        if (this.#running > 0) await turnEnded();
      }
    } catch (err) {
      if (!this.#closed.signal.aborted && !isDisconnect(err)) {
        log.debug("ttrpc: error receiving message", { error: err });
      }
    }
    this.close();
  }

  /** Answers and handlers beyond what one connection may hold: stop reading until they drain. */
  #overLimit(): boolean {
    return this.#writer.queuedBytes > MAX_UNSENT_BYTES || this.#running > MAX_UNANSWERED;
  }

  #maybeResume(): void {
    const resume = this.#resume;
    if (!resume) return;
    if (!this.#closed.signal.aborted) {
      if (this.#writer.queuedBytes > MAX_UNSENT_BYTES / 2 || this.#running > MAX_UNANSWERED * 0.9) return;
    }
    this.#resume = undefined;
    resume();
  }

  /** Closes once no handler runs and every answer is written; resolves when closed. */
  closeWhenIdle(): Promise<void> {
    if (this.#closed.signal.aborted) return Promise.resolve();
    this.#closeWhenIdle = true;
    const p = new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    this.#checkIdle();
    return p;
  }

  /** Closes now: running handlers see their signal abort, unwritten answers are dropped. Idempotent. */
  close(): void {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort(canceled());
    for (const call of this.#pending.values()) call.ctl?.abort(canceled());
    this.#pending.clear();
    this.#deadlines.clear();
    this.#writer.abandon();
    this.#maybeResume();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
    this.#hooks.onClosed(this);
  }

  #onOversize(h: FrameHeader): void {
    this.#sendStatus(
      h.streamId,
      new TtrpcError(
        Code.ResourceExhausted,
        `message length ${h.length} exceed maximum message size of ${this.#hooks.maxDataLength}`,
      ),
    );
  }

  #onFrame(f: Frame): void {
    if (f.type === FrameType.Data) {
      // Unary only: data for a live call is ignored; for any other stream it is a client error.
      if (!this.#pending.has(f.streamId)) this.#sendStatus(f.streamId, invalidArgument("StreamID is no longer active"));
      return;
    }
    if (f.type !== FrameType.Request) return; // unknown types are ignored for forward compatibility
    let req: Required<RequestMessage>;
    try {
      req = decodeRequest(f.data);
    } catch (err) {
      this.#sendStatus(f.streamId, invalidArgument(`unmarshal request error: ${messageOf(err)}`));
      return;
    }
    if (f.streamId % 2 !== 1) {
      this.#sendStatus(f.streamId, invalidArgument("StreamID must be odd for client initiated streams"));
      return;
    }
    if (f.streamId <= this.#lastStreamId) {
      this.#sendStatus(f.streamId, invalidArgument("StreamID cannot be re-used and must increment"));
      return;
    }
    this.#lastStreamId = f.streamId;
    this.#dispatch(f.streamId, req);
  }

  #dispatch(streamId: number, req: Required<RequestMessage>): void {
    const handler = this.#hooks.lookup(req.service, req.method);
    if (handler instanceof TtrpcError) {
      this.#sendStatus(streamId, handler);
      return;
    }
    const timeoutNano = req.timeoutNano;
    if (timeoutNano < 0) {
      // The client's deadline passed before the request was even sent.
      this.#sendStatus(streamId, deadlineExceeded());
      return;
    }
    const call: PendingCall = { streamId, ctl: undefined };
    let deadline: number | undefined;
    let signal = this.#closed.signal;
    if (timeoutNano > 0) {
      const ms = timeoutNano / 1e6;
      deadline = Date.now() + ms;
      const ctl = new AbortController();
      call.ctl = ctl;
      signal = ctl.signal;
      this.#deadlines.add(call, ms);
    }
    const metadata = new Map<string, string[]>();
    for (const kv of req.metadata) {
      const key = kv.key.toLowerCase();
      const values = metadata.get(key);
      if (values) values.push(kv.value);
      else metadata.set(key, [kv.value]);
    }
    const ctx: CallContext = { service: req.service, method: req.method, metadata, signal, deadline, connection: this };
    this.#pending.set(streamId, call);
    this.#running++;
    let result: Promise<Uint8Array> | Uint8Array;
    try {
      result = handler(req.payload, ctx);
    } catch (err) {
      this.#settle(call, statusFromError(err), EMPTY);
      return;
    }
    if (result instanceof Uint8Array) this.#settle(call, undefined, result);
    else {
      Promise.resolve(result).then(
        (payload) => this.#settle(call, undefined, payload),
        (err) => this.#settle(call, statusFromError(err), EMPTY),
      );
    }
  }

  /** The handler finished: answer unless the deadline or a closed connection already did. */
  #settle(call: PendingCall, status: Status | undefined, payload: unknown): void {
    this.#running--;
    if (this.#resume) this.#maybeResume();
    this.#deadlines.delete(call);
    if (this.#pending.get(call.streamId) === call) {
      this.#pending.delete(call.streamId);
      if (status) this.#send(call.streamId, status, EMPTY);
      else if (payload instanceof Uint8Array) this.#send(call.streamId, undefined, payload);
      else if (payload === undefined || payload === null) this.#send(call.streamId, undefined, EMPTY);
      else this.#send(call.streamId, internal("ttrpc: handler returned a non-Uint8Array payload").toStatus(), EMPTY);
    }
    this.#checkIdle();
  }

  #expire(call: PendingCall): void {
    if (this.#pending.get(call.streamId) !== call) return;
    this.#pending.delete(call.streamId);
    const err = deadlineExceeded();
    call.ctl?.abort(err);
    this.#send(call.streamId, err.toStatus(), EMPTY);
  }

  #sendStatus(streamId: number, err: TtrpcError): void {
    this.#send(streamId, err.toStatus(), EMPTY);
  }

  #send(streamId: number, status: Status | undefined, payload: Uint8Array): void {
    if (this.#closed.signal.aborted) return;
    let frame: Uint8Array;
    try {
      frame = encodeResponseFrame(streamId, { status, payload });
    } catch (err) {
      // Oversized answer: tell the client instead of dropping the call.
      frame = encodeResponseFrame(streamId, { status: statusFromError(err), payload: EMPTY });
    }
    this.#writer.enqueue(frame);
  }

  #checkIdle(): void {
    if (!this.#closeWhenIdle || this.#running > 0 || this.#closed.signal.aborted) return;
    if (this.#writer.busy) this.#writer.flushed().then(() => this.#checkIdle());
    else this.close();
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isDisconnect(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.UnexpectedEof;
}
