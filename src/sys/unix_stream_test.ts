import assert from "node:assert/strict";
import { ECONNREFUSED, ENOENT, isErrno } from "./errno.ts";
import { poller } from "./poller.ts";
import { ownerUid } from "./unix_socket.ts";
import { UnixConn, UnixListener } from "./unix_stream.ts";
import type { PeerCredentials } from "./unix_socket.ts";

const te = new TextEncoder();
const td = new TextDecoder();

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "unix-stream-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await poller().idle();
  }
}

async function readAll(conn: UnixConn): Promise<string> {
  let out = "";
  for (let chunk = await conn.read(); chunk !== null; chunk = await conn.read()) out += td.decode(chunk);
  return out;
}

Deno.test("unix stream: accept, echo both ways, half-close gives the peer end of file and keeps the answer path", async () => {
  await withDir(async (dir) => {
    const listener = UnixListener.listen(`${dir}/s.sock`);
    const [server, client] = await Promise.all([listener.accept(), UnixConn.connect(`unix://${dir}/s.sock`)]);
    await client.write(te.encode("ping"));
    await client.closeWrite();
    assert.equal(await readAll(server), "ping", "server reads up to the half-close, then end of file");
    await server.write(te.encode("pong"));
    server.close();
    assert.equal(await readAll(client), "pong", "the half-closed client still reads its answer");
    client.close();
    listener.close();
  });
});

Deno.test("unix stream: large writes and reads go through whole, in order, in bounded chunks", async () => {
  await withDir(async (dir) => {
    const listener = UnixListener.listen(`${dir}/s.sock`);
    const [server, client] = await Promise.all([listener.accept(), UnixConn.connect(`${dir}/s.sock`)]);
    const data = new Uint8Array(3 << 20).map((_, i) => i % 251);
    const sending = (async () => {
      let off = 0;
      while (off < data.length) off += await client.write(data.subarray(off));
      await client.closeWrite();
    })();
    const got = new Uint8Array(data.length);
    let n = 0, maxChunk = 0;
    for (let chunk = await server.read(); chunk !== null; chunk = await server.read()) {
      got.set(chunk, n);
      n += chunk.length;
      maxChunk = Math.max(maxChunk, chunk.length);
    }
    await sending;
    assert.equal(n, data.length);
    assert.deepEqual(got, data);
    assert.ok(maxChunk <= 64 * 1024);
    server.close();
    client.close();
    listener.close();
  });
});

Deno.test("unix stream: the admit hook sees the peer's credentials; a refused peer is closed unanswered", async () => {
  await withDir(async (dir) => {
    const seen: PeerCredentials[] = [];
    let allow = false;
    const listener = UnixListener.listen(`${dir}/s.sock`, { admit: (p) => (seen.push(p), allow) });
    const accepting = listener.accept();
    const refused = await UnixConn.connect(`${dir}/s.sock`);
    // The refused connection sees end of file (or a reset) without a byte.
    const refusedRead = await refused.read().catch(() => null);
    assert.equal(refusedRead, null);
    allow = true;
    const admitted = await UnixConn.connect(`${dir}/s.sock`);
    const server = await accepting;
    assert.equal(seen.length, 2);
    assert.equal(seen[0].pid, Deno.pid);
    assert.equal(seen[0].uid, ownerUid(`${dir}/s.sock`));
    refused.close();
    admitted.close();
    server.close();
    listener.close();
  });
});

Deno.test("unix stream: connect errors carry errno; a closed listener's accept rejects with BadResource", async () => {
  await withDir(async (dir) => {
    await assert.rejects(UnixConn.connect(`${dir}/missing.sock`), (e) => isErrno(e, ENOENT));
    const listener = UnixListener.listen(`${dir}/s.sock`);
    const pending = listener.accept();
    listener.close();
    await assert.rejects(pending, Deno.errors.BadResource);
    await assert.rejects(UnixConn.connect(`${dir}/s.sock`), (e) => isErrno(e, ECONNREFUSED));
  });
});
