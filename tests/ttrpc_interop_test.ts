/**
 * Interop proof against a real peer, containerd 1.6 (Go ttrpc), in both directions:
 * - our client talks to containerd's own ttrpc server (the endpoint shims publish events to): a forwarded
 *   `/tasks/oom` event must show up in `ctr events`, and calls containerd refuses must come back with its codes;
 * - containerd's shim client talks to our server: a stand-in shim binary hands containerd the socket of a server in
 *   this process, whose Create refuses with FailedPrecondition; `ctr run` must report exactly that error, and
 *   containerd's follow-up Delete and Shutdown calls must arrive with their deadlines.
 * Needs root and the lab (`tests/lab/mod.ts`).
 * @module
 */
import assert from "node:assert/strict";
import { Client } from "../src/ttrpc/client.ts";
import { type CallContext, Server } from "../src/ttrpc/server.ts";
import { Code, failedPrecondition, TtrpcError } from "../src/ttrpc/status.ts";
import { Any, encodeMessage, events, EVENTS_SERVICE, eventsService, nowTimestamp } from "../src/proto/mod.ts";
import { useLab } from "./lab/mod.ts";

const NAMESPACE = "ttrpc-interop";

/** An encoded `ForwardRequest` carrying a TaskOOM event for `containerId`. */
function forwardRequest(containerId: string, topic = "/tasks/oom"): Uint8Array {
  return encodeMessage(eventsService.ForwardRequest, {
    envelope: {
      timestamp: nowTimestamp(),
      namespace: NAMESPACE,
      topic,
      event: Any.create({
        type_url: "containerd.events.TaskOOM",
        value: encodeMessage(events.TaskOOM, { containerId }),
      }),
    },
  });
}

/** Collects ctr's stdout lines as they arrive. */
function lines(stream: ReadableStream<Uint8Array>): { seen: string[]; done: Promise<void> } {
  const seen: string[] = [];
  const done = (async () => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      seen.push(...parts);
    }
    if (rest) seen.push(rest);
  })();
  return { seen, done };
}

Deno.test("ttrpc interop: an event forwarded to containerd 1.6 shows up in ctr events; errors keep their codes", async () => {
  const lab = await useLab();
  const ctrEvents = lab.spawnCtr(["events"], { namespace: NAMESPACE });
  const out = lines(ctrEvents.stdout);
  const errText = new Response(ctrEvents.stderr).text();
  const client = await Client.connectUnix(lab.ttrpcAddress);
  try {
    const md = { "containerd-namespace-ttrpc": NAMESPACE };
    // `ctr events` subscribes asynchronously: forward until one of our events is printed.
    const ids: string[] = [];
    let line: string | undefined;
    for (let attempt = 0; attempt < 50 && !line; attempt++) {
      const id = `oom-${Deno.pid}-${attempt}`;
      ids.push(id);
      const reply = await client.call(EVENTS_SERVICE, "Forward", forwardRequest(id), { timeoutMs: 5000, metadata: md });
      assert.equal(reply.length, 0, "Forward answers google.protobuf.Empty");
      await new Promise((r) => setTimeout(r, 100));
      line = out.seen.find((l) => ids.some((i) => l.includes(`"${i}"`)));
    }
    assert.ok(line, `ctr events printed none of our events; saw: ${JSON.stringify(out.seen)}`);
    // ctr prints: <timestamp> <namespace> <topic> <event as JSON>
    assert.match(line, new RegExp(` ${NAMESPACE} /tasks/oom \\{"container_id":"oom-${Deno.pid}-\\d+"\\}$`));

    // containerd validates the envelope: a topic without a leading slash is InvalidArgument (errdefs → gRPC).
    await assert.rejects(
      client.call(EVENTS_SERVICE, "Forward", forwardRequest("bad", "tasks/oom"), { timeoutMs: 5000, metadata: md }),
      (e) => {
        assert.ok(e instanceof TtrpcError, String(e));
        assert.equal(e.code, Code.InvalidArgument);
        assert.match(e.message, /must start with '\/'/);
        return true;
      },
    );
    // Go's ttrpc server: unknown method and unknown service are Unimplemented.
    await assert.rejects(client.call(EVENTS_SERVICE, "Nope", new Uint8Array(), { timeoutMs: 5000 }), {
      code: Code.Unimplemented,
      message: "method Nope",
    });
    await assert.rejects(client.call("containerd.nope.v1.Nope", "Forward", new Uint8Array(), { timeoutMs: 5000 }), {
      code: Code.Unimplemented,
      message: "service containerd.nope.v1.Nope",
    });
    // An undecodable request message is refused by Go ttrpc's codec (Internal) and the connection survives.
    // (Never send a ForwardRequest without an envelope: containerd 1.6 dereferences it and crashes.)
    await assert.rejects(
      client.call(EVENTS_SERVICE, "Forward", new Uint8Array([0x0a, 0x7f]), { timeoutMs: 5000 }),
      { code: Code.Internal, message: "ttrpc: error unmarshalling payload: unexpected EOF" },
    );
    const again = await client.call(EVENTS_SERVICE, "Forward", forwardRequest("after-errors"), { metadata: md });
    assert.equal(again.length, 0);
  } finally {
    client.close();
    ctrEvents.kill("SIGTERM");
    await ctrEvents.status;
    await out.done;
    await errText;
  }
});

Deno.test("ttrpc interop: containerd 1.6 drives our server as a shim and gets our error codes", async () => {
  const lab = await useLab();
  const dir = await Deno.makeTempDir({ prefix: "ttrpc-interop-" });
  const sock = `${dir}/shim.sock`;
  const id = `ttrpc-fake-${Deno.pid}`;
  // The shim binary containerd runs: `start` prints our socket's address, `delete` has nothing to clean up.
  const shim = `${dir}/containerd-shim-ttrpcfake-v2`;
  await Deno.writeTextFile(
    shim,
    `#!/bin/sh\nfor a in "$@"; do last=$a; done\n[ "$last" = start ] && printf 'unix://${sock}'\nexit 0\n`,
  );
  await Deno.chmod(shim, 0o755);

  const calls: { method: string; ctx: CallContext }[] = [];
  const server = new Server();
  server.register("containerd.task.v2.Task", {
    Create: (_p, ctx) => {
      calls.push({ method: "Create", ctx });
      throw failedPrecondition("fake shim says no");
    },
    Delete: (_p, ctx) => {
      calls.push({ method: "Delete", ctx });
      throw failedPrecondition("nothing to delete");
    },
    Shutdown: (_p, ctx) => {
      calls.push({ method: "Shutdown", ctx });
      // Like a shim: answer first, then go away (containerd then runs the binary's `delete`).
      setTimeout(() => server.close(), 10);
      return new Uint8Array(0);
    },
  });
  const serving = server.serve(Deno.listen({ transport: "unix", path: sock }));
  try {
    const r = await lab.ctr(["run", "--rm", "--runtime", shim, lab.image, id, "true"], { timeoutMs: 30_000 });
    assert.notEqual(r.code, 0);
    // containerd mapped our status code 9 back to errdefs.ErrFailedPrecondition and kept our message.
    assert.match(r.stderr, /failed to create shim task: fake shim says no: failed precondition/);
    assert.deepEqual(calls.map((c) => c.method), ["Create", "Delete", "Shutdown"]);
    for (const c of calls.slice(1)) {
      const left = c.ctx.deadline! - Date.now();
      assert.ok(c.ctx.deadline && left < 60_000, `${c.method} carries containerd's deadline`);
    }
  } finally {
    server.close();
    await serving;
    await lab.ctr(["containers", "rm", id]).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
