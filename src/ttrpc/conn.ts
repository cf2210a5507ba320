/**
 * The transport the ttrpc server and client run on: a byte-stream connection and a source of them. `Deno.Conn`
 * and `Deno.Listener` (unix sockets in practice) fit these shapes; so can any wrapper, e.g. one over an inherited fd.
 *
 * @example
 * ```ts
 * import type { Conn, Listener } from "./conn.ts";
 * const listener: Listener = Deno.listen({ transport: "unix", path: "/tmp/s.sock" });
 * const conn: Conn = await listener.accept();
 * conn.close();
 * listener.close();
 * ```
 * @module
 */

/** A byte-stream connection. `read` resolves `null` at EOF. */
export interface Conn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** A source of connections. `accept` rejects once `close` was called. */
export interface Listener {
  accept(): Promise<Conn>;
  close(): void;
}
