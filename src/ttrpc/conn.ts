/**
 * The transport the ttrpc server and client run on, and nothing more: a byte-stream connection, and a source of
 * them. Where the bytes come from is not this library's business: `src/sys/unix_stream.ts` (raw fds on an epoll
 * poller, what the shim uses) fits these shapes as they are, and `Deno.Conn`/`Deno.Listener` are adapted by
 * {@linkcode denoConn} and {@linkcode denoListener} (the server and client accept them directly too).
 *
 * `read` hands out chunks the caller owns, rather than filling a caller's buffer: a transport that reads only after
 * readiness can then share one scratch buffer among all its connections, and an idle connection holds none.
 *
 * @example
 * ```ts
 * import { denoListener, type Listener } from "./conn.ts";
 * const listener: Listener = denoListener(Deno.listen({ transport: "unix", path: "/tmp/s.sock" }));
 * const conn = await listener.accept();
 * const chunk = await conn.read(); // null at end of file
 * conn.close();
 * listener.close();
 * ```
 * @module
 */

/** A byte-stream connection. */
export interface Conn {
  /** The next bytes from the peer, in an array the caller owns; null at end of file. Rejects on errors. */
  read(): Promise<Uint8Array | null>;
  /** Writes some of `p` (at least one byte, or rejects) and resolves to the count. */
  write(p: Uint8Array): Promise<number>;
  /** Half-close: the peer reads end of file while this side can still read. */
  closeWrite(): Promise<void>;
  /** Closes both directions; pending reads and writes reject. Must be idempotent. */
  close(): void;
}

/** A source of connections. `accept` rejects once `close` was called (with `Deno.errors.BadResource`). */
export interface Listener {
  accept(): Promise<Conn>;
  close(): void;
}

/** Bytes a `Deno.Conn` reads at most per call. */
const DENO_READ_SIZE = 64 * 1024;

/**
 * A {@link Conn} over a `Deno.Conn`. A pending Deno read needs a buffer of its own, so each connection keeps one
 * (allocated on its first read) and hands out copies of what was read.
 */
export function denoConn(conn: Deno.Conn): Conn {
  let buf: Uint8Array | undefined;
  return {
    async read() {
      buf ??= new Uint8Array(DENO_READ_SIZE);
      const n = await conn.read(buf);
      return n === null ? null : buf.slice(0, n);
    },
    write: (p) => conn.write(p),
    closeWrite: () => conn.closeWrite(),
    close: () => conn.close(),
  };
}

/** A {@link Listener} over a `Deno.Listener`. */
export function denoListener(listener: Deno.Listener): Listener {
  return {
    accept: async () => denoConn(await listener.accept()),
    close: () => listener.close(),
  };
}

/** `c` as a {@link Conn}: a `Deno.Conn` is adapted, anything else is taken as one already. */
export function toConn(c: Conn | Deno.Conn): Conn {
  return isDenoConn(c) ? denoConn(c) : c;
}

/** `l` as a {@link Listener}: a `Deno.Listener` is adapted, anything else is taken as one already. */
export function toListener(l: Listener | Deno.Listener): Listener {
  return "addr" in l && "ref" in l ? denoListener(l as Deno.Listener) : l as Listener;
}

function isDenoConn(c: Conn | Deno.Conn): c is Deno.Conn {
  return "remoteAddr" in c && "readable" in c;
}
