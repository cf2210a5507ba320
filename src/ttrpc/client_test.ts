import assert from "node:assert/strict";
import { Client } from "./client.ts";
import { encodeFrame, FrameType, writeFrameHeader } from "./frame.ts";
import { decodeRequest, encodeResponseFrame } from "./message.ts";
import { Code, isClosedError, TtrpcError } from "./status.ts";
import { FrameReader, strictTest, tempSocketDir, writeAll } from "./_test_util.ts";

const te = new TextEncoder();
const td = new TextDecoder();

/** A raw peer: the test plays the server by hand. */
async function rawServer() {
  const dir = await tempSocketDir();
  const path = dir.path("s.sock");
  const listener = Deno.listen({ transport: "unix", path });
  const client = await Client.connectUnix(`unix://${path}`);
  const conn = await listener.accept();
  return {
    client,
    conn,
    reader: new FrameReader(conn),
    async [Symbol.asyncDispose]() {
      client.close();
      try {
        conn.close();
      } catch { /* closed by the test */ }
      listener.close();
      await dir.remove();
    },
  };
}

strictTest("client: odd increasing stream ids, concurrent calls answered out of order", async () => {
  await using t = await rawServer();
  const calls = [0, 1, 2].map((i) => t.client.call("svc.v1.S", `M${i}`, te.encode(`p${i}`)));
  const reqs = [];
  for (let i = 0; i < 3; i++) {
    const f = (await t.reader.next())!;
    assert.equal(f.type, FrameType.Request);
    reqs.push({ id: f.streamId, req: decodeRequest(f.data) });
  }
  assert.deepEqual(reqs.map((r) => r.id), [1, 3, 5]);
  assert.deepEqual(reqs.map((r) => r.req.method), ["M0", "M1", "M2"]);
  assert.equal(reqs[0].req.service, "svc.v1.S");
  assert.equal(reqs[0].req.timeoutNano, 0);
  for (const r of [...reqs].reverse()) {
    await writeAll(t.conn, encodeResponseFrame(r.id, { payload: te.encode(`r-${td.decode(r.req.payload)}`) }));
  }
  assert.deepEqual((await Promise.all(calls)).map((b) => td.decode(b)), ["r-p0", "r-p1", "r-p2"]);
});

strictTest("client: error status becomes a TtrpcError with code, message and details", async () => {
  await using t = await rawServer();
  const call = t.client.call("s", "m", new Uint8Array());
  const f = (await t.reader.next())!;
  const details = [{ typeUrl: "x/y", value: new Uint8Array([1]) }];
  await writeAll(
    t.conn,
    encodeResponseFrame(f.streamId, { status: { code: 9, message: "bad state", details }, payload: new Uint8Array() }),
  );
  await assert.rejects(call, (e) => {
    assert.ok(e instanceof TtrpcError);
    assert.equal(e.code, Code.FailedPrecondition);
    assert.equal(e.message, "bad state");
    assert.deepEqual(e.details, details);
    return true;
  });
});

strictTest("client: timeoutMs is sent as timeout_nano and the call rejects with DeadlineExceeded", async () => {
  await using t = await rawServer();
  const call = t.client.call("s", "m", new Uint8Array(), { timeoutMs: 30 });
  const f = (await t.reader.next())!;
  assert.equal(decodeRequest(f.data).timeoutNano, 30_000_000);
  await assert.rejects(call, { code: Code.DeadlineExceeded, message: "context deadline exceeded" });
  assert.equal(t.client.pendingCalls, 0);
  // A late answer is ignored and the client still works.
  await writeAll(t.conn, encodeResponseFrame(f.streamId, { payload: te.encode("late") }));
  const next = t.client.call("s", "m", new Uint8Array());
  const g = (await t.reader.next())!;
  await writeAll(t.conn, encodeResponseFrame(g.streamId, { payload: te.encode("next") }));
  assert.equal(td.decode(await next), "next");
  await assert.rejects(t.client.call("s", "m", new Uint8Array(), { timeoutMs: 0 }), { code: Code.DeadlineExceeded });
});

strictTest("client: an aborted signal cancels the call", async () => {
  await using t = await rawServer();
  const ctl = new AbortController();
  const call = t.client.call("s", "m", new Uint8Array(), { signal: ctl.signal });
  await t.reader.next();
  ctl.abort();
  await assert.rejects(call, { code: Code.Canceled });
  await assert.rejects(t.client.call("s", "m", new Uint8Array(), { signal: ctl.signal }), { code: Code.Canceled });
});

strictTest("client: metadata keys are lower-cased and repeated per value", async () => {
  await using t = await rawServer();
  t.client.call("s", "m", new Uint8Array(), { metadata: new Map([["A-Key", ["1", "2"]]]) }).catch(() => {});
  const req = decodeRequest((await t.reader.next())!.data);
  assert.deepEqual(req.metadata.map((kv) => [kv.key, kv.value]), [["a-key", "1"], ["a-key", "2"]]);
});

strictTest("client: peer EOF fails pending and later calls with ttrpc: closed", async () => {
  await using t = await rawServer();
  const call = t.client.call("s", "m", new Uint8Array());
  await t.reader.next();
  t.conn.close();
  await assert.rejects(call, (e) => {
    assert.ok(isClosedError(e));
    assert.equal((e as Error).message, "ttrpc: closed");
    return true;
  });
  await t.client.closed;
  assert.ok(t.client.isClosed);
  await assert.rejects(t.client.call("s", "m", new Uint8Array()), (e) => isClosedError(e));
});

strictTest("client: close() fails pending calls with ClosedError and calls onClose once", async () => {
  const dir = await tempSocketDir();
  const path = dir.path("c.sock");
  const listener = Deno.listen({ transport: "unix", path });
  const reasons: unknown[] = [];
  const client = await Client.connectUnix(path, { onClose: (r) => reasons.push(r) });
  const conn = await listener.accept();
  const call = client.call("s", "m", new Uint8Array());
  client.close();
  client.close();
  await assert.rejects(call, (e) => isClosedError(e));
  assert.deepEqual(reasons, [undefined]);
  conn.close();
  listener.close();
  await dir.remove();
});

strictTest("client: requests over 4 MiB are refused locally with ResourceExhausted", async () => {
  await using t = await rawServer();
  await assert.rejects(t.client.call("s", "m", new Uint8Array(4 << 20)), { code: Code.ResourceExhausted });
  // Nothing was sent and stream id 1 is still unused.
  const call = t.client.call("s", "m", new Uint8Array());
  const f = (await t.reader.next())!;
  assert.equal(f.streamId, 1);
  await writeAll(t.conn, encodeResponseFrame(1, { payload: new Uint8Array() }));
  await call;
});

strictTest("client: an oversized response fails that call only; data and unknown frames are ignored", async () => {
  await using t = await rawServer();
  const a = assert.rejects(t.client.call("s", "m", new Uint8Array()), { code: Code.ResourceExhausted });
  const b = t.client.call("s", "m", new Uint8Array());
  await t.reader.next();
  await t.reader.next();
  const big = new Uint8Array(10 + (4 << 20) + 1);
  writeFrameHeader(big, 0, (4 << 20) + 1, 1, FrameType.Response, 0);
  await writeAll(t.conn, encodeFrame(3, FrameType.Data, 0, te.encode("junk")));
  await writeAll(t.conn, encodeFrame(3, 0x42, 0, te.encode("junk")));
  await writeAll(t.conn, big);
  await a;
  await writeAll(t.conn, encodeResponseFrame(3, { payload: te.encode("b") }));
  assert.equal(td.decode(await b), "b");
});

strictTest("client: an undecodable response rejects that call with Internal", async () => {
  await using t = await rawServer();
  const a = t.client.call("s", "m", new Uint8Array());
  await t.reader.next();
  await writeAll(t.conn, encodeFrame(1, FrameType.Response, 0, new Uint8Array([0x0a, 0x7f])));
  await assert.rejects(a, { code: Code.Internal });
});
