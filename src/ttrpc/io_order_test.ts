/**
 * The order of a connection's I/O around a call that needs no I/O of its own: its answer is written before the
 * connection reads again (an EAGAIN read and an epoll_ctl on the shim's transport), on the server and on the client.
 */
import assert from "node:assert/strict";
import { Client } from "./client.ts";
import type { Conn } from "./conn.ts";
import { decodeRequest, encodeRequestFrame, encodeResponseFrame } from "./message.ts";
import { FrameDecoder, FrameType, MAX_DATA_LENGTH } from "./frame.ts";
import { ServerConnection } from "./server_conn.ts";

/** A connection fed by the test: records "read" when a read starts and "write" per frame written. */
class ScriptedConn implements Conn {
  readonly log: string[] = [];
  readonly written: Uint8Array[] = [];
  #pending: ((chunk: Uint8Array | null) => void) | undefined;
  #queued: (Uint8Array | null)[] = [];
  #onWrite: ((frame: Uint8Array) => void) | undefined;

  constructor(onWrite?: (frame: Uint8Array) => void) {
    this.#onWrite = onWrite;
  }

  /** Hands `chunk` to the current or next read. */
  feed(chunk: Uint8Array | null): void {
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending) pending(chunk);
    else this.#queued.push(chunk);
  }

  read(): Promise<Uint8Array | null> {
    this.log.push("read");
    if (this.#queued.length > 0) return Promise.resolve(this.#queued.shift()!);
    return new Promise((resolve) => this.#pending = resolve);
  }

  write(p: Uint8Array): Promise<number> {
    this.log.push("write");
    this.written.push(p.slice());
    this.#onWrite?.(p);
    return Promise.resolve(p.length);
  }

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.feed(null);
  }
}

Deno.test("server connection: an answer that needs no I/O is written before the connection reads again", async () => {
  const conn = new ScriptedConn();
  const closed = Promise.withResolvers<void>();
  const sc = new ServerConnection(conn, {
    lookup: () => (payload: Uint8Array) => Promise.resolve(payload), // async, as the Task service's handlers are
    onClosed: () => closed.resolve(),
    maxDataLength: MAX_DATA_LENGTH,
  });
  const running = sc.run();
  conn.feed(encodeRequestFrame(1, { service: "s", method: "m", payload: new Uint8Array([7]) }));
  while (conn.log.length < 3) await new Promise((r) => setTimeout(r, 1));
  assert.deepEqual(conn.log.slice(0, 3), ["read", "write", "read"]);
  conn.feed(null);
  await running;
  await closed.promise;
});

Deno.test("client: the caller's next request after an answer goes out before the connection reads again", async () => {
  const conn = new ScriptedConn((frame) => {
    // Answer each request frame with an empty payload, one turn later (as a peer would).
    const decoder = new FrameDecoder({
      onFrame: (f) => {
        if (f.type !== FrameType.Request) return;
        decodeRequest(f.data);
        setTimeout(() => conn.feed(encodeResponseFrame(f.streamId, { payload: new Uint8Array() })), 1);
      },
      onOversize: () => {},
    });
    decoder.push(frame);
  });
  const client = new Client(conn);
  await client.call("s", "m", new Uint8Array());
  await client.call("s", "m", new Uint8Array());
  // read (started by the constructor), write (call 1), [answer 1 read] → write (call 2) before the next read.
  assert.deepEqual(conn.log.slice(0, 4), ["read", "write", "write", "read"]);
  client.close();
});
