/**
 * A ttrpc server in a process of its own, on the shim's transport (libc sockets through the poller, no net
 * permission), for tests and benchmarks that watch its memory: `deno run <flags> ttrpc_server.ts <socket path>`;
 * a second argument `deno` serves on `Deno.listen` instead (needs --allow-net), for comparison. It prints "ready <pid>" once listening and serves until killed.
 *
 * Methods of `containerd.task.v2.Task`: `State` answers a fixed 120-byte payload (about a real StateResponse),
 * `Echo` returns its request, `Slow` returns its request after 1–3 ms.
 *
 * @module
 */
import { Server } from "../../src/ttrpc/server.ts";
import { UnixListener } from "../../src/sys/unix_stream.ts";

export const STATE_REPLY = new Uint8Array(120).fill(0x61);

if (import.meta.main) {
  const path = Deno.args[0];
  if (!path) throw new Error("usage: ttrpc_server.ts <socket path>");
  const server = new Server();
  server.register("containerd.task.v2.Task", {
    State: () => STATE_REPLY,
    Echo: (p) => p,
    Slow: (p) => new Promise((resolve) => setTimeout(() => resolve(p), 1 + (p.length % 3))),
  });
  const listener = Deno.args[1] === "deno" ? Deno.listen({ transport: "unix", path }) : UnixListener.listen(path);
  server.serve(listener);
  console.log(`ready ${Deno.pid}`);
}
