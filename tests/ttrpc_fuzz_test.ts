/**
 * Robustness of the ttrpc server against random and mutated input, with a seeded PRNG (`TTRPC_FUZZ_SEED` to replay,
 * `TTRPC_FUZZ_FRAMES` to change the volume; default 120 000 frames; `deno task fuzz` runs 1 M). The server runs on
 * the shim's transport (libc sockets through the poller, `src/sys/unix_stream.ts`); clients use `Deno.connect`.
 *
 * Four kinds of connections run against one live server:
 * - framed connections: every frame keeps the framing intact (valid calls, garbage bodies, flipped bytes, even and
 *   re-used stream ids, Data frames, unknown types, random flags, oversized frames sent in full). An oracle that
 *   models the server's rules predicts exactly one answer (or none) per frame; every answer must match, and every
 *   well-formed call interleaved among the garbage must get its correct reply.
 * - breaking connections: a few correct calls, then input that destroys the framing (flipped header bytes, truncated
 *   frames, wrong lengths, raw noise, huge announced lengths). Whatever comes back must be well-formed Response
 *   frames; then the connection is dropped and the server must let it go.
 * Throughout, the server must not throw (an uncaught error fails the test) and must keep serving new clients.
 * @module
 */
import assert from "node:assert/strict";
import { Client } from "../src/ttrpc/client.ts";
import { encodeFrame, FrameType, HEADER_LENGTH, MAX_DATA_LENGTH, writeFrameHeader } from "../src/ttrpc/frame.ts";
import { decodeRequest, decodeResponse, encodeRequestFrame, type ResponseMessage } from "../src/ttrpc/message.ts";
import { Server } from "../src/ttrpc/server.ts";
import { Code, notFound } from "../src/ttrpc/status.ts";
import { FrameReader, prng, tempSocketDir, writeAll } from "../src/ttrpc/_test_util.ts";
import { type ReadMode, UnixListener } from "../src/sys/unix_stream.ts";
import { poller } from "../src/sys/poller.ts";

const SEED = Number(Deno.env.get("TTRPC_FUZZ_SEED") ?? 20240611);
const TOTAL_FRAMES = Number(Deno.env.get("TTRPC_FUZZ_FRAMES") ?? 120_000);
/** How the server's connections read (`src/sys/unix_stream.ts`'s ReadMode); default: the transport's default. */
const READS = Deno.env.get("TTRPC_FUZZ_READS") as ReadMode | undefined;
const FRAMED_CONNECTIONS = 6;
/** Connections of the other modes grow with the volume, so that a long run exercises them as much. */
const BREAKING_CONNECTIONS = Math.max(300, Math.round(TOTAL_FRAMES / 400));
const HALF_CLOSING_CONNECTIONS = Math.max(200, Math.round(TOTAL_FRAMES / 600));
const NEVER_READING_CONNECTIONS = Math.max(2, Math.round(TOTAL_FRAMES / 100_000));
/** A never-reading connection stops sending at this many frames, or when the server has stopped taking them. */
const NEVER_READING_MAX_FRAMES = 200_000;
const NEVER_READING_STALL_MS = 1_000;
const SERVICE = "fuzz.v1.Echo";
/** A framed connection whose server neither answers nor takes more bytes for this long is declared stalled. */
const STALL_MS = 5_000;
const EMPTY = new Uint8Array(0);

type Rand = () => number;
const int = (rand: Rand, n: number) => Math.floor(rand() * n);
const bytes = (rand: Rand, n: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = int(rand, 256);
  return b;
};

/** What the oracle expects on one stream: a predicate over the decoded response, with a description. */
interface Expectation {
  what: string;
  accept(res: ResponseMessage): boolean;
}

function expectCode(code: Code, message?: string | RegExp): Expectation {
  return {
    what: `code ${code} ${message ?? ""}`,
    accept: (res) =>
      (res.status?.code ?? 0) === code &&
      (message === undefined ||
        (typeof message === "string" ? res.status?.message === message : message.test(res.status?.message ?? ""))),
  };
}

function expectPayload(payload: Uint8Array, alsoDeadline = false): Expectation {
  return {
    what: `payload of ${payload.length} bytes${alsoDeadline ? " or DeadlineExceeded" : ""}`,
    accept: (res) =>
      ((res.status?.code ?? 0) === 0 && equalBytes(res.payload, payload)) ||
      (alsoDeadline && res.status?.code === Code.DeadlineExceeded),
  };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A model of one server connection's rules, predicting the answer to each frame sent on it. */
class Oracle {
  lastStreamId = 0;
  nextId = 1;

  /** A fresh odd stream id that the server has not seen. */
  freshId(): number {
    const id = Math.max(this.nextId, this.lastStreamId + 2) | 1;
    this.nextId = id + 2;
    return id;
  }

  /** The answer the server must give to this frame, or null when it must stay silent. */
  predict(type: number, streamId: number, data: Uint8Array, announced = data.length): Expectation | null {
    if (type === FrameType.Data) return expectCode(Code.InvalidArgument, "StreamID is no longer active");
    if (type !== FrameType.Request) return null;
    if (announced > MAX_DATA_LENGTH) {
      return expectCode(Code.ResourceExhausted, `message length ${announced} exceed maximum message size of 4194304`);
    }
    let req;
    try {
      req = decodeRequest(data);
    } catch {
      return expectCode(Code.InvalidArgument, /^unmarshal request error: /);
    }
    if (streamId % 2 !== 1) {
      return expectCode(Code.InvalidArgument, "StreamID must be odd for client initiated streams");
    }
    if (streamId <= this.lastStreamId) {
      return expectCode(Code.InvalidArgument, "StreamID cannot be re-used and must increment");
    }
    this.lastStreamId = streamId;
    if (req.service !== SERVICE) return expectCode(Code.Unimplemented, `service ${req.service}`);
    if (!["Echo", "Fail", "Slow"].includes(req.method)) return expectCode(Code.Unimplemented, `method ${req.method}`);
    if (req.timeoutNano < 0) return expectCode(Code.DeadlineExceeded);
    if (req.method === "Fail") return expectCode(Code.NotFound, `fail ${req.payload.length}: not found`);
    // Slow answers after a timer; under load any short deadline (here: under 1 s) may win that race.
    const racy = req.method === "Slow" && req.timeoutNano > 0 && req.timeoutNano < 1e9;
    return expectPayload(req.payload, racy);
  }
}

function newServer(): Server {
  const server = new Server();
  server.register(SERVICE, {
    Echo: (p) => p,
    Fail: (p) => {
      throw notFound(`fail ${p.length}: not found`);
    },
    Slow: (p) => new Promise((resolve) => setTimeout(() => resolve(p), 1 + (p.length % 3))),
  });
  return server;
}

/** A well-formed request for a random method of the echo service. */
function validRequest(rand: Rand, streamId: number, method?: string): Uint8Array {
  const r = rand();
  method ??= r < 0.8 ? "Echo" : r < 0.9 ? "Fail" : "Slow";
  return encodeRequestFrame(streamId, {
    service: SERVICE,
    method,
    payload: bytes(rand, int(rand, rand() < 0.02 ? 20_000 : 120)),
    timeoutNano: rand() < 0.2 ? (rand() < 0.5 ? 60e9 : 1 + int(rand, 30e6)) : 0,
    metadata: rand() < 0.2 ? [{ key: "containerd-namespace-ttrpc", value: "fuzz" }] : undefined,
  });
}

interface Sent {
  frame: Uint8Array;
  expect: Expectation | null;
  streamId: number;
  wellFormed: boolean;
}

/** One frame for a framed connection: valid or garbage, but always correctly framed. */
function framedFrame(rand: Rand, o: Oracle): Sent {
  const r = rand();
  let frame: Uint8Array;
  let wellFormed = false;
  if (r < 0.35) {
    frame = validRequest(rand, o.freshId());
    wellFormed = true;
  } else if (r < 0.42) {
    const unknownService = rand() < 0.5;
    frame = encodeRequestFrame(o.freshId(), {
      service: unknownService ? "fuzz.v1.Nope" : SERVICE,
      method: unknownService ? "Echo" : ["Nope", "constructor", "__proto__", "toString", ""][int(rand, 5)],
      payload: bytes(rand, int(rand, 20)),
    });
  } else if (r < 0.52) {
    frame = encodeFrame(o.freshId(), FrameType.Request, 0, bytes(rand, int(rand, 64))); // garbage body
  } else if (r < 0.64) {
    frame = validRequest(rand, o.freshId()); // flipped bytes inside the body
    const flips = 1 + int(rand, 4);
    for (let i = 0; i < flips && frame.length > HEADER_LENGTH; i++) {
      const at = HEADER_LENGTH + int(rand, frame.length - HEADER_LENGTH);
      frame[at] = rand() < 0.5 ? frame[at] ^ (1 << int(rand, 8)) : int(rand, 256);
    }
  } else if (r < 0.69) {
    frame = validRequest(rand, 2 * (1 + int(rand, 1 << 20))); // even stream id
  } else if (r < 0.74) {
    // A re-used id (any odd id up to the last one accepted), or a fresh one while none was accepted yet.
    frame = validRequest(rand, o.lastStreamId === 0 ? o.freshId() : 1 + 2 * int(rand, (o.lastStreamId + 1) / 2));
  } else if (r < 0.80) {
    // Data frames on even ids: never an active stream.
    frame = encodeFrame(2 * (1 + int(rand, 1 << 20)), FrameType.Data, int(rand, 8), bytes(rand, int(rand, 32)));
  } else if (r < 0.87) {
    const type = [0, FrameType.Response, 4 + int(rand, 252)][int(rand, 3)];
    frame = encodeFrame(o.freshId(), type, int(rand, 256), bytes(rand, int(rand, 64))); // unknown/ignored types
  } else if (r < 0.93) {
    frame = validRequest(rand, o.freshId());
    frame[9] = int(rand, 256); // random flags: a unary server ignores them
    wellFormed = true;
  } else if (r < 0.9999) {
    frame = encodeFrame(o.freshId(), FrameType.Request, 0, EMPTY); // empty request: service "" → Unimplemented
  } else {
    // A real oversized frame, sent in full: the body is skipped and the stream keeps its framing.
    const len = MAX_DATA_LENGTH + 1 + int(rand, 100);
    frame = new Uint8Array(HEADER_LENGTH + len);
    writeFrameHeader(frame, 0, len, o.freshId(), FrameType.Request, 0);
  }
  const streamId = new DataView(frame.buffer, frame.byteOffset).getUint32(4);
  const announced = new DataView(frame.buffer, frame.byteOffset).getUint32(0);
  const expect = o.predict(frame[8], streamId, frame.subarray(HEADER_LENGTH), announced);
  return { frame, expect, streamId, wellFormed };
}

/** Runs one framed connection: sends `count` frames in batches while collecting answers, then checks them all. */
async function framedConnection(path: string, seed: number, count: number) {
  const rand = prng(seed);
  const o = new Oracle();
  const conn = await Deno.connect({ transport: "unix", path });
  const reader = new FrameReader(conn);
  const expected = new Map<number, Expectation[]>();
  let expectedCount = 0, wellFormed = 0;
  const received: { streamId: number; res: ResponseMessage }[] = [];
  // What the server has taken so far: an oversized frame is megabytes that it reads and skips with no answer, which
  // on a slow or loaded machine takes longer than STALL_MS (7 s seen). Progress there is the sending, not the answers.
  let taken = 0;
  const counting = {
    write: async (p: Uint8Array) => {
      const n = await conn.write(p);
      taken += n;
      return n;
    },
  };
  const sending = (async () => {
    for (let sent = 0; sent < count;) {
      const batch: Uint8Array[] = [];
      let size = 0;
      while (sent < count && batch.length < 256) {
        const s = framedFrame(rand, o);
        sent++;
        batch.push(s.frame);
        size += s.frame.length;
        if (s.wellFormed) wellFormed++;
        if (s.expect) {
          expectedCount++;
          const list = expected.get(s.streamId) ?? [];
          list.push(s.expect);
          expected.set(s.streamId, list);
        }
      }
      const buf = new Uint8Array(size);
      let off = 0;
      for (const f of batch) {
        buf.set(f, off);
        off += f.length;
      }
      await writeAll(counting, buf);
    }
  })();
  let sendDone = false;
  sending.then(() => sendDone = true, () => sendDone = true); // a send failure surfaces at `await sending`
  // A missing answer would otherwise hang the test: drop the connection when answers stop coming.
  let seen = -1, seenTaken = -1, stalled = false;
  const watchdog = setInterval(() => {
    if (received.length === seen && taken === seenTaken) {
      stalled = true;
      conn.close();
    }
    seen = received.length;
    seenTaken = taken;
  }, STALL_MS);
  try {
    while (!sendDone || received.length < expectedCount) {
      const f = await reader.next();
      assert.ok(
        f,
        `seed ${seed}: ${stalled ? "no answer for a while" : "connection closed"} after ${received.length}/` +
          `${expectedCount} answers`,
      );
      assert.equal(f.type, FrameType.Response);
      received.push({ streamId: f.streamId, res: decodeResponse(f.data) });
      if (sendDone && received.length > expectedCount) break;
    }
  } finally {
    clearInterval(watchdog);
  }
  await sending;
  // A final call proves nothing else is queued: its answer must be the very next frame.
  const lastId = o.freshId();
  await writeAll(conn, validRequest(rand, lastId, "Echo"));
  const last = await reader.next();
  assert.equal(last?.streamId, lastId, `seed ${seed}: unexpected extra answer on stream ${last?.streamId}`);
  conn.close();

  assert.equal(received.length, expectedCount, `seed ${seed}: answer count`);
  for (const { streamId, res } of received) {
    const list = expected.get(streamId);
    assert.ok(
      list && list.length > 0,
      `seed ${seed}: unexpected answer on stream ${streamId}: ${JSON.stringify(res.status)}`,
    );
    const i = list.findIndex((e) => e.accept(res));
    assert.ok(
      i >= 0,
      `seed ${seed}: stream ${streamId}: got ${JSON.stringify(res.status)} (${res.payload.length} bytes), ` +
        `expected ${list.map((e) => e.what).join(" | ")}`,
    );
    list.splice(i, 1);
  }
  return { frames: count + 1, answers: received.length, wellFormed };
}

/** Input that destroys the framing, built from a valid frame or from nothing. */
function breakingBytes(rand: Rand, streamId: number): Uint8Array {
  const frame = validRequest(rand, streamId);
  switch (int(rand, 6)) {
    case 0: { // flipped header byte (length, id or type)
      const at = int(rand, HEADER_LENGTH);
      frame[at] ^= 1 << int(rand, 8);
      return frame;
    }
    case 1: // truncated
      return frame.subarray(0, int(rand, frame.length));
    case 2: { // wrong length, larger or smaller than the body
      new DataView(frame.buffer).setUint32(0, Math.max(0, frame.length - HEADER_LENGTH + int(rand, 200) - 100));
      return frame;
    }
    case 3: // raw noise
      return bytes(rand, 1 + int(rand, 500));
    case 4: { // huge announced length, no body
      const h = new Uint8Array(HEADER_LENGTH);
      writeFrameHeader(h, 0, MAX_DATA_LENGTH + 1 + int(rand, 0xffffffff - MAX_DATA_LENGTH - 1), streamId, 1, 0);
      return h;
    }
    default: { // a header announcing a body that never fully comes
      const h = new Uint8Array(HEADER_LENGTH + 10);
      writeFrameHeader(h, 0, 1000, streamId, FrameType.Request, 0);
      return h;
    }
  }
}

async function breakingConnection(path: string, seed: number) {
  const rand = prng(seed);
  const conn = await Deno.connect({ transport: "unix", path });
  const reader = new FrameReader(conn);
  let frames = 0, id = 1;
  // Correct calls first: all of them must be answered correctly.
  const calls = 1 + int(rand, 4);
  for (let i = 0; i < calls; i++, id += 2) {
    await writeAll(conn, encodeRequestFrame(id, { service: SERVICE, method: "Echo", payload: bytes(rand, 8) }));
    frames++;
    const f = await reader.next();
    assert.equal(f?.streamId, id, `seed ${seed}`);
    assert.equal(decodeResponse(f!.data).status?.code ?? 0, 0, `seed ${seed}`);
  }
  // Then garbage, possibly mixed with more requests that may or may not be understood any more.
  const pieces = 1 + int(rand, 40);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < pieces; i++, id += 2) {
    parts.push(rand() < 0.5 ? breakingBytes(rand, id) : validRequest(rand, id));
    frames++;
  }
  for (const p of parts) await writeAll(conn, p);
  // Whatever the server answers must be well-formed responses; it may also wait for bytes that never come.
  const drain = (async () => {
    for (;;) {
      const f = await reader.next();
      if (!f) return;
      assert.equal(f.type, FrameType.Response, `seed ${seed}`);
      decodeResponse(f.data);
    }
  })();
  await new Promise((r) => setTimeout(r, 2));
  conn.close();
  await drain;
  return frames;
}

/** 1–20 framed frames, then a half-close: every predicted answer must come before the server closes. */
async function halfClosingConnection(path: string, seed: number) {
  const rand = prng(seed);
  const o = new Oracle();
  const conn = await Deno.connect({ transport: "unix", path });
  const reader = new FrameReader(conn);
  const expected = new Map<number, Expectation[]>();
  let expectedCount = 0;
  const count = 1 + int(rand, 20);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    let s = framedFrame(rand, o);
    while (s.frame.length > 1 << 20) s = framedFrame(rand, o); // no oversized frames here: keep it quick
    parts.push(s.frame);
    if (s.expect) {
      expectedCount++;
      expected.set(s.streamId, [...(expected.get(s.streamId) ?? []), s.expect]);
    }
  }
  for (const p of parts) await writeAll(conn, p);
  await conn.closeWrite();
  let received = 0;
  for (let f = await reader.next(); f !== null; f = await reader.next()) {
    const res = decodeResponse(f.data);
    const list = expected.get(f.streamId);
    const i = list?.findIndex((e) => e.accept(res)) ?? -1;
    assert.ok(
      i >= 0,
      `seed ${seed}: half-closed: unexpected answer on stream ${f.streamId}: ${JSON.stringify(res.status)}`,
    );
    list!.splice(i, 1);
    received++;
  }
  conn.close();
  assert.equal(received, expectedCount, `seed ${seed}: half-closed client got ${received} of ${expectedCount} answers`);
  return count;
}

/** Valid calls as fast as the server takes them, never reading; ends when the server stops taking them. */
async function neverReadingConnection(path: string, seed: number) {
  const rand = prng(seed);
  const conn = await Deno.connect({ transport: "unix", path });
  let sent = 0, id = 1, stalled = false;
  try {
    while (sent < NEVER_READING_MAX_FRAMES && !stalled) {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 1000; i++, id += 2) frames.push(validRequest(rand, id, "Echo"));
      const buf = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
      frames.reduce((off, f) => (buf.set(f, off), off + f.length), 0);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const written = writeAll(conn, buf).then(() => true, () => true);
      const waited = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), NEVER_READING_STALL_MS));
      stalled = !(await Promise.race([written, waited]));
      clearTimeout(timer);
      if (!stalled) sent += frames.length;
    }
  } finally {
    conn.close();
  }
  return { sent, stalled };
}

Deno.test("ttrpc fuzz: random and mutated frames never break the server", async () => {
  const started = performance.now();
  const dir = await tempSocketDir();
  const path = dir.path("fuzz.sock");
  const server = newServer();
  const serving = server.serve(UnixListener.listen(path, { reads: READS }));
  try {
    const rand = prng(SEED);
    let breakingFrames = 0, halfClosingFrames = 0;
    const breakingRun = (async () => {
      for (let i = 0; i < BREAKING_CONNECTIONS; i += 4) {
        const batch = [0, 1, 2, 3].map((k) => breakingConnection(path, int(rand, 2 ** 31) + k));
        for (const n of await Promise.all(batch)) breakingFrames += n;
      }
    })();
    breakingRun.catch(() => {}); // awaited below; this only keeps an early failure from counting as unhandled
    const halfClosingRun = (async () => {
      for (let i = 0; i < HALF_CLOSING_CONNECTIONS; i += 4) {
        const batch = [0, 1, 2, 3].map((k) => halfClosingConnection(path, int(rand, 2 ** 31) + k));
        for (const n of await Promise.all(batch)) halfClosingFrames += n;
      }
    })();
    halfClosingRun.catch(() => {});
    // Never-reading clients start first and run alongside everything else: the others must still be served.
    const neverReadingRun = Promise.all(
      Array.from({ length: NEVER_READING_CONNECTIONS }, (_, i) => neverReadingConnection(path, SEED * 17 + i)),
    );
    neverReadingRun.catch(() => {});
    const perConn = Math.ceil(
      (TOTAL_FRAMES - BREAKING_CONNECTIONS * 20 - HALF_CLOSING_CONNECTIONS * 10) / FRAMED_CONNECTIONS,
    );
    const framed = await Promise.all(
      Array.from({ length: FRAMED_CONNECTIONS }, (_, i) => framedConnection(path, SEED * 31 + i, perConn)),
    );
    await breakingRun;
    await halfClosingRun;
    const neverReading = await neverReadingRun;
    const neverReadingFrames = neverReading.reduce((n, r) => n + r.sent, 0);
    const framedFrames = framed.reduce((n, r) => n + r.frames, 0);
    const total = framedFrames + breakingFrames + halfClosingFrames;
    const answers = framed.reduce((n, r) => n + r.answers, 0);
    const wellFormed = framed.reduce((n, r) => n + r.wellFormed, 0);
    console.log(
      `seed ${SEED}: ${total} frames (${framedFrames} framed, ${breakingFrames} on ${BREAKING_CONNECTIONS} breaking ` +
        `connections, ${halfClosingFrames} on ${HALF_CLOSING_CONNECTIONS} half-closing connections, every answer ` +
        `received), ${answers} framed answers checked, ${wellFormed} well-formed calls answered correctly; ` +
        `${NEVER_READING_CONNECTIONS} never-reading connections sent ${neverReadingFrames} more frames ` +
        `(${neverReading.filter((r) => r.stalled).length} held back by the server); ` +
        `${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    for (const r of neverReading) {
      assert.ok(r.stalled, `a never-reading client got ${r.sent} requests in without being held back`);
    }
    assert.ok(total >= 100_000 || TOTAL_FRAMES < 100_000, `only ${total} frames`);

    // The server let every connection go and still serves.
    for (let i = 0; i < 100 && server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(server.connectionCount, 0);
    const client = await Client.connectUnix(path);
    const out = await client.call(SERVICE, "Echo", new TextEncoder().encode("still alive"));
    assert.equal(new TextDecoder().decode(out), "still alive");
    client.close();
  } finally {
    await server.shutdown({ graceful: false });
    await serving;
    await dir.remove();
    await poller().idle();
  }
});
