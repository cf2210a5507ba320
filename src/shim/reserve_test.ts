import assert from "node:assert/strict";
import { Code } from "../ttrpc/status.ts";
import { encodeFrame, FrameType, HEADER_LENGTH, readFrameHeader } from "../ttrpc/frame.ts";
import { WireWriter } from "./wire.ts";
import {
  decodeReserveRequest,
  encodeReserveRequest,
  LIFECYCLE_SERVICE,
  RESERVE_METHOD,
  reserveFrame,
  responseStatus,
} from "./reserve.ts";
import { readFields, stringFields } from "./wire.ts";

Deno.test("ReserveRequest round-trips", () => {
  assert.deepEqual(decodeReserveRequest(encodeReserveRequest("k8s.io", "abc")), { namespace: "k8s.io", id: "abc" });
});

Deno.test("the Reserve frame is a ttrpc request on stream 1 naming the lifecycle service", () => {
  const frame = reserveFrame("ns", "id1");
  const h = readFrameHeader(frame);
  assert.equal(h.type, FrameType.Request);
  assert.equal(h.streamId, 1);
  assert.equal(h.length, frame.length - HEADER_LENGTH);
  const req = frame.subarray(HEADER_LENGTH);
  const f = stringFields(req);
  assert.equal(f.get(1), LIFECYCLE_SERVICE);
  assert.equal(f.get(2), RESERVE_METHOD);
  const payload = [...readFields(req)].find((x) => x.field === 3)!.bytes!;
  assert.deepEqual(decodeReserveRequest(payload), { namespace: "ns", id: "id1" });
});

Deno.test("a response's status code and message are read", () => {
  const status = new WireWriter().uint(1, Code.Unavailable).bytes(2, "shim server is exiting").finish();
  const frame = encodeFrame(1, FrameType.Response, 0, new WireWriter().bytes(1, status).finish());
  assert.deepEqual(responseStatus(frame), { code: Code.Unavailable, message: "shim server is exiting" });
  const ok = encodeFrame(1, FrameType.Response, 0, new Uint8Array());
  assert.deepEqual(responseStatus(ok), { code: 0, message: "" });
  assert.throws(() => responseStatus(encodeFrame(3, FrameType.Response, 0, new Uint8Array())), /stream 3/);
});
