import assert from "node:assert/strict";
import { FrameWriter } from "./writer.ts";
import { strictTest } from "./_test_util.ts";

/** A fake connection that accepts at most `chunk` bytes per write, asynchronously. */
function fakeConn(chunk: number, failAfter = Infinity) {
  const written: number[] = [];
  let calls = 0;
  return {
    written,
    get calls() {
      return calls;
    },
    async write(p: Uint8Array): Promise<number> {
      calls++;
      await new Promise((r) => setTimeout(r, 0));
      if (written.length >= failAfter) throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
      const n = Math.min(chunk, p.length);
      written.push(...p.subarray(0, n));
      return n;
    },
  };
}

strictTest("writer: frames from concurrent callers come out whole and in order despite short writes", async () => {
  const conn = fakeConn(7);
  const w = new FrameWriter(conn, () => assert.fail("no error expected"));
  const frames = Array.from({ length: 50 }, (_, i) => new Uint8Array(1 + (i * 13) % 40).fill(i));
  for (const f of frames) w.enqueue(f);
  await w.flushed();
  assert.deepEqual(conn.written, frames.flatMap((f) => [...f]));
  assert.ok(!w.busy);
});

strictTest("writer: small queued frames are coalesced into fewer writes", async () => {
  const conn = fakeConn(1 << 20);
  const w = new FrameWriter(conn, () => {});
  for (let i = 0; i < 100; i++) w.enqueue(new Uint8Array(20).fill(i));
  await w.flushed();
  assert.equal(conn.written.length, 2000);
  assert.ok(conn.calls <= 2, `expected coalescing, got ${conn.calls} writes`);
});

strictTest("writer: a failed write is reported once and later frames are dropped", async () => {
  const conn = fakeConn(4, 8);
  const errors: unknown[] = [];
  const w = new FrameWriter(conn, (e) => errors.push(e));
  w.enqueue(new Uint8Array(100));
  await w.flushed();
  w.enqueue(new Uint8Array(10));
  await w.flushed();
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof Deno.errors.BrokenPipe);
  assert.ok(w.failed);
  assert.equal(conn.written.length, 8);
});

strictTest("writer: queuedBytes counts unwritten bytes and onProgress reports each completed write", async () => {
  const conn = fakeConn(1 << 20);
  const seen: number[] = [];
  const w = new FrameWriter(conn, () => assert.fail("no error expected"), () => seen.push(w.queuedBytes));
  w.enqueue(new Uint8Array(100 * 1024)); // over the coalescing limit: written alone
  w.enqueue(new Uint8Array(10));
  w.enqueue(new Uint8Array(20)); // these two are merged into one write
  assert.equal(w.queuedBytes, 100 * 1024 + 30);
  await w.flushed();
  assert.equal(w.queuedBytes, 0);
  assert.deepEqual(seen, [30, 0]);
  w.enqueue(new Uint8Array(5));
  w.abandon();
  assert.equal(w.queuedBytes, 0, "abandoned frames no longer count");
  await w.flushed();
});
