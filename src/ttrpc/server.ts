/**
 * A unary ttrpc server: services are registered as maps of raw-bytes handlers, connections come from any
 * {@link Listener} (`src/sys/unix_stream.ts`, or `Deno.listen({ transport: "unix" })`), and each connection runs its requests concurrently while its answers are
 * written one whole frame at a time.
 *
 * Protocol rules follow Go's `containerd/ttrpc` server: odd, increasing stream ids; Unimplemented for unknown
 * services and methods; ResourceExhausted for oversized frames (the connection stays usable); unknown frame types
 * ignored; `timeout_nano` turned into a deadline that aborts the handler's signal.
 *
 * @example
 * ```ts
 * import { Server } from "./server.ts";
 * const server = new Server({ onConnectionClosed: (left) => console.log("connections left:", left) });
 * server.register("example.v1.Echo", {
 *   Echo: (payload, ctx) => {
 *     console.log(ctx.metadata.get("containerd-namespace-ttrpc"));
 *     return payload;
 *   },
 * });
 * const listener = Deno.listen({ transport: "unix", path: "/tmp/echo.sock" });
 * server.serve(listener);
 * // later: await server.shutdown({ graceful: true });
 * ```
 * @module
 */
import { log } from "../log.ts";
import { type Conn, type Listener, toConn, toListener } from "./conn.ts";
import { MAX_DATA_LENGTH } from "./frame.ts";
import type { Handler } from "./handler.ts";
import { ServerConnection } from "./server_conn.ts";
import { type TtrpcError, unimplemented } from "./status.ts";
import { after, type Timer } from "../timer.ts";

export type { CallContext, Handler } from "./handler.ts";

/** Server settings and callbacks. */
export interface ServerOptions {
  /** Called after a connection went away, with the number still open (the shim watches for 0). */
  onConnectionClosed?: (remaining: number) => void;
  /** Largest frame data accepted; defaults to 4 MiB. Larger frames are answered with ResourceExhausted. */
  maxDataLength?: number;
}

/** How {@link Server.shutdown} behaves. */
export interface ShutdownOptions {
  /** Wait for running handlers and queued answers before closing connections (default true). */
  graceful?: boolean;
  /** Upper bound for the graceful wait, in ms (default 10 000); connections still busy then are closed anyway. */
  timeoutMs?: number;
}

/** A registry of services and the connections serving them. */
export class Server {
  /** Called after a connection went away, with the number still open. */
  onConnectionClosed: ((remaining: number) => void) | undefined;
  readonly #services = new Map<string, Map<string, Handler>>();
  readonly #listeners = new Set<Listener>();
  readonly #conns = new Set<ServerConnection>();
  readonly #maxDataLength: number;
  /** Aborted by shutdown/close: ends accept loops and their back-off sleeps. */
  readonly #stop = new AbortController();

  constructor(opts: ServerOptions = {}) {
    this.onConnectionClosed = opts.onConnectionClosed;
    this.#maxDataLength = opts.maxDataLength ?? MAX_DATA_LENGTH;
  }

  /** Adds a service. Throws when `serviceFullName` is already registered (as Go does). */
  register(serviceFullName: string, methods: Record<string, Handler>): void {
    if (this.#services.has(serviceFullName)) throw new Error(`duplicate service ${serviceFullName} registered`);
    // A Map, not the record itself: a method named "constructor" or "toString" must not reach Object.prototype.
    this.#services.set(serviceFullName, new Map(Object.entries(methods)));
  }

  /** Number of open connections. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** True once shutdown or close has begun. */
  get closing(): boolean {
    return this.#stop.signal.aborted;
  }

  /**
   * Accepts connections until the listener or the server is closed. Resolves then; rejects only when the server
   * is already closing. Transient accept errors (e.g. EMFILE) are retried with back-off, like Go's server.
   */
  async serve(source: Listener | Deno.Listener): Promise<void> {
    if (this.closing) throw new Error("ttrpc: server closed");
    const listener = toListener(source);
    this.#listeners.add(listener);
    let backoff = 0;
    try {
      while (!this.closing) {
        let conn: Conn;
        try {
          conn = await listener.accept();
        } catch (err) {
          if (this.closing || isListenerClosed(err)) return;
          backoff = backoff === 0 ? 5 : Math.min(backoff * 2, 1000);
          log.warn("ttrpc: failed accept; backing off", { error: err, backoffMs: backoff });
          await sleep(backoff, this.#stop.signal);
          continue;
        }
        backoff = 0;
        if (this.closing) {
          closeQuietly(conn);
          return;
        }
        this.serveConn(conn);
      }
    } finally {
      this.#listeners.delete(listener);
    }
  }

  /** Serves one already-accepted connection. Resolves when it has closed. */
  serveConn(accepted: Conn | Deno.Conn): Promise<void> {
    const conn = toConn(accepted);
    if (this.closing) {
      closeQuietly(conn);
      return Promise.resolve();
    }
    const c = new ServerConnection(conn, {
      lookup: (service, method) => this.#lookup(service, method),
      onClosed: (closed) => this.#connectionClosed(closed),
      maxDataLength: this.#maxDataLength,
    });
    this.#conns.add(c);
    return c.run();
  }

  /**
   * Stops accepting and closes every connection. Graceful (the default): running handlers may finish and their
   * answers are written first, bounded by `timeoutMs`; requests arriving meanwhile are still served.
   * From inside a handler (a shim's Shutdown RPC), do not await it: that handler is itself in flight. Answer first
   * and schedule it, e.g. `setTimeout(() => server.shutdown())`.
   */
  async shutdown(opts: ShutdownOptions = {}): Promise<void> {
    const { graceful = true, timeoutMs = 10_000 } = opts;
    this.#stopAccepting();
    if (graceful && this.#conns.size > 0) {
      // Unref'd, and not a Deno timer (src/timer.ts): the open connections keep the process alive meanwhile.
      let timer: Timer | undefined;
      const timedOut = new Promise<void>((resolve) => timer = after(timeoutMs, resolve));
      try {
        await Promise.race([Promise.all([...this.#conns].map((c) => c.closeWhenIdle())), timedOut]);
      } finally {
        timer?.cancel();
      }
    }
    for (const c of [...this.#conns]) c.close();
  }

  /** Closes listeners and connections at once; running handlers see their signal abort. */
  close(): void {
    this.#stopAccepting();
    for (const c of [...this.#conns]) c.close();
  }

  #stopAccepting(): void {
    this.#stop.abort();
    for (const l of this.#listeners) closeQuietly(l);
    this.#listeners.clear();
  }

  /** The handler of a call, or the Unimplemented error to answer with. */
  #lookup(service: string, method: string): Handler | TtrpcError {
    const methods = this.#services.get(service);
    if (!methods) return unimplemented(`service ${service}`);
    return methods.get(method) ?? unimplemented(`method ${method}`);
  }

  #connectionClosed(c: ServerConnection): void {
    if (!this.#conns.delete(c)) return;
    const cb = this.onConnectionClosed;
    if (!cb) return;
    try {
      cb(this.#conns.size);
    } catch (err) {
      log.error("ttrpc: onConnectionClosed callback failed", { error: err });
    }
  }
}

function isListenerClosed(err: unknown): boolean {
  return err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted;
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
