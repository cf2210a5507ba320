/**
 * Drives our binary the way containerd does, with no containerd: `start` → ttrpc Task calls → events received by a
 * fake events server → Shutdown → `delete`. Asserts the error codes containerd and CRI branch on.
 */
import assert from "node:assert/strict";
import { Code, TtrpcError } from "../src/ttrpc/status.ts";
import { encodeAny, encodeJsonAny } from "../src/proto/any.ts";
import { task, TASK_SERVICE_V3 } from "../src/proto/mod.ts";
import { addressPath } from "../src/shim/address.ts";
import { busyboxRootfs, FakeEvents, makeBundle, runShim, SHIM, TaskClient } from "./harness/shim.ts";
import { SERVER_MALLOC_TUNABLES } from "../src/shim/start_boot.ts";
import { SERVER_BUNDLE_FILE } from "../src/shim/bundle_layout.ts";
import { readCmdline } from "./lab/proc.ts";

const PROCESS_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process";

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every 50 ms for up to `ms`. */
async function eventually(pred: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    await sleep(50);
  }
  return await pred();
}

async function rejectsWith(p: Promise<unknown>, code: Code, message?: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TtrpcError, `not a ttrpc error: ${err}`);
    assert.equal(err.code, code, `code ${err.code} (${err.message})`);
    if (message) assert.match(err.message, message);
    return;
  }
  assert.fail(`expected code ${Code[code]}`);
}

Deno.test("start → Task API → events → shutdown → delete, with containerd's error codes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shim-harness-" });
  const ns = `harness${Date.now() % 100000}`;
  const events = FakeEvents.start(dir);
  let client: TaskClient | undefined;
  const id = "h1";
  let bundle = "";
  try {
    await busyboxRootfs(dir);
    bundle = await makeBundle(dir, id, ["sleep", "1000"]);
    const opts = { bundle, id, namespace: ns, address: `${dir}/containerd.sock`, ttrpcAddress: events.path };
    const started = await runShim("start", opts);
    assert.equal(started.code, 0, started.stderr);
    const address = new TextDecoder().decode(started.stdout);
    assert.match(address, /^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
    assert.equal(await Deno.readTextFile(`${bundle}/address`), address);
    // A second start for the same group finds the running server and prints the same address.
    const again = await runShim("start", opts);
    assert.equal(new TextDecoder().decode(again.stdout), address);

    client = await TaskClient.connect(address, ns);
    await rejectsWith(client.call("State", { id: "nope" }), Code.NotFound, /container not created: not found/);
    await rejectsWith(client.call("Create", { id: "", bundle }), Code.InvalidArgument);

    const out = `${dir}/out.log`;
    const created = await client.call("Create", { id, bundle, stdout: `file://${out}`, stderr: `file://${out}` });
    assert.ok(created.pid > 0);
    await rejectsWith(client.call("Create", { id, bundle }), Code.AlreadyExists, /already exists/);
    assert.equal((await client.call("State", { id })).status, 1 /* CREATED */);

    const start = await client.call("Start", { id });
    assert.equal(start.pid, created.pid);
    assert.equal((await client.call("State", { id })).status, 2 /* RUNNING */);
    await rejectsWith(client.call("Start", { id }), Code.Unknown, /cannot start a running process/);
    await rejectsWith(client.call("Delete", { id }), Code.Unknown, /cannot delete a running process/);

    // An exec with its own exit code; the v3 service name reaches the same service.
    const spec = encodeJsonAny(PROCESS_URL, {
      args: ["sh", "-c", "echo from-exec; exit 7"],
      cwd: "/",
      env: ["PATH=/bin"],
      user: { uid: 0, gid: 0 },
    });
    await client.call("Exec", { id, execId: "e1", spec, stdout: `file://${out}` });
    // No terminal: ResizePty succeeds and does nothing, for the init and for an exec (as the Go shim answers).
    await client.call("ResizePty", { id, width: 80, height: 24 });
    await client.call("ResizePty", { id, execId: "e1", width: 80, height: 24 });
    await rejectsWith(client.call("Exec", { id, execId: "e1", spec }), Code.AlreadyExists, /id e1: already exists/);
    await rejectsWith(client.call("Kill", { id, execId: "e1", signal: 9 }), Code.FailedPrecondition, /not created/);
    const execPid = (await client.call("Start", { id, execId: "e1" })).pid;
    assert.ok(execPid > 0 && execPid !== created.pid);
    assert.equal((await client.call("Wait", { id, execId: "e1" })).exitStatus, 7);
    await rejectsWith(client.call("Kill", { id, execId: "e1", signal: 9 }), Code.NotFound, /process already finished/);
    assert.equal((await client.call("Delete", { id, execId: "e1" })).exitStatus, 7);
    await rejectsWith(client.call("State", { id, execId: "e1" }), Code.NotFound, /process does not exist e1/);
    await rejectsWith(client.call("Start", { id, execId: "nope" }), Code.NotFound);
    const v3 = await TaskClient.connect(address, ns, TASK_SERVICE_V3);
    assert.equal((await v3.call("State", { id })).pid, created.pid);
    v3.close();

    // Wait answers every waiter, before and after the exit.
    const waiters = [client.call("Wait", { id }), client.call("Wait", { id })];
    await client.call("Kill", { id, signal: 9 });
    for (const w of await Promise.all(waiters)) assert.equal(w.exitStatus, 137);
    assert.equal((await client.call("Wait", { id })).exitStatus, 137);
    const state = await client.call("State", { id });
    assert.equal(state.status, 3 /* STOPPED */);
    assert.equal(state.exitStatus, 137);
    await rejectsWith(client.call("Kill", { id, signal: 9 }), Code.NotFound, /process already finished/);
    await rejectsWith(client.call("Pause", { id }), Code.Unknown, /cannot pause a stopped container/);
    await rejectsWith(
      client.call("Exec", { id, execId: "late", spec }),
      Code.Unknown,
      /cannot exec in a stopped state/,
    );

    const deleted = await client.call("Delete", { id });
    assert.equal(deleted.exitStatus, 137);
    assert.equal(deleted.pid, created.pid);
    await rejectsWith(client.call("Delete", { id }), Code.NotFound);
    assert.match(await Deno.readTextFile(out), /from-exec/);

    // No TaskDelete for the exec by default, as the Go shim (shim config `execDeleteEvents`, tested below).
    const want = [
      "/tasks/create",
      "/tasks/start",
      "/tasks/exec-added",
      "/tasks/exec-started",
      "/tasks/exit",
      "/tasks/exit",
      "/tasks/delete",
    ];
    assert.ok(await events.waitFor(() => events.topics(id).length >= want.length), events.topics(id).join(","));
    assert.deepEqual(events.topics(id), want);
    const execExit = events.events.find((e) => e.topic === "/tasks/exit" && e.fields.id === "e1")!;
    assert.equal(execExit.fields.exitStatus, 7);
    assert.ok(events.events.every((e) => e.namespace === ns && e.metadataNamespace === ns));

    // The socket is gone by the time Shutdown is answered (clients check right after containerd's Delete returns).
    await client.call("Shutdown", { id });
    assert.equal(await exists(addressPath(address)), false, "socket left after Shutdown was answered");
    client.close();
    client = undefined;

    const del = await runShim("delete", opts);
    assert.equal(del.code, 0, del.stderr);
    const resp = task.DeleteResponse.decode(del.stdout);
    assert.equal(resp.exitStatus, 137);
    assert.equal(resp.pid, created.pid);
    assert.ok((resp.exitedAt?.seconds ?? 0) > 1_700_000_000);
  } finally {
    client?.close();
    events.close();
    if (bundle) {
      await new Deno.Command("runc", { args: ["--root", `/run/containerd/runc/${ns}`, "delete", "-f", id] }).output();
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("an init's TaskExit comes after the TaskExit of its running execs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shim-harness-" });
  const ns = `order${Date.now() % 100000}`;
  const events = FakeEvents.start(dir);
  const id = "o1";
  let client: TaskClient | undefined;
  try {
    await busyboxRootfs(dir);
    const bundle = await makeBundle(dir, id, ["sleep", "1000"]);
    const opts = { bundle, id, namespace: ns, address: `${dir}/containerd.sock`, ttrpcAddress: events.path };
    const started = await runShim("start", opts);
    assert.equal(started.code, 0, started.stderr);
    client = await TaskClient.connect(new TextDecoder().decode(started.stdout), ns);
    await client.call("Create", { id, bundle });
    await client.call("Start", { id });
    const spec = encodeJsonAny(PROCESS_URL, { args: ["sleep", "1000"], cwd: "/", env: ["PATH=/bin"] });
    for (const execId of ["a", "b", "c"]) {
      await client.call("Exec", { id, execId, spec });
      await client.call("Start", { id, execId });
    }
    await client.call("Kill", { id, signal: 9 });
    assert.equal((await client.call("Wait", { id })).exitStatus, 137);
    const exits = () => events.events.filter((e) => e.topic === "/tasks/exit").map((e) => e.fields.id);
    assert.ok(await events.waitFor(() => exits().length === 4), exits().join(","));
    assert.equal(exits()[3], id, `the init's exit must be last: ${exits().join(",")}`);
    for (const execId of ["a", "b", "c"]) await client.call("Delete", { id, execId });
    await client.call("Delete", { id });
    await client.call("Shutdown", { id });
    await runShim("delete", opts);
  } finally {
    client?.close();
    events.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("SIGUSR1 does not open Deno's inspector in the server (root code execution for local users)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shim-harness-" });
  const ns = `usr1${Date.now() % 100000}`;
  const events = FakeEvents.start(dir);
  let client: TaskClient | undefined;
  const listening9229 = async () => {
    const out = await new Deno.Command("ss", { args: ["-Hltn", "sport = :9229"], stdout: "piped" }).output();
    return new TextDecoder().decode(out.stdout).trim() !== "";
  };
  try {
    assert.equal(await listening9229(), false, "something already listens on 9229");
    await busyboxRootfs(dir);
    const bundle = await makeBundle(dir, "u1", ["sleep", "100"]);
    const opts = { bundle, id: "u1", namespace: ns, address: `${dir}/containerd.sock`, ttrpcAddress: events.path };
    const started = await runShim("start", opts);
    assert.equal(started.code, 0, started.stderr);
    client = await TaskClient.connect(new TextDecoder().decode(started.stdout), ns);
    const pid = (await client.call("Connect", { id: "u1" })).shimPid;
    await new Promise((r) => setTimeout(r, 1500)); // past Deno's 500 ms grace before it arms SIGUSR1
    Deno.kill(pid, "SIGUSR1");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await listening9229(), false, "the server opened the inspector on SIGUSR1");
    assert.ok((await client.call("Connect", { id: "u1" })).shimPid === pid, "the server died on SIGUSR1");
    await client.call("Shutdown", { id: "u1" });
  } finally {
    client?.close();
    events.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** A scratch directory with a busybox rootfs and a fake containerd events endpoint. */
async function withHarness(
  prefix: string,
  fn: (
    h: { dir: string; ns: string; events: FakeEvents; opts: (id: string, bundle: string) => StartOpts },
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shim-harness-" });
  const ns = `${prefix}${Date.now() % 100000}`;
  const events = FakeEvents.start(dir);
  try {
    await busyboxRootfs(dir);
    await fn({
      dir,
      ns,
      events,
      opts: (id, bundle) => ({
        bundle,
        id,
        namespace: ns,
        address: `${dir}/containerd.sock`,
        ttrpcAddress: events.path,
      }),
    });
  } finally {
    events.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

type StartOpts = { bundle: string; id: string; namespace: string; address: string; ttrpcAddress: string };

Deno.test("a reservation keeps a grouped server for the Create its start announced; then the socket goes with Shutdown", async () => {
  await withHarness("resv", async ({ dir, ns, opts }) => {
    const group = { "io.containerd.runc.v2.group": "g" };
    const a = opts("ra", await makeBundle(dir, "ra", ["sleep", "1000"], group));
    const b = opts("rb", await makeBundle(dir, "rb", ["sleep", "1000"], group));
    const startA = await runShim("start", a);
    assert.equal(startA.code, 0, startA.stderr);
    const address = new TextDecoder().decode(startA.stdout);
    const client = await TaskClient.connect(address, ns);
    try {
      await client.call("Create", { id: "ra", bundle: a.bundle });
      // containerd runs start for rb: the running server reserves a place for it before its address is printed.
      const startB = await runShim("start", b);
      assert.equal(new TextDecoder().decode(startB.stdout), address);
      // ra goes first: Delete and Shutdown, as containerd sends them. The server must stay for rb.
      await client.call("Kill", { id: "ra", signal: 9 });
      await client.call("Wait", { id: "ra" });
      await client.call("Delete", { id: "ra" });
      await client.call("Shutdown", { id: "ra" });
      assert.ok(await exists(addressPath(address)), "the server left with a reservation pending");
      await sleep(700); // well past the 300 ms the server used to wait before exiting
      const created = await client.call("Create", { id: "rb", bundle: b.bundle });
      assert.ok(created.pid > 0);
      await client.call("Kill", { id: "rb", signal: 9 });
      await client.call("Wait", { id: "rb" });
      await client.call("Delete", { id: "rb" });
      await client.call("Shutdown", { id: "rb" });
      assert.equal(await exists(addressPath(address)), false, "socket left after Shutdown was answered");
      // A start after that gets a new server (a new socket at the same path), not the dying one.
      const c = opts("rc", await makeBundle(dir, "rc", ["true"], group));
      const startC = await runShim("start", c);
      assert.equal(startC.code, 0, startC.stderr);
      assert.equal(new TextDecoder().decode(startC.stdout), address);
      const client2 = await TaskClient.connect(address, ns);
      assert.notEqual((await client2.call("Connect", { id: "rc" })).shimPid, 0);
      await client2.call("Shutdown", { id: "rc" });
      client2.close();
      assert.equal(await exists(addressPath(address)), false);
    } finally {
      client.close();
      for (const o of [a, b]) await runShim("delete", o);
    }
  });
});

/** Create, Start, Wait and Delete of the container `o` describes (a command that exits by itself), no Shutdown. */
async function runWithoutShutdown(client: TaskClient, o: StartOpts): Promise<void> {
  await client.call("Create", { id: o.id, bundle: o.bundle });
  await client.call("Start", { id: o.id });
  await client.call("Wait", { id: o.id });
  await client.call("Delete", { id: o.id });
}

Deno.test("a Shutdown naming a container whose Create never came lets the server go at once", async () => {
  await withHarness("noCreate", async ({ dir, ns, opts }) => {
    const group = { "io.containerd.runc.v2.group": "nc" };
    const a = opts("na", await makeBundle(dir, "na", ["true"], group));
    const b = opts("nb", await makeBundle(dir, "nb", ["true"], group));
    const startA = await runShim("start", a);
    assert.equal(startA.code, 0, startA.stderr);
    const address = new TextDecoder().decode(startA.stdout);
    const client = await TaskClient.connect(address, ns);
    try {
      await runWithoutShutdown(client, a);
      // The server has taken its live file by now: nb's place is reserved through a file.
      const startB = await runShim("start", b);
      assert.equal(new TextDecoder().decode(startB.stdout), address);
      await client.call("Shutdown", { id: "na" });
      assert.ok(await exists(addressPath(address)), "the server left with nb's reservation pending");
      // containerd gave up on nb (its Create failed before reaching us): its Shutdown ends the reservation.
      await client.call("Shutdown", { id: "nb" });
      assert.equal(await exists(addressPath(address)), false, "the server stayed for a reservation already given up");
    } finally {
      client.close();
      for (const o of [a, b]) await runShim("delete", o);
    }
  });
});

Deno.test("a start racing the last Shutdown gets a server that takes its Create: the same one, or a new one", async () => {
  await withHarness("race", async ({ dir, ns, opts }) => {
    const group = { "io.containerd.runc.v2.group": "race" };
    const bundles: StartOpts[] = [];
    const first = opts("q0", await makeBundle(dir, "q0", ["true"], group));
    bundles.push(first);
    const started = await runShim("start", first);
    assert.equal(started.code, 0, started.stderr);
    const address = new TextDecoder().decode(started.stdout);
    const pids = new Set<number>();
    let current = "q0";
    try {
      for (let i = 1; i <= 12; i++) {
        const next = opts(`q${i}`, await makeBundle(dir, `q${i}`, ["true"], group));
        bundles.push(next);
        // The Shutdown that leaves the server with nothing lands around the moment the next start reserves (a
        // fresh process reaches its reservation ~50–70 ms in here; each round lands at another point of it).
        const client = await TaskClient.connect(address, ns);
        pids.add((await client.call("Connect", { id: current })).shimPid);
        const pending = runShim("start", next);
        await sleep(30 + (i * 7) % 50);
        await client.call("Shutdown", { id: current });
        client.close();
        const startedNext = await pending;
        assert.equal(startedNext.code, 0, startedNext.stderr);
        assert.equal(new TextDecoder().decode(startedNext.stdout), address);
        // Whichever server the start found is there for the Create.
        const c = await TaskClient.connect(address, ns);
        try {
          await runWithoutShutdown(c, next);
        } finally {
          c.close();
        }
        current = next.id;
      }
      const c = await TaskClient.connect(address, ns);
      pids.add((await c.call("Connect", { id: current })).shimPid);
      await c.call("Shutdown", { id: current });
      c.close();
      console.log(`12 rounds on ${pids.size} server(s)`);
    } finally {
      for (const o of bundles) await runShim("delete", o);
    }
  });
});

Deno.test("an unused server exits: its start was killed before containerd connected", async () => {
  await withHarness("orphan", async ({ dir, opts }) => {
    const o = opts("or1", await makeBundle(dir, "or1", ["sleep", "1000"]));
    const started = await runShim("start", {
      ...o,
      env: { CONTAINERD_SHIM_DENO_RESERVATION_MS: "300", CONTAINERD_SHIM_DENO_IDLE_EXIT_MS: "200" },
    });
    assert.equal(started.code, 0, started.stderr);
    const socket = addressPath(new TextDecoder().decode(started.stdout));
    assert.ok(await exists(socket));
    // Nobody connects and no Create comes: the reservation expires, then the idle bound, then the server exits.
    assert.ok(await eventually(async () => !await exists(socket), 10_000), "the unused server is still there");
  });
});

Deno.test("start hands its server the bound socket (fd 3, close-on-exec); a dead server's socket is replaced by the next start", async () => {
  await withHarness("handover", async ({ dir, ns, opts }) => {
    const group = { "io.containerd.runc.v2.group": "h" };
    const a = opts("ha", await makeBundle(dir, "ha", ["sleep", "1000"], group));
    const b = opts("hb", await makeBundle(dir, "hb", ["sleep", "1000"], group));
    const startA = await runShim("start", a);
    assert.equal(startA.code, 0, startA.stderr);
    const address = new TextDecoder().decode(startA.stdout);
    const socket = addressPath(address);
    assert.equal((await Deno.lstat(socket)).mode! & 0o777, 0o600);
    const client = await TaskClient.connect(address, ns);
    const pid = (await client.call("Connect", { id: "ha" })).shimPid;
    client.close();
    // The listener is the server's fd 3, the only copy, and no child of the server (runc, containers) inherits it.
    const listener = await Deno.readLink(`/proc/${pid}/fd/3`);
    assert.match(listener, /^socket:/);
    const flags = Number.parseInt((await Deno.readTextFile(`/proc/${pid}/fdinfo/3`)).match(/^flags:\s+(\d+)/m)![1], 8);
    assert.ok(flags & 0o2000000, `the server's listener is inheritable (flags ${flags.toString(8)})`);
    // A crashed server takes the listener with it (nobody else holds a copy): a dial is refused, not left hanging.
    Deno.kill(pid, "SIGKILL");
    assert.ok(await eventually(() => Promise.resolve(!processAlive(pid)), 5000), "the server survived SIGKILL");
    const refused = () => TaskClient.connect(address, ns).then((c) => (c.close(), false), () => true);
    assert.ok(await eventually(refused, 5000), "something still listens on the dead server's socket");
    assert.ok(await exists(socket), "the dead server's socket file stays until someone replaces it");
    // The next start of the group finds nothing listening there and brings up a new server at the same path.
    const startB = await runShim("start", b);
    assert.equal(startB.code, 0, startB.stderr);
    assert.equal(new TextDecoder().decode(startB.stdout), address);
    const client2 = await TaskClient.connect(address, ns);
    try {
      const pid2 = (await client2.call("Connect", { id: "hb" })).shimPid;
      assert.ok(pid2 > 0 && pid2 !== pid);
      await client2.call("Shutdown", { id: "hb" });
    } finally {
      client2.close();
    }
    for (const o of [a, b]) await runShim("delete", o);
  });
});

Deno.test("delete removes a killed server's socket, never a live server's", async () => {
  await withHarness("stale", async ({ dir, ns, opts }) => {
    const o = opts("st1", await makeBundle(dir, "st1", ["sleep", "1000"]));
    const started = await runShim("start", o);
    assert.equal(started.code, 0, started.stderr);
    const address = new TextDecoder().decode(started.stdout);
    const socket = addressPath(address);
    const client = await TaskClient.connect(address, ns);
    const pid = (await client.call("Connect", { id: "st1" })).shimPid;
    client.close();
    // containerd's cleanup while the server lives (another container of the group may still run there).
    assert.equal((await runShim("delete", o)).code, 0);
    assert.ok(await exists(socket), "delete removed a live server's socket");
    Deno.kill(pid, "SIGKILL");
    assert.ok(await eventually(() => Promise.resolve(!processAlive(pid)), 5000), "the server survived SIGKILL");
    assert.ok(await exists(socket), "the killed server's socket should still be there before delete");
    const del = await runShim("delete", o);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(await exists(socket), false, "delete left the dead server's socket");
  });
});

Deno.test("runc runs in the bundle directory: an Options.binary_name wrapper reading ./config.json works", async () => {
  await withHarness("cwd", async ({ dir, ns, opts }) => {
    const wrapper = `${dir}/runc-in-bundle`;
    await Deno.writeTextFile(
      wrapper,
      '#!/bin/sh\n[ -f ./config.json ] || { echo "runc wrapper: no ./config.json in $PWD" >&2; exit 1; }\nexec runc "$@"\n',
    );
    await Deno.chmod(wrapper, 0o755);
    const o = opts("cw1", await makeBundle(dir, "cw1", ["sleep", "1000"]));
    const started = await runShim("start", o);
    assert.equal(started.code, 0, started.stderr);
    const address = new TextDecoder().decode(started.stdout);
    const client = await TaskClient.connect(address, ns);
    const id = "cw1";
    try {
      const options = encodeAny("containerd.runc.v1.Options", { binaryName: wrapper });
      const created = await client.call("Create", { id, bundle: o.bundle, options });
      await client.call("Start", { id });
      assert.equal((await client.call("State", { id })).status, 2 /* RUNNING */);
      assert.ok((await client.call("Pids", { id })).processes.some((p) => p.pid === created.pid));
      await client.call("Pause", { id });
      await client.call("Resume", { id });
      const spec = encodeJsonAny(PROCESS_URL, { args: ["true"], cwd: "/", env: ["PATH=/bin"] });
      await client.call("Exec", { id, execId: "x", spec });
      await client.call("Start", { id, execId: "x" });
      assert.equal((await client.call("Wait", { id, execId: "x" })).exitStatus, 0);
      await client.call("Delete", { id, execId: "x" });
      await client.call("Kill", { id, signal: 9 });
      assert.equal((await client.call("Wait", { id })).exitStatus, 137);
      await client.call("Delete", { id });
      await client.call("Shutdown", { id });
    } finally {
      client.close();
      await runShim("delete", o);
      await new Deno.Command("runc", { args: ["--root", `/run/containerd/runc/${ns}`, "delete", "-f", id] }).output();
    }
  });
});

function processAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** The value of `-flag` in a process's command line. */
async function flagOf(pid: number, flag: string): Promise<string | undefined> {
  const argv = await readCmdline(pid) ?? [];
  const i = argv.indexOf(flag);
  return i < 0 ? undefined : argv[i + 1];
}

/** One container's whole life on `client`, as containerd drives it; returns its exit status. */
async function runToEnd(client: TaskClient, id: string, bundle: string, out: string): Promise<number> {
  await client.call("Create", { id, bundle, stdout: `file://${out}` });
  await client.call("Start", { id });
  const { exitStatus } = await client.call("Wait", { id });
  await client.call("Delete", { id });
  await client.call("Shutdown", { id });
  return exitStatus;
}

Deno.test("a server whose group is done waits as a spare: the next group's start hands it the socket; another environment gets its own server; a spare exits when its time is up or on SIGTERM", async () => {
  await withHarness("spare", async ({ dir, ns, events, opts }) => {
    const config = `${dir}/shim.json`;
    await Deno.writeTextFile(config, JSON.stringify({ spareSeconds: 3 }));
    // What containerd passes every start of a pod alike (the harness's default state directory is per bundle).
    const env = { CONTAINERD_SHIM_DENO_CONFIG: config, CONTAINERD_SHIM_DENO_STATE_DIR: `${dir}/state` };
    const a = { ...opts("pa", await makeBundle(dir, "pa", ["true"])), env };
    const b = { ...opts("pb", await makeBundle(dir, "pb", ["sh", "-c", "echo from-b; exit 3"])), env };
    const startA = await runShim("start", a);
    assert.equal(startA.code, 0, startA.stderr);
    const addressA = new TextDecoder().decode(startA.stdout);
    const clientA = await TaskClient.connect(addressA, ns);
    const pid = (await clientA.call("Connect", { id: "pa" })).shimPid;
    const spare = await flagOf(pid, "-spare");
    assert.ok(spare?.startsWith("/run/containerd/s/"), `the server was not told where to wait as a spare: ${spare}`);
    assert.equal(await flagOf(pid, "-spare-ms"), "3000");
    assert.equal(await runToEnd(clientA, "pa", a.bundle, `${dir}/a.log`), 0);
    clientA.close();
    // Done with its group: the group's socket is gone, the process waits on its spare socket.
    assert.equal(await exists(addressPath(addressA)), false, "the group's socket outlived the Shutdown answer");
    assert.ok(await eventually(() => exists(spare!), 5000), "no spare socket");
    assert.ok(processAlive(pid), "the server exited instead of waiting as a spare");

    // Another pod: start hands its socket to the spare, which serves it as a new server would.
    const startB = await runShim("start", b);
    assert.equal(startB.code, 0, startB.stderr);
    assert.equal(startB.stderr, "");
    const addressB = new TextDecoder().decode(startB.stdout);
    assert.notEqual(addressB, addressA);
    assert.equal(await exists(spare!), false, "a spare that took a group is still findable");
    const clientB = await TaskClient.connect(addressB, ns);
    assert.equal((await clientB.call("Connect", { id: "pb" })).shimPid, pid, "a new server was spawned");
    assert.equal(await runToEnd(clientB, "pb", b.bundle, `${dir}/b.log`), 3);
    clientB.close();
    assert.equal(await Deno.readTextFile(`${dir}/b.log`), "from-b\n");
    assert.ok(
      await events.waitFor(() =>
        events.topics("pb").includes("/tasks/exit") && events.topics("pb").includes("/tasks/delete")
      ),
      `the spare published no exit for the new group: ${events.topics("pb")}`,
    );

    // A start with another environment (another config file) is not handed to this build's spare for the first one.
    const config2 = `${dir}/shim2.json`;
    await Deno.copyFile(config, config2);
    const c = {
      ...opts("pc", await makeBundle(dir, "pc", ["true"])),
      env: { ...env, CONTAINERD_SHIM_DENO_CONFIG: config2 },
    };
    const startC = await runShim("start", c);
    assert.equal(startC.code, 0, startC.stderr);
    const clientC = await TaskClient.connect(new TextDecoder().decode(startC.stdout), ns);
    const pidC = (await clientC.call("Connect", { id: "pc" })).shimPid;
    assert.notEqual(pidC, pid);
    const spareC = (await flagOf(pidC, "-spare"))!;
    assert.notEqual(spareC, spare);
    assert.equal(await runToEnd(clientC, "pc", c.bundle, `${dir}/c.log`), 0);
    clientC.close();
    assert.ok(await eventually(() => exists(spareC), 5000));
    assert.ok(await exists(spare!), "the first server is a spare again after its second group");

    // SIGTERM ends a spare at once; time up ends the other. Both take their spare socket with them.
    Deno.kill(pidC, "SIGTERM");
    assert.ok(await eventually(() => Promise.resolve(!processAlive(pidC)), 2000), "a spare ignored SIGTERM");
    assert.equal(await exists(spareC), false);
    assert.ok(await eventually(() => Promise.resolve(!processAlive(pid)), 8000), "a spare outlived its time");
    assert.equal(await exists(spare!), false);

    // Something at the spare's path that hangs up: start says so in containerd's log (the bundle's `log` fifo, never
    // its own output, which containerd parses) and spawns a server itself.
    const fake = Deno.listen({ transport: "unix", path: spareC });
    const hangUp = (async () => {
      for await (const conn of fake) conn.close();
    })();
    const d = { ...opts("pd", await makeBundle(dir, "pd", ["true"])), env: c.env };
    const startD = await runShim("start", d);
    assert.equal(startD.code, 0, startD.stderr);
    assert.equal(startD.stderr, "", "start wrote to the output containerd parses");
    assert.match(new TextDecoder().decode(startD.stdout), /^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
    const clientD = await TaskClient.connect(new TextDecoder().decode(startD.stdout), ns);
    const pidD = (await clientD.call("Connect", { id: "pd" })).shimPid;
    assert.ok(pidD > 0 && pidD !== pidC);
    await clientD.call("Shutdown", { id: "pd" });
    clientD.close();
    fake.close();
    await hangUp.catch(() => {});
    Deno.kill(pidD, "SIGTERM");
    // The harness copies each bundle's log fifo to shim.log, as containerd reads it into its own log.
    const declined = /level=info msg="spare server did not take the group" kind=declined reason=.* killed=false/;
    const logged = () => Deno.readTextFile(`${d.bundle}/shim.log`).then((t) => declined.test(t), () => false);
    assert.ok(await eventually(logged, 5000), "start did not tell containerd's log why the spare was not used");
    for (const o of [a, b, c, d]) await runShim("delete", o);
  });
});

Deno.test("spareSeconds 0: the server exits with its group, as the Go shim does", async () => {
  await withHarness("nospare", async ({ dir, ns, opts }) => {
    const config = `${dir}/shim.json`;
    await Deno.writeTextFile(config, JSON.stringify({ spareSeconds: 0 }));
    const a = { ...opts("na", await makeBundle(dir, "na", ["true"])), env: { CONTAINERD_SHIM_DENO_CONFIG: config } };
    const started = await runShim("start", a);
    assert.equal(started.code, 0, started.stderr);
    const client = await TaskClient.connect(new TextDecoder().decode(started.stdout), ns);
    const pid = (await client.call("Connect", { id: "na" })).shimPid;
    assert.equal(await flagOf(pid, "-spare"), undefined);
    assert.equal(await runToEnd(client, "na", a.bundle, `${dir}/a.log`), 0);
    client.close();
    assert.ok(await eventually(() => Promise.resolve(!processAlive(pid)), 5000), "the server did not exit");
    await runShim("delete", a);
  });
});

Deno.test("the server runs from its own one-file bundle, reads no code cache, and gets glibc's malloc settings unless the environment has its own", async () => {
  const info = JSON.parse(await Deno.readTextFile(`${SHIM.slice(0, SHIM.lastIndexOf("/"))}/BUILD-INFO.json`));
  await withHarness("srvenv", async ({ dir, ns, opts }) => {
    const config = `${dir}/shim.json`;
    await Deno.writeTextFile(config, JSON.stringify({ spareSeconds: 0 }));
    const servers: Record<string, { argv: string[]; environ: string[] }> = {};
    for (const [id, env] of [["own", {}], ["user", { GLIBC_TUNABLES: "glibc.malloc.check=0" }]] as const) {
      const a = {
        ...opts(id, await makeBundle(dir, id, ["true"])),
        env: { CONTAINERD_SHIM_DENO_CONFIG: config, ...env },
      };
      const started = await runShim("start", a);
      assert.equal(started.code, 0, started.stderr);
      const client = await TaskClient.connect(new TextDecoder().decode(started.stdout), ns);
      const pid = (await client.call("Connect", { id })).shimPid;
      const environ = (await Deno.readTextFile(`/proc/${pid}/environ`)).split("\0");
      servers[id] = { argv: await readCmdline(pid) ?? [], environ };
      assert.equal(await runToEnd(client, id, a.bundle, `${dir}/${id}.log`), 0);
      client.close();
      await runShim("delete", a);
    }
    // The dynamic loader parses the variable in place, ending each setting with a NUL where the ":" was.
    const raw = servers.own.environ.join("\0"), ours = SERVER_MALLOC_TUNABLES.GLIBC_TUNABLES;
    assert.ok(raw.includes(`GLIBC_TUNABLES=${ours.replaceAll(":", "\0")}`) || raw.includes(`GLIBC_TUNABLES=${ours}`));
    assert.ok(servers.user.environ.includes("GLIBC_TUNABLES=glibc.malloc.check=0"), servers.user.environ.join(" "));
    if (info.flavour !== "bundle") return; // a compiled binary is its own server, flags built in
    for (const { argv } of Object.values(servers)) {
      assert.ok(argv.some((x) => x.endsWith(`/${SERVER_BUNDLE_FILE}`)), argv.join(" "));
      assert.ok(argv.includes("--no-code-cache"), argv.join(" "));
    }
  });
});

Deno.test("execDeleteEvents: a deleted exec's TaskDelete is published when the shim config asks, by a spawned server and by a spare that takes the next group", async () => {
  await withHarness("execdel", async ({ dir, ns, events, opts }) => {
    const config = `${dir}/shim.json`;
    const env = { CONTAINERD_SHIM_DENO_CONFIG: config, CONTAINERD_SHIM_DENO_STATE_DIR: `${dir}/state` };
    const spec = encodeJsonAny(PROCESS_URL, { args: ["true"], cwd: "/", env: ["PATH=/bin"] });
    const execDeletes = (id: string) =>
      events.events.filter((e) => e.topic === "/tasks/delete" && e.fields.containerId === id && e.fields.id === "x");
    /** Starts `id` in its own group, runs and deletes an exec in it, then ends the container; returns the server's pid. */
    const podWithExec = async (id: string): Promise<number> => {
      const o = { ...opts(id, await makeBundle(dir, id, ["sleep", "1000"])), env };
      const started = await runShim("start", o);
      assert.equal(started.code, 0, started.stderr);
      const client = await TaskClient.connect(new TextDecoder().decode(started.stdout), ns);
      try {
        const pid = (await client.call("Connect", { id })).shimPid;
        await client.call("Create", { id, bundle: o.bundle });
        await client.call("Start", { id });
        await client.call("Exec", { id, execId: "x", spec });
        await client.call("Start", { id, execId: "x" });
        await client.call("Wait", { id, execId: "x" });
        await client.call("Delete", { id, execId: "x" });
        await client.call("Kill", { id, signal: 9 });
        await client.call("Wait", { id });
        await client.call("Delete", { id });
        // The task's TaskDelete comes after the exec's, when there is one: all of this container's events are in.
        assert.ok(await events.waitFor(() => events.topics(id).at(-1) === "/tasks/delete"), events.topics(id).join());
        await client.call("Shutdown", { id });
        await runShim("delete", o);
        return pid;
      } finally {
        client.close();
      }
    };
    // A server spawned by start (the setting goes on its command line).
    await Deno.writeTextFile(config, JSON.stringify({ spareSeconds: 5, execDeleteEvents: true }));
    const pid = await podWithExec("ea");
    assert.equal(
      execDeletes("ea").length,
      1,
      JSON.stringify(events.events.filter((e) => e.fields.containerId === "ea")),
    );
    // The same server, now a spare, takes the next group with that start's setting (in the handoff).
    await Deno.writeTextFile(config, JSON.stringify({ spareSeconds: 5, execDeleteEvents: false }));
    assert.equal(await podWithExec("eb"), pid, "the next group was not handed to the spare");
    assert.equal(execDeletes("eb").length, 0);
    // And back.
    await Deno.writeTextFile(config, JSON.stringify({ spareSeconds: 5, execDeleteEvents: true }));
    assert.equal(await podWithExec("ec"), pid);
    assert.equal(execDeletes("ec").length, 1);
    Deno.kill(pid, "SIGTERM");
    assert.ok(await eventually(() => Promise.resolve(!processAlive(pid)), 5000), "the spare ignored SIGTERM");
  });
});
