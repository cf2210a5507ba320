/**
 * Issue 14.2, without containerd: under node grouping one server holds the same container id in two namespaces.
 * Calls carry no namespace metadata and each task has its own connection (what containerd 1.6 does); the bundles sit
 * at containerd's `…/io.containerd.runtime.v2.task/<namespace>/<id>` so Create learns the namespace from them.
 * A third connection carries the namespace as metadata (what a client that sends it does).
 */
import assert from "node:assert/strict";
import { Client } from "../src/ttrpc/client.ts";
import { Code, TtrpcError } from "../src/ttrpc/status.ts";
import { encodeMessage, TASK_SERVICE, type TaskMethodName, taskMethods } from "../src/proto/mod.ts";
import { addressPath } from "../src/shim/address.ts";
import { busyboxRootfs, FakeEvents, makeBundle, runShim } from "./harness/shim.ts";

type Req<M extends TaskMethodName> = Parameters<(typeof taskMethods)[M]["request"]["encode"]>[0];
type Res<M extends TaskMethodName> = ReturnType<(typeof taskMethods)[M]["response"]["decode"]>;

/** One containerd-1.6-style task connection: no metadata unless `namespace` is given. */
class Conn {
  private constructor(readonly client: Client, readonly namespace?: string) {}
  static async open(address: string, namespace?: string): Promise<Conn> {
    return new Conn(await Client.connectUnix(addressPath(address)), namespace);
  }
  async call<M extends TaskMethodName>(method: M, req: Req<M>): Promise<Res<M>> {
    const { request, response } = taskMethods[method];
    const out = await this.client.call(TASK_SERVICE, method, encodeMessage(request as never, req as never), {
      timeoutMs: 30_000,
      metadata: this.namespace ? { "containerd-namespace-ttrpc": this.namespace } : undefined,
    });
    return response.decode(out) as Res<M>;
  }
  close(): void {
    this.client.close();
  }
}

async function code(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    assert.ok(err instanceof TtrpcError, String(err));
    return err.code;
  }
}

Deno.test("node grouping: the same id in two namespaces is two containers (run, exit, delete, failed create)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shim-ns-" });
  const events = FakeEvents.start(dir);
  const stamp = Date.now() % 100000;
  const [nsA, nsB, nsC] = [`nsa${stamp}`, `nsb${stamp}`, `nsc${stamp}`];
  const id = "dup";
  const config = `${dir}/node.json`;
  await Deno.writeTextFile(config, JSON.stringify({ grouping: "node" }));
  const conns: Conn[] = [];
  const tasks = `${dir}/io.containerd.runtime.v2.task`;
  try {
    await busyboxRootfs(dir);
    const bundleA = await makeBundle(dir, id, ["sh", "-c", "exit 3"], {}, `${tasks}/${nsA}/${id}`, `${nsA}-${id}`);
    const bundleB = await makeBundle(dir, id, ["sleep", "1000"], {}, `${tasks}/${nsB}/${id}`, `${nsB}-${id}`);
    const bundleC = `${tasks}/${nsC}/${id}`; // no config.json: runc create fails
    await Deno.mkdir(bundleC, { recursive: true });
    const common = { id, address: `${dir}/containerd.sock`, ttrpcAddress: events.path, env: {} };
    const start = async (namespace: string, bundle: string) => {
      const r = await runShim("start", {
        ...common,
        namespace,
        bundle,
        env: { CONTAINERD_SHIM_DENO_CONFIG: config },
      });
      assert.equal(r.code, 0, r.stderr);
      return new TextDecoder().decode(r.stdout);
    };
    const address = await start(nsA, bundleA);
    assert.equal(await start(nsB, bundleB), address, "node grouping: one server");

    const a = await Conn.open(address);
    const b = await Conn.open(address);
    const c = await Conn.open(address);
    conns.push(a, b, c);
    const pidA = (await a.call("Create", { id, bundle: bundleA })).pid;
    await a.call("Start", { id });
    assert.equal((await a.call("Wait", { id })).exitStatus, 3);
    // a/dup has exited and is not deleted: b/dup is a different container.
    const pidB = (await b.call("Create", { id, bundle: bundleB })).pid;
    assert.notEqual(pidB, pidA);
    await b.call("Start", { id });
    assert.equal((await b.call("State", { id })).status, 2 /* RUNNING */);
    const stateA = await a.call("State", { id });
    assert.deepEqual([stateA.status, stateA.exitStatus, stateA.pid], [3, /* STOPPED */ 3, pidA]);

    // A failed create in a third namespace, then containerd's cleanup (Delete on that connection): a/dup is untouched.
    assert.notEqual(await code(c.call("Create", { id, bundle: bundleC })), "ok");
    assert.equal(await code(c.call("Delete", { id })), Code.NotFound);
    assert.equal((await a.call("State", { id })).exitStatus, 3);

    // A client that names the namespace in metadata reaches that namespace's container on any connection.
    const viaMetadata = await Conn.open(address, nsB);
    conns.push(viaMetadata);
    assert.equal((await viaMetadata.call("State", { id })).pid, pidB);
    assert.equal((await viaMetadata.call("Connect", { id })).taskPid, pidB);

    await b.call("Kill", { id, signal: 9 });
    assert.equal((await b.call("Wait", { id })).exitStatus, 137);
    assert.equal((await a.call("Delete", { id })).exitStatus, 3);
    assert.equal((await b.call("Delete", { id })).exitStatus, 137);
    assert.equal(await code(a.call("State", { id })), Code.NotFound);
    assert.equal(await code(b.call("State", { id })), Code.NotFound);

    const seen = (topic: string) =>
      events.events.filter((e) => e.topic === topic && e.fields.containerId === id)
        .map((e) => `${e.namespace}:${e.fields.exitStatus}`).sort();
    assert.ok(await events.waitFor(() => seen("/tasks/delete").length >= 2), JSON.stringify(events.events));
    assert.deepEqual(seen("/tasks/exit"), [`${nsA}:3`, `${nsB}:137`]);
    assert.deepEqual(seen("/tasks/delete"), [`${nsA}:3`, `${nsB}:137`]);

    await a.call("Shutdown", {});
    const gone = async () => !(await Deno.stat(addressPath(address)).then(() => true, () => false));
    for (let i = 0; i < 100 && !await gone(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(await gone(), "the server did not exit once both containers were deleted");
  } finally {
    for (const c of conns) c.close();
    events.close();
    for (const ns of [nsA, nsB]) {
      await new Deno.Command("runc", { args: ["--root", `/run/containerd/runc/${ns}`, "delete", "-f", id] }).output();
      // The server never opened the second bundle's log fifo: its reader (makeBundle's `cat`) ends at this EOF.
      await Deno.open(`${tasks}/${ns}/${id}/log`, { read: true, write: true }).then((f) => f.close(), () => {});
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
