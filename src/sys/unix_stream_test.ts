import assert from "node:assert/strict";
import { ECONNREFUSED, ECONNRESET, ENOENT, isErrno } from "./errno.ts";
import { poller } from "./poller.ts";
import { QUEUE_LIMIT } from "./reactor_reader.ts";
import { ownerUid } from "./libc.ts";
import { READ_CHUNK, type ReadMode, UnixConn, UnixListener } from "./unix_stream.ts";
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

/** A listener and a connected pair, both ends reading the `reads` way. */
async function connected(dir: string, reads: ReadMode) {
  const listener = UnixListener.listen(`${dir}/s.sock`, { reads });
  const [server, client] = await Promise.all([listener.accept(), UnixConn.connect(`unix://${dir}/s.sock`, { reads })]);
  assert.equal(server.reads, reads);
  assert.equal(client.reads, reads);
  return { listener, server, client };
}

for (const reads of ["reactor", "poller"] as const) {
  Deno.test(`unix stream (${reads} reads): accept, echo both ways, half-close gives the peer end of file and keeps the answer path`, async () => {
    await withDir(async (dir) => {
      const { listener, server, client } = await connected(dir, reads);
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

  Deno.test(`unix stream (${reads} reads): large writes and reads go through whole, in order, in bounded chunks`, async () => {
    await withDir(async (dir) => {
      const { listener, server, client } = await connected(dir, reads);
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

  Deno.test(`unix stream (${reads} reads): a reset surfaces as SysError ECONNRESET; close fails a waiting read`, async () => {
    await withDir(async (dir) => {
      const { listener, server, client } = await connected(dir, reads);
      // Closing a unix socket with unread data resets the peer's connection.
      await server.write(new Uint8Array(16));
      client.close();
      await assert.rejects(server.read(), (e) => isErrno(e, ECONNRESET));
      server.close();
      listener.close();
      await Deno.remove(`${dir}/s.sock`);
      const { listener: l2, server: s2, client: c2 } = await connected(dir, reads);
      const waiting = s2.read();
      s2.close();
      await assert.rejects(waiting);
      await assert.rejects(s2.read(), Deno.errors.BadResource);
      c2.close();
      l2.close();
    });
  });
}

Deno.test("unix stream (auto reads): a connection starts on the poller and moves to the reactor once idle", async () => {
  // In a fresh process (this one booted Node compatibility long ago, through node:assert): connections start on the
  // poller; once all is idle for the set time, the waiting one moves, and so does its peer on its next read.
  const script = `
    import { setReactorAfterIdleMs, UnixConn, UnixListener } from ${
    JSON.stringify(new URL("./unix_stream.ts", import.meta.url).href)
  };
    setReactorAfterIdleMs(200);
    const dir = await Deno.makeTempDir();
    const l = UnixListener.listen(dir + "/s.sock", { reads: "auto" });
    const [a, b] = await Promise.all([l.accept(), UnixConn.connect(dir + "/s.sock", { reads: "auto" })]);
    await Deno.remove(dir, { recursive: true });
    l.close();
    const seen = [a.reads, b.reads];
    await b.write(new Uint8Array([1])); await a.read();
    const waiting = a.read(); // waits past the idle time
    await new Promise((r) => setTimeout(r, 600));
    await b.write(new Uint8Array([2, 3]));
    const got = await waiting;
    seen.push(a.reads, got.length);
    await a.write(new Uint8Array([4])); await b.read();
    seen.push(b.reads);
    a.close(); b.close();
    console.log(JSON.stringify(seen));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "inherit",
    signal: AbortSignal.timeout(60_000),
  }).output();
  assert.equal(out.code, 0);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), ["poller", "poller", "reactor", 2, "reactor"]);
});

Deno.test("unix stream: connections read on the poller by default; auto moves at once once the handle is loaded", async () => {
  await withDir(async (dir) => {
    const plain = UnixListener.listen(`${dir}/p.sock`);
    const [p1, p2] = await Promise.all([plain.accept(), UnixConn.connect(`${dir}/p.sock`)]);
    assert.equal(p1.reads, "poller");
    assert.equal(p2.reads, "poller");
    for (const c of [p1, p2, plain]) c.close();
    // Earlier tests of this file loaded Node compatibility's stream handle.
    const listener = UnixListener.listen(`${dir}/s.sock`, { reads: "auto" });
    const [server, client] = await Promise.all([
      listener.accept(),
      UnixConn.connect(`${dir}/s.sock`, { reads: "auto" }),
    ]);
    assert.equal(server.reads, "reactor");
    assert.equal(client.reads, "reactor");
    for (const c of [server, client, listener]) c.close();
  });
});

Deno.test("unix stream (reactor reads): a peer that writes while nobody reads is held by the socket, not queued in memory", async () => {
  await withDir(async (dir) => {
    const { listener, server, client } = await connected(dir, "reactor");
    const data = new Uint8Array(8 << 20).map((_, i) => i % 253);
    let sent = 0;
    const sending = (async () => {
      while (sent < data.length) sent += await client.write(data.subarray(sent));
      await client.closeWrite();
    })();
    // Start reading once (so the reader is running), then stop taking chunks for a while.
    const first = await server.read();
    assert.ok(first && first.length > 0);
    for (let i = 0; i < 50; i++) await new Promise((r) => setTimeout(r, 2));
    assert.ok(server.queuedBytes <= QUEUE_LIMIT + READ_CHUNK, `${server.queuedBytes} bytes queued unread`);
    assert.ok(sent < data.length, "the writer is held back by the full socket");
    const got = new Uint8Array(data.length);
    got.set(first);
    let n = first.length;
    for (let chunk = await server.read(); chunk !== null; chunk = await server.read()) {
      got.set(chunk, n);
      n += chunk.length;
    }
    await sending;
    assert.equal(n, data.length);
    assert.deepEqual(got, data);
    for (const c of [server, client, listener]) c.close();
  });
});

Deno.test("unix stream (reactor reads): only a waiting read keeps the process alive", async () => {
  // A child opens a pair, completes one read on each end (so both handles are reading) and leaves them open:
  // it must exit on its own. Then one read is left waiting: it must stay alive until the peer writes.
  const script = `
    import { UnixConn, UnixListener } from ${JSON.stringify(new URL("./unix_stream.ts", import.meta.url).href)};
    const dir = await Deno.makeTempDir();
    const l = UnixListener.listen(dir + "/s.sock", { reads: "reactor" });
    const [a, b] = await Promise.all([l.accept(), UnixConn.connect(dir + "/s.sock", { reads: "reactor" })]);
    await Deno.remove(dir, { recursive: true });
    l.close();
    if (a.reads !== "reactor" || b.reads !== "reactor") throw new Error("not on the reactor");
    await a.write(new Uint8Array(1)); await b.read();
    await b.write(new Uint8Array(1)); await a.read();
    if (Deno.args[0] === "wait") {
      setTimeout(() => b.write(new TextEncoder().encode("late")), 300);
      console.log(new TextDecoder().decode(await a.read() ?? new Uint8Array()));
    } else console.log("done");
  `;
  for (const [mode, want] of [["idle", "done"], ["wait", "late"]]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script, mode],
      stdout: "piped",
      stderr: "inherit",
      signal: AbortSignal.timeout(60_000),
    }).output();
    assert.equal(out.code, 0, `${mode}: the child exits by itself`);
    assert.equal(new TextDecoder().decode(out.stdout).trim(), want);
  }
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
