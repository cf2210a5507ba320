import assert from "node:assert/strict";
import { ttrpc } from "../proto/mod.ts";
import { FrameType, HEADER_LENGTH, readFrameHeader } from "./frame.ts";
import {
  decodeRequest,
  decodeResponse,
  encodeRequestFrame,
  encodeResponseFrame,
  type RequestMessage,
  utf8Length,
} from "./message.ts";
import { Code, TtrpcError } from "./status.ts";
import { prng } from "./_test_util.ts";

const enc = new TextEncoder();

function randomString(rand: () => number, max: number): string {
  const pool = ["a", "Z", "/", "é", "€", "𝄞", "\u0000", "\ud800", "\udc00", "x-y", "ключ"];
  let s = "";
  const n = Math.floor(rand() * max);
  for (let i = 0; i < n; i++) s += pool[Math.floor(rand() * pool.length)];
  return s;
}

function randomBytes(rand: () => number, max: number): Uint8Array {
  return new Uint8Array(Math.floor(rand() * max)).map(() => Math.floor(rand() * 256));
}

Deno.test("utf8Length agrees with TextEncoder, including lone surrogates", () => {
  const rand = prng(3);
  for (let i = 0; i < 2000; i++) {
    const s = randomString(rand, 20);
    assert.equal(utf8Length(s), enc.encode(s).length, JSON.stringify(s));
  }
});

Deno.test("Request frames are byte-identical to the generated encoder and decode back", () => {
  const rand = prng(7);
  for (let i = 0; i < 2000; i++) {
    const req: RequestMessage = {
      service: randomString(rand, 6).replace(/[\ud800-\udfff]/g, "s"),
      method: randomString(rand, 4).replace(/[\ud800-\udfff]/g, "m"),
      payload: randomBytes(rand, rand() < 0.05 ? 5000 : 40),
      timeoutNano: rand() < 0.5 ? 0 : Math.floor(rand() * 2 ** (rand() * 53)),
      metadata: Array.from({ length: Math.floor(rand() * 3) }, () => ({
        key: randomString(rand, 5).replace(/[\ud800-\udfff]/g, "k"),
        value: randomString(rand, 5).replace(/[\ud800-\udfff]/g, "v"),
      })),
    };
    const frame = encodeRequestFrame(2 * i + 1, req);
    const h = readFrameHeader(frame);
    assert.deepEqual(h, {
      length: frame.length - HEADER_LENGTH,
      streamId: 2 * i + 1,
      type: FrameType.Request,
      flags: 0,
    });
    const body = frame.subarray(HEADER_LENGTH);
    assert.deepEqual(body, ttrpc.Request.encode(req).finish(), `request ${i}`);
    const back = decodeRequest(body);
    assert.equal(back.service, req.service);
    assert.equal(back.method, req.method);
    assert.deepEqual(back.payload, req.payload);
    assert.equal(back.timeoutNano, req.timeoutNano);
    assert.deepEqual(back.metadata.map((kv) => ({ key: kv.key, value: kv.value })), req.metadata);
  }
});

Deno.test("Response frames: OK carries an empty status like Go; errors carry code, message and details", () => {
  const ok = encodeResponseFrame(1, { payload: new Uint8Array([7]) }).subarray(HEADER_LENGTH);
  assert.deepEqual([...ok], [0x0a, 0x00, 0x12, 0x01, 0x07]); // Go: Response{Status:{}, Payload:[7]}
  assert.deepEqual([...encodeResponseFrame(1, { payload: new Uint8Array() }).subarray(HEADER_LENGTH)], [0x0a, 0x00]);

  const rand = prng(11);
  for (let i = 0; i < 1000; i++) {
    const code = rand() < 0.1 ? -Math.floor(rand() * 1000) : Math.floor(rand() * 17);
    const status = {
      code,
      message: randomString(rand, 8).replace(/[\ud800-\udfff]/g, "?"),
      details: Array.from({ length: Math.floor(rand() * 2) }, () => ({
        typeUrl: "type.googleapis.com/x" + i,
        value: randomBytes(rand, 10),
      })),
    };
    const payload = randomBytes(rand, 30);
    const body = encodeResponseFrame(3, { status, payload }).subarray(HEADER_LENGTH);
    const want = ttrpc.Response.encode({
      status: {
        code,
        message: status.message,
        details: status.details.map((d) => ({ type_url: d.typeUrl, value: d.value })),
      },
      payload,
    }).finish();
    assert.deepEqual(body, want, `response ${i}`);
    const back = decodeResponse(body);
    assert.deepEqual(back.status, status);
    assert.deepEqual(back.payload, payload);
  }
});

Deno.test("a response without a status decodes as OK", () => {
  const body = ttrpc.Response.encode({ payload: new Uint8Array([1, 2]) }).finish();
  const res = decodeResponse(body);
  assert.equal(res.status, undefined);
  assert.deepEqual([...res.payload], [1, 2]);
});

Deno.test("messages over 4 MiB are refused with ResourceExhausted before anything is sent", () => {
  const big = new Uint8Array(4 << 20);
  assert.throws(
    () => encodeRequestFrame(1, { service: "s", method: "m", payload: big }),
    (e) =>
      e instanceof TtrpcError && e.code === Code.ResourceExhausted && /exceed maximum message size/.test(e.message),
  );
  assert.throws(() => encodeResponseFrame(1, { payload: big }), (e) => e instanceof TtrpcError);
});

Deno.test("undecodable request bytes throw", () => {
  assert.throws(() => decodeRequest(new Uint8Array([0x0a, 0x05, 0x61])));
  assert.throws(() => decodeRequest(new Uint8Array([0x0f])));
});

/** Unknown fields of every wire type, as a newer client might add them (field numbers above the known five). */
function unknownFields(rand: () => number): number[] {
  const out: number[] = [];
  const n = Math.floor(rand() * 3);
  for (let i = 0; i < n; i++) {
    const field = 6 + Math.floor(rand() * 200);
    const tag = (wire: number) => {
      let v = field * 8 + wire;
      while (v >= 128) {
        out.push((v % 128) | 128);
        v = Math.floor(v / 128);
      }
      out.push(v);
    };
    switch (Math.floor(rand() * 5)) {
      case 0:
        tag(0), out.push(0xff, 0xff, 0x03);
        break;
      case 1:
        tag(1), out.push(1, 2, 3, 4, 5, 6, 7, 8);
        break;
      case 2:
        tag(2), out.push(3, 0x61, 0x62, 0x63);
        break;
      case 3:
        // A group holding a varint field, then its end.
        tag(3), out.push(0x08, 0x2a), tag(4);
        break;
      default:
        tag(5), out.push(9, 9, 9, 9);
    }
  }
  return out;
}

Deno.test("decodeRequest reads what the generated decoder reads: unknown fields, negative timeouts, repeats", () => {
  const rand = prng(19);
  for (let i = 0; i < 2000; i++) {
    const timeouts = [0, 1, 127, 128, 2 ** 31, 2 ** 32 + 5, 2 ** 52, -1, -5, -(2 ** 40)];
    const req = {
      service: randomString(rand, 6).replace(/[\ud800-\udfff]/g, "s"),
      method: randomString(rand, 4).replace(/[\ud800-\udfff]/g, "m"),
      payload: randomBytes(rand, 40),
      timeoutNano: timeouts[Math.floor(rand() * timeouts.length)],
      metadata: Array.from({ length: Math.floor(rand() * 3) }, () => ({
        key: randomString(rand, 5).replace(/[\ud800-\udfff]/g, "k"),
        value: randomString(rand, 5).replace(/[\ud800-\udfff]/g, "v"),
      })),
    };
    // Encoded field by field, unknown fields between them, and sometimes a field twice (the last one wins).
    const parts: number[] = [];
    const one = (m: object) => parts.push(...ttrpc.Request.encode(m).finish(), ...unknownFields(rand));
    if (rand() < 0.2) one({ service: "earlier" });
    one({ service: req.service });
    one({ method: req.method });
    one({ payload: req.payload });
    one({ timeoutNano: req.timeoutNano });
    one({ metadata: req.metadata });
    const body = new Uint8Array(parts);
    const want = ttrpc.Request.decode(body);
    const got = decodeRequest(body);
    assert.equal(got.service, want.service, `request ${i}`);
    assert.equal(got.method, want.method);
    assert.deepEqual(got.payload, want.payload);
    assert.equal(got.timeoutNano, want.timeoutNano, `request ${i} timeout`);
    assert.deepEqual(got.metadata, want.metadata.map((kv) => ({ key: kv.key, value: kv.value })));
    assert.equal(got.timeoutNano, req.timeoutNano);
  }
});

Deno.test("decodeRequest: a metadata entry with unknown fields or without a key, and defaults when absent", () => {
  // metadata { 3: varint 1, value: "v" } — no key.
  const body = new Uint8Array([0x2a, 0x05, 0x18, 0x01, 0x12, 0x01, 0x76]);
  assert.deepEqual(decodeRequest(body).metadata, [{ key: "", value: "v" }]);
  assert.deepEqual(decodeRequest(new Uint8Array(0)), {
    service: "",
    method: "",
    payload: new Uint8Array(0),
    timeoutNano: 0,
    metadata: [],
  });
});

Deno.test("decodeRequest refuses malformed requests", () => {
  const bad: [string, number[]][] = [
    ["service as a varint", [0x08, 0x01]],
    ["timeout as bytes", [0x22, 0x01, 0x00]],
    ["metadata as fixed32", [0x2d, 1, 2, 3, 4]],
    ["field number 0", [0x00, 0x01]],
    ["wire type 6", [0x36]],
    ["wire type 7", [0x3f]],
    ["an end of group alone", [0x34]],
    ["an unterminated group", [0x33, 0x08, 0x01]],
    ["a group ended by another field's end", [0x33, 0x3c]],
    ["a length past the end", [0x0a, 0x05, 0x61]],
    ["a truncated varint", [0x20, 0x80]],
    ["a metadata field overrunning its entry", [0x2a, 0x02, 0x0a, 0x05, 0x61, 0x61, 0x61, 0x61, 0x61]],
    ["an eleven-byte varint", [0x20, ...Array(10).fill(0xff), 0x01]],
  ];
  for (const [what, bytes] of bad) assert.throws(() => decodeRequest(new Uint8Array(bytes)), Error, what);
});
