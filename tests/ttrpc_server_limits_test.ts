/**
 * What hostile or unlucky clients cannot do to the ttrpc server, on the shim's own transport (libc sockets):
 * - a client that floods requests and never reads the answers does not grow the server without bound, and other
 *   connections are still answered meanwhile (back-pressure);
 * - a client that half-closes after its requests still gets every answer;
 * - an idle connection costs little memory (1,000 held connections, measured in the server's RSS).
 *
 * The server runs in a process of its own (tests/harness/ttrpc_server.ts) so that its memory can be watched.
 * @module
 */
import assert from "node:assert/strict";
import { Client } from "../src/ttrpc/client.ts";
import { FrameType } from "../src/ttrpc/frame.ts";
import { decodeResponse, encodeRequestFrame } from "../src/ttrpc/message.ts";
import { Server } from "../src/ttrpc/server.ts";
import { FrameReader, prng, tempSocketDir, writeAll } from "../src/ttrpc/_test_util.ts";
import { UnixConn, UnixListener } from "../src/sys/unix_stream.ts";
import { poller } from "../src/sys/poller.ts";
import { memoryOf } from "./lab/proc.ts";
import { STATE_REPLY } from "./harness/ttrpc_server.ts";

const SERVICE = "containerd.task.v2.Task";
const SERVER_SCRIPT = new URL("./harness/ttrpc_server.ts", import.meta.url).pathname;

/** The server process: the shim's permission set minus what a plain ttrpc server does not use. */
async function spawnServer(path: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env", SERVER_SCRIPT, path],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const line = new TextDecoder().decode(value);
  assert.match(line, /^ready \d+/, `server did not start: ${line}`);
  child.stdout.cancel();
  return {
    pid: child.pid,
    async rssKiB(): Promise<number> {
      const m = await memoryOf(child.pid);
      assert.ok(m, "server process gone");
      return m.rssKiB;
    },
    async stop() {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

function stateRequest(streamId: number): Uint8Array {
  return encodeRequestFrame(streamId, {
    service: SERVICE,
    method: "State",
    payload: new Uint8Array([0x0a, 0x04, 0x74, 0x61, 0x73, 0x6b]), // StateRequest{id: "task"}
    metadata: [{ key: "containerd-namespace-ttrpc", value: "default" }],
  });
}

Deno.test("a client that never reads its answers cannot grow the server without bound; others are still served", async () => {
  const dir = await tempSocketDir();
  const path = dir.path("s.sock");
  const server = await spawnServer(path);
  const flood = await Deno.connect({ transport: "unix", path });
  try {
    const before = await server.rssKiB();
    // Up to 1.5 M State requests (~130 MB). A server without back-pressure reads them all and queues every answer;
    // with it, the server stops reading and this client's writes stall once its socket buffers are full.
    const BATCH = 2000, MAX_FRAMES = 1_500_000;
    let sent = 0, stalled = false, id = 1;
    while (sent < MAX_FRAMES && !stalled) {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < BATCH; i++, id += 2) frames.push(stateRequest(id));
      const batch = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
      frames.reduce((off, f) => (batch.set(f, off), off + f.length), 0);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const writing = writeAll(flood, batch).then(() => true, () => true);
      const waited = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 3000));
      stalled = !(await Promise.race([writing, waited]));
      clearTimeout(timer);
      if (!stalled) sent += BATCH;
    }
    const during = await server.rssKiB();
    // The container stays manageable: another connection is answered while the flood is held back.
    const other = new Client(await UnixConn.connect(path));
    try {
      const reply = await other.call(SERVICE, "State", new Uint8Array(), { timeoutMs: 30_000 });
      assert.deepEqual(reply, STATE_REPLY);
    } finally {
      other.close();
    }
    console.log(
      `flood: ${sent} requests accepted before the server stopped reading (stalled: ${stalled}); ` +
        `server RSS ${before} KiB → ${during} KiB`,
    );
    assert.ok(stalled, `the server read all ${sent} unanswered requests`);
    assert.ok(during - before < 64 * 1024, `server RSS grew by ${during - before} KiB`);
  } finally {
    flood.close();
    await server.stop();
    await dir.remove();
    await poller().idle();
  }
});

Deno.test("a client that half-closes after its requests gets every answer (libc and Deno.Conn transports)", async () => {
  const dir = await tempSocketDir();
  const server = new Server();
  server.register(SERVICE, {
    Echo: (p) => p,
    Slow: (p) => new Promise((resolve) => setTimeout(() => resolve(p), 1 + (p.length % 3))),
  });
  const listeners = [
    server.serve(UnixListener.listen(dir.path("libc.sock"))),
    server.serve(Deno.listen({ transport: "unix", path: dir.path("deno.sock") })),
  ];
  const rand = prng(14_3);
  let asked = 0, answered = 0;
  try {
    for (let round = 0; round < 200; round++) {
      const path = dir.path(round % 2 ? "libc.sock" : "deno.sock");
      const conn = round % 4 < 2 ? await Deno.connect({ transport: "unix", path }) : await UnixConn.connect(path);
      const reader = new FrameReader(conn);
      const k = 1 + Math.floor(rand() * 20);
      const frames: Uint8Array[] = [];
      for (let i = 0; i < k; i++) {
        const payload = new TextEncoder().encode(`r${round}-${i}`);
        frames.push(
          encodeRequestFrame(1 + 2 * i, { service: SERVICE, method: rand() < 0.5 ? "Slow" : "Echo", payload }),
        );
      }
      for (const f of frames) await writeAll(conn, f);
      await conn.closeWrite();
      asked += k;
      const seen = new Set<number>();
      for (let f = await reader.next(); f !== null; f = await reader.next()) {
        assert.equal(f.type, FrameType.Response);
        const res = decodeResponse(f.data);
        assert.equal(res.status?.code ?? 0, 0);
        assert.equal(new TextDecoder().decode(res.payload), `r${round}-${(f.streamId - 1) / 2}`);
        seen.add(f.streamId);
      }
      conn.close();
      answered += seen.size;
      assert.equal(seen.size, k, `round ${round}: ${seen.size} of ${k} answered before the server closed`);
    }
    console.log(`half-closed clients: ${answered} of ${asked} requests answered`);
  } finally {
    await server.shutdown({ graceful: false });
    await Promise.all(listeners);
    await dir.remove();
    await poller().idle();
  }
});

Deno.test("1,000 idle connections cost the server at most 24 KiB each", async () => {
  const dir = await tempSocketDir();
  const path = dir.path("s.sock");
  const server = await spawnServer(path);
  const conns: UnixConn[] = [];
  try {
    // One call first, so that code paths and buffers of a used connection are warm on both sides.
    const warm = new Client(await UnixConn.connect(path));
    await warm.call(SERVICE, "Echo", new Uint8Array(8));
    warm.close();
    await new Promise((r) => setTimeout(r, 200));
    const before = await server.rssKiB();
    const N = 1000;
    for (let i = 0; i < N; i++) conns.push(await UnixConn.connect(path));
    // Each connection makes one call, so the server has read from it and answered (buffers allocated if any).
    for (const c of conns) {
      await writeAll(c, encodeRequestFrame(1, { service: SERVICE, method: "Echo", payload: new Uint8Array(8) }));
    }
    for (const c of conns) {
      const reader = new FrameReader(c);
      const f = await reader.next();
      assert.equal(f?.streamId, 1);
    }
    await new Promise((r) => setTimeout(r, 500));
    const after = await server.rssKiB();
    const perConn = ((after - before) * 1024) / N;
    console.log(
      `idle connections: RSS ${before} KiB → ${after} KiB with ${N} held: ${(perConn / 1024).toFixed(1)} KiB each`,
    );
    assert.ok(perConn <= 24 * 1024, `${(perConn / 1024).toFixed(1)} KiB per held connection`);
  } finally {
    for (const c of conns) c.close();
    await server.stop();
    await dir.remove();
    await poller().idle();
  }
});
