/**
 * Helpers shared by the ttrpc tests, benchmarks and fuzzer: a seeded PRNG, temporary socket paths, and a raw frame
 * reader for talking to a server without the client.
 *
 * @example
 * ```ts
 * import { prng, tempSocketDir } from "./_test_util.ts";
 * const rand = prng(1);
 * const dir = await tempSocketDir();
 * console.log(rand(), dir.path("s.sock"));
 * await dir.remove();
 * ```
 * @module
 */
import { type Conn, toConn } from "./conn.ts";
import { type Frame, FrameDecoder, type FrameHeader } from "./frame.ts";

/** mulberry32: a small seeded PRNG returning floats in [0, 1). Runs are reproducible per seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A temporary directory for sockets. */
export interface SocketDir {
  path(name: string): string;
  remove(): Promise<void>;
}

export async function tempSocketDir(): Promise<SocketDir> {
  const dir = await Deno.makeTempDir({ prefix: "ttrpc-test-" });
  return {
    path: (name) => `${dir}/${name}`,
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Reads frames from a raw connection, for tests that speak the wire protocol directly. */
export class FrameReader {
  readonly #conn: Conn;
  readonly #frames: Frame[] = [];
  readonly oversize: FrameHeader[] = [];
  readonly #decoder: FrameDecoder;
  #eof = false;

  constructor(conn: Conn | Deno.Conn) {
    this.#conn = toConn(conn);
    this.#decoder = new FrameDecoder({
      onFrame: (f) => this.#frames.push(f),
      onOversize: (h) => this.oversize.push(h),
    });
  }

  /** Next frame, or null at EOF (or when the connection errors, e.g. reset by the peer). */
  async next(): Promise<Frame | null> {
    while (this.#frames.length === 0) {
      if (this.#eof) return null;
      let chunk: Uint8Array | null;
      try {
        chunk = await this.#conn.read();
      } catch {
        chunk = null;
      }
      if (chunk === null) this.#eof = true;
      else this.#decoder.push(chunk);
    }
    return this.#frames.shift()!;
  }
}

/** Writes all of `buf`, looping over short writes. */
export async function writeAll(conn: { write(p: Uint8Array): Promise<number> }, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) off += await conn.write(buf.subarray(off));
}

/** A promise with its resolver, for handlers that wait on the test. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

/** `Deno.test` with the op and resource sanitizers on: a leaked timer, socket or pending read fails the test. */
export function strictTest(name: string, fn: () => Promise<void> | void): void {
  Deno.test({ name, sanitizeOps: true, sanitizeResources: true, fn });
}
