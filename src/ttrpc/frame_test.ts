import assert from "node:assert/strict";
import {
  encodeFrame,
  type Frame,
  FrameDecoder,
  type FrameHeader,
  FrameType,
  HEADER_LENGTH,
  MAX_DATA_LENGTH,
  readFrameHeader,
  writeFrameHeader,
} from "./frame.ts";
import { prng } from "./_test_util.ts";

function collect(maxDataLength?: number) {
  const frames: Frame[] = [];
  const oversize: FrameHeader[] = [];
  const decoder = new FrameDecoder({
    onFrame: (f) => frames.push(f),
    onOversize: (h) => oversize.push(h),
    maxDataLength,
  });
  return { frames, oversize, decoder };
}

Deno.test("frame header is big-endian length, stream id, type, flags", () => {
  const buf = new Uint8Array(HEADER_LENGTH);
  writeFrameHeader(buf, 0, 0x01020304, 0xfffffffd, FrameType.Response, 0x05);
  assert.deepEqual([...buf], [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xfd, 2, 5]);
  assert.deepEqual(readFrameHeader(buf), { length: 0x01020304, streamId: 0xfffffffd, type: 2, flags: 5 });
});

Deno.test("encodeFrame puts header and data in one buffer and refuses more than 4 MiB", () => {
  const f = encodeFrame(7, FrameType.Request, 0, new Uint8Array([9, 8, 7]));
  assert.deepEqual([...f], [0, 0, 0, 3, 0, 0, 0, 7, 1, 0, 9, 8, 7]);
  assert.equal(MAX_DATA_LENGTH, 4194304);
  assert.doesNotThrow(() => encodeFrame(1, 1, 0, new Uint8Array(MAX_DATA_LENGTH)));
  assert.throws(
    () => encodeFrame(1, 1, 0, new Uint8Array(MAX_DATA_LENGTH + 1)),
    /message length 4194305 exceed maximum message size of 4194304/,
  );
});

Deno.test("decoder reassembles frames from any chunking, including one byte at a time", () => {
  const rand = prng(42);
  const sent: Frame[] = [];
  const parts: Uint8Array[] = [];
  for (let i = 0; i < 200; i++) {
    const len = rand() < 0.1 ? 0 : Math.floor(rand() * (rand() < 0.1 ? 200_000 : 300));
    const data = new Uint8Array(len).map(() => Math.floor(rand() * 256));
    const f = { streamId: 2 * i + 1, type: 1 + Math.floor(rand() * 3), flags: Math.floor(rand() * 8), data };
    sent.push(f);
    parts.push(encodeFrame(f.streamId, f.type, f.flags, f.data));
  }
  const stream = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    stream.set(p, o);
    o += p.length;
  }
  for (const mode of ["bytewise", "random", "whole"]) {
    const { frames, oversize, decoder } = collect();
    if (mode === "whole") decoder.push(stream);
    else if (mode === "bytewise") { for (let i = 0; i < stream.length; i++) decoder.push(stream.subarray(i, i + 1)); }
    else {
      for (let i = 0; i < stream.length;) {
        const n = 1 + Math.floor(rand() * (rand() < 0.5 ? 16 : 70_000));
        decoder.push(stream.subarray(i, i + n));
        i += n;
      }
    }
    assert.equal(oversize.length, 0);
    assert.equal(frames.length, sent.length, mode);
    for (let i = 0; i < sent.length; i++) assert.deepEqual(frames[i], sent[i], `${mode} frame ${i}`);
    assert.ok(decoder.idle);
  }
});

Deno.test("decoder copies data out: reusing the pushed chunk does not change delivered frames", () => {
  const { frames, decoder } = collect();
  const chunk = encodeFrame(1, FrameType.Request, 0, new Uint8Array([1, 2, 3]));
  decoder.push(chunk);
  chunk.fill(0xee);
  assert.deepEqual([...frames[0].data], [1, 2, 3]);
});

Deno.test("oversized frame: header reported at once, body skipped, following frames still decoded", () => {
  const { frames, oversize, decoder } = collect(1024);
  const big = new Uint8Array(HEADER_LENGTH + 5000);
  writeFrameHeader(big, 0, 5000, 9, FrameType.Request, 0);
  big.fill(0x41, HEADER_LENGTH);
  const next = encodeFrame(11, FrameType.Request, 0, new Uint8Array([1]));
  decoder.push(big.subarray(0, HEADER_LENGTH + 10));
  assert.deepEqual(oversize, [{ length: 5000, streamId: 9, type: 1, flags: 0 }]);
  assert.equal(decoder.skipping, 4990);
  for (let i = HEADER_LENGTH + 10; i < big.length; i += 777) {
    decoder.push(big.subarray(i, Math.min(i + 777, big.length)));
  }
  assert.equal(decoder.skipping, 0);
  decoder.push(next);
  assert.equal(frames.length, 1);
  assert.equal(frames[0].streamId, 11);
  assert.equal(oversize.length, 1);
});

Deno.test("oversized frame at the default limit is reported with the exact announced length", () => {
  const { frames, oversize, decoder } = collect();
  const h = new Uint8Array(HEADER_LENGTH);
  writeFrameHeader(h, 0, MAX_DATA_LENGTH + 1, 3, FrameType.Request, 0);
  decoder.push(h);
  assert.equal(oversize[0].length, 4194305);
  assert.equal(frames.length, 0);
  // A frame of exactly the limit is fine.
  const ok = collect();
  ok.decoder.push(encodeFrame(5, FrameType.Request, 0, new Uint8Array(MAX_DATA_LENGTH)));
  assert.equal(ok.frames[0].data.length, MAX_DATA_LENGTH);
});

Deno.test("a partial header is kept until the rest arrives", () => {
  const { frames, decoder } = collect();
  const f = encodeFrame(0xabcdef01, 0x7f, 0x80, new Uint8Array([5]));
  decoder.push(f.subarray(0, 9));
  assert.equal(frames.length, 0);
  assert.ok(!decoder.idle);
  decoder.push(f.subarray(9));
  assert.deepEqual(frames[0], { streamId: 0xabcdef01, type: 0x7f, flags: 0x80, data: new Uint8Array([5]) });
});
