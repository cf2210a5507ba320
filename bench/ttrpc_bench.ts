/**
 * ttrpc benchmarks: framing and envelope codecs, then unary round trips over a real unix socket (client and server in
 * this process), small and 1 MiB payloads, sequential and with many calls in flight, on every transport: `Deno.Conn`
 * (`Deno.listen`/`Deno.connect`, net permission) and the shim's libc sockets (`src/sys/unix_stream.ts`, no net
 * permission), read on Deno's reactor (what a server that has been idle once uses) and on the epoll poller (what it
 * uses before). Reported, not asserted; bench/ttrpc_rtt.ts interleaves the transports for steadier medians.
 *
 * @example
 * ```sh
 * deno bench --allow-all bench/ttrpc_bench.ts
 * ```
 * @module
 */
import { Client } from "../src/ttrpc/client.ts";
import { encodeFrame, FrameDecoder, FrameType, HEADER_LENGTH } from "../src/ttrpc/frame.ts";
import { decodeRequest, decodeResponse, encodeRequestFrame, encodeResponseFrame } from "../src/ttrpc/message.ts";
import { Server } from "../src/ttrpc/server.ts";
import { ttrpc } from "../src/proto/mod.ts";
import { UnixConn, UnixListener } from "../src/sys/unix_stream.ts";

const SERVICE = "containerd.task.v2.Task";
const small = new Uint8Array(64).fill(7);
const mib = new Uint8Array(1 << 20).fill(9);
const md = [{ key: "containerd-namespace-ttrpc", value: "default" }];
const request = { service: SERVICE, method: "State", payload: small, timeoutNano: 10e9, metadata: md };
const requestFrame = encodeRequestFrame(1, request);
const responseFrame = encodeResponseFrame(1, { payload: small });
const framesBlob = (() => {
  const one = encodeFrame(1, FrameType.Request, 0, small);
  const out = new Uint8Array(one.length * 100);
  for (let i = 0; i < 100; i++) out.set(one, i * one.length);
  return out;
})();

Deno.bench("frame: encodeFrame, 64 B data", { group: "frame" }, () => {
  encodeFrame(1, FrameType.Request, 0, small);
});

Deno.bench("frame: decode 100 frames of 64 B from one chunk", { group: "frame" }, () => {
  let n = 0;
  const d = new FrameDecoder({ onFrame: () => n++, onOversize: () => {} });
  d.push(framesBlob);
  if (n !== 100) throw new Error("decoder lost frames");
});

Deno.bench("frame: decode 100 frames of 64 B in 7-byte chunks", { group: "frame" }, () => {
  const d = new FrameDecoder({ onFrame: () => {}, onOversize: () => {} });
  for (let i = 0; i < framesBlob.length; i += 7) d.push(framesBlob.subarray(i, i + 7));
});

Deno.bench("codec: encodeRequestFrame (direct into frame)", { group: "request", baseline: true }, () => {
  encodeRequestFrame(1, request);
});

Deno.bench("codec: generated Request.encode + encodeFrame", { group: "request" }, () => {
  encodeFrame(1, FrameType.Request, 0, ttrpc.Request.encode(request).finish());
});

Deno.bench("codec: encodeRequestFrame, 1 MiB payload", { group: "request-1MiB", baseline: true }, () => {
  encodeRequestFrame(1, { service: SERVICE, method: "Echo", payload: mib });
});

Deno.bench("codec: generated Request.encode + encodeFrame, 1 MiB payload", { group: "request-1MiB" }, () => {
  encodeFrame(
    1,
    FrameType.Request,
    0,
    ttrpc.Request.encode({ service: SERVICE, method: "Echo", payload: mib }).finish(),
  );
});

Deno.bench("codec: decodeRequest", { group: "request" }, () => {
  decodeRequest(requestFrame.subarray(HEADER_LENGTH));
});

Deno.bench("codec: encodeResponseFrame", { group: "response" }, () => {
  encodeResponseFrame(1, { payload: small });
});

Deno.bench("codec: decodeResponse", { group: "response" }, () => {
  decodeResponse(responseFrame.subarray(HEADER_LENGTH));
});

// A live server and client per transport on unix sockets. The sockets' directory is removed once connected (the
// connections live on without the paths), so nothing is left behind.
const dir = await Deno.makeTempDir({ prefix: "ttrpc-bench-" });
const server = new Server();
server.register(SERVICE, { Echo: (p) => p, Empty: () => new Uint8Array(0) });
server.serve(Deno.listen({ transport: "unix", path: `${dir}/deno.sock` }));
server.serve(UnixListener.listen(`${dir}/libc.sock`, { reads: "reactor" }));
server.serve(UnixListener.listen(`${dir}/poller.sock`, { reads: "poller" }));
const clients = {
  "Deno.Conn": await Client.connectUnix(`${dir}/deno.sock`),
  "libc, reactor reads": new Client(await UnixConn.connect(`${dir}/libc.sock`, { reads: "reactor" })),
  "libc, poller reads": new Client(await UnixConn.connect(`${dir}/poller.sock`, { reads: "poller" })),
};
await Deno.remove(dir, { recursive: true });

for (const [transport, client] of Object.entries(clients)) {
  const baseline = transport === "Deno.Conn";
  Deno.bench(`round trip: 64 B echo, one call at a time (${transport})`, { group: "rpc", baseline }, async () => {
    await client.call(SERVICE, "Echo", small);
  });

  Deno.bench(
    `round trip: empty reply with timeout and metadata (${transport})`,
    { group: "rpc-md", baseline },
    async () => {
      await client.call(SERVICE, "Empty", small, {
        timeoutMs: 10_000,
        metadata: { "containerd-namespace-ttrpc": "default" },
      });
    },
  );

  Deno.bench(
    `throughput: 64 calls of 64 B in flight, per batch (${transport})`,
    { group: "rpc-64", baseline },
    async () => {
      const calls = [];
      for (let i = 0; i < 64; i++) calls.push(client.call(SERVICE, "Echo", small));
      await Promise.all(calls);
    },
  );

  Deno.bench(`throughput: 1 MiB echo, 2 MiB moved per call (${transport})`, { group: "bulk", baseline }, async () => {
    await client.call(SERVICE, "Echo", mib);
  });

  Deno.bench(`throughput: 8 × 1 MiB echo in flight (${transport})`, { group: "bulk-8", baseline }, async () => {
    const calls = [];
    for (let i = 0; i < 8; i++) calls.push(client.call(SERVICE, "Echo", mib));
    await Promise.all(calls);
  });
}
