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
  reservePlace,
  responseStatus,
  sendReserve,
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

/**
 * Two ttrpc servers in a worker (reservePlace blocks this thread while it waits for the answer): on `current` one
 * that answers Reserve (success, or Unavailable for container id "exiting"), on `legacy` one that predates
 * reservations (no such service).
 */
async function serversInWorker(current: string, legacy: string): Promise<Worker> {
  const server = new URL("../ttrpc/server.ts", import.meta.url).href;
  const status = new URL("../ttrpc/status.ts", import.meta.url).href;
  const reserve = new URL("./reserve.ts", import.meta.url).href;
  const code = `
    import { Server } from ${JSON.stringify(server)};
    import { unavailable } from ${JSON.stringify(status)};
    import { decodeReserveRequest, LIFECYCLE_SERVICE, RESERVE_METHOD } from ${JSON.stringify(reserve)};
    const s = new Server();
    s.register(LIFECYCLE_SERVICE, {
      [RESERVE_METHOD]: (payload: Uint8Array) => {
        if (decodeReserveRequest(payload).id === "exiting") throw unavailable("shim server is exiting");
        return new Uint8Array();
      },
    });
    s.serve(Deno.listen({ transport: "unix", path: ${JSON.stringify(current)} }));
    new Server().serve(Deno.listen({ transport: "unix", path: ${JSON.stringify(legacy)} }));
    self.postMessage("listening");
  `;
  const url = URL.createObjectURL(new Blob([code], { type: "application/typescript" }));
  const worker = new Worker(url, { type: "module" });
  await new Promise<void>((resolve) => {
    worker.onmessage = (e) => e.data === "listening" && resolve();
  });
  return worker;
}

Deno.test("reservePlace: reserved, refused by an exiting server, a server predating reservations, nothing there", async () => {
  const dir = await Deno.makeTempDir();
  const worker = await serversInWorker(`${dir}/current.sock`, `${dir}/legacy.sock`);
  try {
    assert.deepEqual(reservePlace(`${dir}/current.sock`, "ns", "a"), { kind: "reserved" });
    assert.deepEqual(reservePlace(`${dir}/current.sock`, "ns", "exiting"), {
      kind: "refused",
      reason: "shim server is exiting",
    });
    assert.deepEqual(reservePlace(`${dir}/legacy.sock`, "ns", "a"), { kind: "reserved" });
    assert.deepEqual(reservePlace(`${dir}/none.sock`, "ns", "a"), { kind: "absent" });
  } finally {
    worker.terminate();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sendReserve: the server answers while the caller works; finish() reads the answer then", async () => {
  const dir = await Deno.makeTempDir();
  const worker = await serversInWorker(`${dir}/current.sock`, `${dir}/legacy.sock`);
  try {
    const ok = sendReserve(`${dir}/current.sock`, "ns", "a");
    const exiting = sendReserve(`${dir}/current.sock`, "ns", "exiting");
    const none = sendReserve(`${dir}/none.sock`, "ns", "a");
    await new Promise((r) => setTimeout(r, 200)); // both answers are written by now, and wait in the sockets
    assert.deepEqual(ok.finish(), { kind: "reserved" });
    assert.deepEqual(exiting.finish(), { kind: "refused", reason: "shim server is exiting" });
    assert.deepEqual(none.finish(), { kind: "absent" });
  } finally {
    worker.terminate();
    await Deno.remove(dir, { recursive: true });
  }
});
