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
