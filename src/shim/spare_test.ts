import assert from "node:assert/strict";
import { listeningSockets } from "../../tools/leftovers.ts";
import { decodeHandoff, encodeHandoff, type Handoff, handToSpare, sparePath } from "./spare.ts";
import { listenUnix, unixExchange } from "../sys/unix_socket.ts";
import { closeFd, pipe } from "../sys/fdio.ts";

const HANDOFF: Handoff = {
  namespace: "default",
  id: "c1",
  bundle: "/run/containerd/io.containerd.runtime.v2.task/default/c1",
  socket: "/run/containerd/s/abc",
  debug: false,
  execDeleteEvents: true,
  spareMs: 10_000,
};

Deno.test("sparePath: one per build, containerd and environment; NAMESPACE does not count", () => {
  const env = { TTRPC_ADDRESS: "/run/containerd/containerd.sock.ttrpc", NAMESPACE: "default" };
  const base = sparePath("/run/containerd/s", "/run/containerd/containerd.sock", "b1", env);
  assert.match(base, /^\/run\/containerd\/s\/[0-9a-f]{64}$/);
  assert.equal(
    sparePath("/run/containerd/s", "/run/containerd/containerd.sock", "b1", { ...env, NAMESPACE: "k8s.io" }),
    base,
  );
  assert.equal(
    sparePath("/run/containerd/s", "/run/containerd/containerd.sock", "b1", {
      NAMESPACE: "x",
      TTRPC_ADDRESS: env.TTRPC_ADDRESS,
    }),
    base,
    "order does not matter",
  );
  for (
    const other of [
      sparePath("/run/containerd/s", "/run/containerd/containerd.sock", "b2", env),
      sparePath("/run/containerd/s", "/run/other.sock", "b1", env),
      sparePath("/run/containerd/s", "/run/containerd/containerd.sock", "b1", { ...env, TTRPC_ADDRESS: "/x" }),
      sparePath("/run/containerd/s", "/run/containerd/containerd.sock", "b1", { ...env, SCHED_CORE: "1" }),
    ]
  ) assert.notEqual(other, base);
});

Deno.test("handoff messages round-trip; malformed ones are refused", () => {
  assert.deepEqual(decodeHandoff(encodeHandoff(HANDOFF)), HANDOFF);
  const bad = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  assert.throws(() => decodeHandoff(bad([])), /not an object/);
  assert.throws(() => decodeHandoff(bad({ ...HANDOFF, id: "" })), /id must be/);
  assert.throws(() => decodeHandoff(bad({ ...HANDOFF, spareMs: -1 })), /spareMs/);
  assert.throws(() => decodeHandoff(bad({ ...HANDOFF, debug: "yes" })), /debug/);
  assert.throws(() => decodeHandoff(bad({ ...HANDOFF, execDeleteEvents: undefined })), /execDeleteEvents/);
  assert.throws(() => decodeHandoff(bad({ ...HANDOFF, bundle: "relative/dir" })), /absolute/);
  assert.throws(() => decodeHandoff(new TextEncoder().encode("{")), SyntaxError);
});

/** Runs `body` (a module body with the spare modules imported) in a Deno process of its own. */
function spawnScript(dir: string, body: string, output: "piped" | "null" = "piped"): Deno.ChildProcess {
  const src = new URL(".", import.meta.url).href;
  const script = `${dir}/spare_${crypto.randomUUID()}.ts`;
  Deno.writeTextFileSync(
    script,
    `import { waitAsSpare } from "${src}spare_wait.ts";\n` +
      `import { listenUnix, acceptUnix } from "${src}../sys/unix_socket.ts";\n` +
      `import { libc } from "${src}../sys/libc.ts";\n` +
      `import { poller } from "${src}../sys/poller.ts";\n` +
      body,
  );
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-lock", script],
    stdout: output,
    stderr: output,
  }).spawn();
}

/**
 * Whether a socket listens at `path`. Not the file's existence: listen(2) comes after bind(2), and a handoff in between
 * is refused ("absent"). Not a probe connection either: a spare takes the first connection as its handoff.
 */
async function listensAt(path: string): Promise<boolean> {
  return (await listeningSockets()).has(path);
}

/** Waits until `pred` holds (e.g. the child listens). */
async function until(pred: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!await pred()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
const exists = (p: string) => {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

Deno.test("a spare takes the group's listening socket from start and serves it; one handoff only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spare-test" });
  try {
    const spare = `${dir}/spare.sock`;
    const child = spawnScript(
      dir,
      `const got = await waitAsSpare(${JSON.stringify(spare)}, 20_000, () => true);
      console.log(JSON.stringify(got?.handoff ?? null));
      if (got) {
        let c = -1;
        while ((c = acceptUnix(got.listenFd)) < 0) await poller().wait(got.listenFd, "read");
        // Read the request before answering and closing, as a server does: closing with it unread would reset the
        // connection, and the client could see the reset instead of the answer.
        const req = new Uint8Array(1);
        while (libc().read(c, req, 1n) < 1) await poller().wait(c, "read");
        libc().write(c, new TextEncoder().encode("served"), 6n);
        libc().close(c);
      }`,
    );
    await until(() => listensAt(spare));
    const group = `${dir}/group.sock`;
    const listenFd = listenUnix(group);
    const result = handToSpare(spare, listenFd, { ...HANDOFF, socket: group });
    closeFd(listenFd); // the spare holds its own copy now
    assert.deepEqual(result, { kind: "adopted", pid: child.pid });
    assert.equal(exists(spare), false, "a spare that took a group is no longer findable");
    // A second start finds no spare.
    const again = listenUnix(`${dir}/group2.sock`);
    assert.deepEqual(handToSpare(spare, again, HANDOFF), { kind: "absent" });
    closeFd(again);
    // containerd's dial reaches the spare through the handed-over listener.
    const ex = unixExchange(group, new Uint8Array([1]), (r) => r.length >= 6, 10_000);
    assert.equal(ex.kind, "answered");
    assert.equal(new TextDecoder().decode(ex.kind === "answered" ? ex.data : new Uint8Array()), "served");
    const out = await child.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), { ...HANDOFF, socket: group });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a spare refuses a handoff without a listening socket, and says why", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spare-test" });
  try {
    const spare = `${dir}/spare.sock`;
    const child = spawnScript(
      dir,
      `console.log(JSON.stringify(await waitAsSpare(${JSON.stringify(spare)}, 20_000, () => true) ?? null));`,
    );
    await until(() => listensAt(spare));
    // A pipe is no listener.
    const [r, w] = pipe();
    const result = handToSpare(spare, r, HANDOFF);
    closeFd(r);
    closeFd(w);
    assert.equal(result.kind, "declined");
    assert.equal(result.kind === "declined" && result.killed, false);
    const out = await child.output();
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "null");
    assert.equal(exists(spare), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("start kills a spare that does not answer (it may hold the socket), and one that never accepted is reset", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spare-test" });
  try {
    const spare = `${dir}/spare.sock`;
    // Listens and never accepts: the handoff sits in its backlog, unanswered.
    const mute = spawnScript(
      dir,
      `listenUnix(${JSON.stringify(spare)}); await new Promise(() => setInterval(() => {}, 1000));`,
      "null",
    );
    await until(() => listensAt(spare));
    const group = listenUnix(`${dir}/group.sock`);
    const result = handToSpare(spare, group, HANDOFF, 300);
    assert.deepEqual(result, { kind: "declined", reason: "no answer in 300 ms", killed: true });
    const status = await mute.status;
    assert.equal(status.signal, "SIGKILL");
    // A listener that closes with the handoff in its backlog never saw it: reset, nobody is killed.
    const spare2 = `${dir}/spare2.sock`;
    const closing = spawnScript(
      dir,
      `const fd = listenUnix(${JSON.stringify(spare2)});
      await new Promise((r) => setTimeout(r, 500)); libc().close(fd);
      await new Promise((r) => setTimeout(r, 60_000));`,
      "null",
    );
    await until(() => listensAt(spare2));
    const reset = handToSpare(spare2, group, HANDOFF, 5000);
    closeFd(group);
    assert.deepEqual(reset, { kind: "declined", reason: "the spare stopped listening", killed: false });
    closing.kill("SIGTERM");
    assert.equal((await closing.status).signal, "SIGTERM", "the reset spare was killed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
