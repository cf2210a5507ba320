/**
 * Task API features that ctr 1.6 cannot reach, driven through the harness: Update, the shim cgroup and OOM score
 * of the server, and memory/fd stability over many execs.
 */
import assert from "node:assert/strict";
import { encodeAny, encodeJsonAny } from "../src/proto/any.ts";
import { Any } from "../src/proto/mod.ts";
import { busyboxRootfs, FakeEvents, makeBundle, runShim, TaskClient } from "./harness/shim.ts";
import { memoryOf } from "./lab/proc.ts";

const PROCESS_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const RESOURCES_URL = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

interface Harness {
  dir: string;
  ns: string;
  events: FakeEvents;
  client: TaskClient;
  bundle: string;
  serverPid: number;
  opts: Parameters<typeof runShim>[1];
  cleanup(): Promise<void>;
}

/** Starts a server for one running container `id` (sleep) and connects to it. */
async function harness(id: string, stdin?: Uint8Array): Promise<Harness> {
  const dir = await Deno.makeTempDir({ prefix: "shim-api-" });
  const ns = `api${Date.now() % 100000}`;
  const events = FakeEvents.start(dir);
  await busyboxRootfs(dir);
  const bundle = await makeBundle(dir, id, ["sleep", "100000"]);
  const opts = { bundle, id, namespace: ns, address: `${dir}/containerd.sock`, ttrpcAddress: events.path, stdin };
  const started = await runShim("start", opts);
  assert.equal(started.code, 0, started.stderr);
  const client = await TaskClient.connect(new TextDecoder().decode(started.stdout), ns);
  await client.call("Create", { id, bundle });
  await client.call("Start", { id });
  const serverPid = (await client.call("Connect", { id })).shimPid;
  return {
    dir,
    ns,
    events,
    client,
    bundle,
    serverPid,
    opts,
    async cleanup() {
      await client.call("Kill", { id, signal: 9 }).catch(() => {});
      await client.call("Wait", { id }).catch(() => {});
      await client.call("Delete", { id }).catch(() => {});
      await client.call("Shutdown", { id }).catch(() => {});
      client.close();
      events.close();
      await runShim("delete", opts);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

Deno.test("Update lowers a running container's memory limit in its cgroup", async () => {
  const h = await harness("upd");
  try {
    const limitFile = "/sys/fs/cgroup/memory/harness/upd/memory.limit_in_bytes";
    const before = Number(Deno.readTextFileSync(limitFile).trim());
    await h.client.call("Update", {
      id: "upd",
      resources: encodeJsonAny(RESOURCES_URL, { memory: { limit: 48 * 1024 * 1024 } }),
    });
    assert.equal(Number(Deno.readTextFileSync(limitFile).trim()), 48 * 1024 * 1024);
    assert.notEqual(before, 48 * 1024 * 1024);
  } finally {
    await h.cleanup();
  }
});

Deno.test("the server moves into Options.shim_cgroup and sits at containerd's oom_score_adj + 1", async () => {
  const cg = `deno-shim-cg-${Date.now() % 100000}`;
  const dirs = ["memory", "pids"].map((c) => `/sys/fs/cgroup/${c}/${cg}`);
  for (const d of dirs) await Deno.mkdir(d);
  const options = encodeAny("containerd.runc.v1.Options", { shimCgroup: `/${cg}` });
  const h = await harness("cgshim", Any.encode(options).finish());
  try {
    const cgroups = Deno.readTextFileSync(`/proc/${h.serverPid}/cgroup`);
    assert.match(cgroups, new RegExp(`:memory:/${cg}$`, "m"));
    assert.match(cgroups, new RegExp(`:pids:/${cg}$`, "m"));
    const mine = Number(Deno.readTextFileSync("/proc/self/oom_score_adj").trim());
    const server = Number(Deno.readTextFileSync(`/proc/${h.serverPid}/oom_score_adj`).trim());
    assert.equal(server, Math.min(mine + 1, 1000));
  } finally {
    await h.cleanup();
    for (const d of dirs) await Deno.remove(d).catch(() => {});
  }
});

const EXECS = Number(Deno.env.get("SHIM_SOAK_EXECS") ?? "10000");
const WARMUP = Math.min(3000, Math.floor(EXECS / 3));

/** Resident KiB of the server: total, anonymous and file-backed. */
async function residentKiB(pid: number): Promise<{ total: number; anon: number; file: number }> {
  const m = await memoryOf(pid);
  if (!m) throw new Error(`process ${pid} is gone`);
  return { total: m.rssKiB, anon: m.anonKiB, file: m.rssKiB - m.anonKiB };
}

/** Longer than the heap keeper's idle delay (2 s), so the server has run its idle collection. */
const settle = () => new Promise((r) => setTimeout(r, 3000));

Deno.test(`${EXECS} sequential execs: the server's RSS grows by less than 2 MiB and no fd leaks`, async () => {
  const h = await harness("soak");
  const spec = encodeJsonAny(PROCESS_URL, { args: ["true"], cwd: "/", env: ["PATH=/bin"], user: { uid: 0, gid: 0 } });
  const fds = () => [...Deno.readDirSync(`/proc/${h.serverPid}/fd`)].length;
  const one = async (i: number) => {
    const execId = `x${i}`;
    await h.client.call("Exec", { id: "soak", execId, spec });
    await h.client.call("Start", { id: "soak", execId });
    const w = await h.client.call("Wait", { id: "soak", execId });
    assert.equal(w.exitStatus, 0);
    await h.client.call("Delete", { id: "soak", execId });
  };
  try {
    // The first execs page in the code paths of the runtime that exec uses (the deno executable's text: shared,
    // clean, file-backed), and Deno's own per-operation state grows until ~25,000 async operations (a bare Deno
    // loop of timers, FFI calls, socket reads or spawns shows the same plateau), which is ~3,000 execs. The bound is
    // for what happens after that, over EXECS more: what the shim keeps per exec.
    const boot = await residentKiB(h.serverPid);
    for (let i = 0; i < WARMUP; i++) await one(i);
    // Readings are taken once the server is idle, after the collection it runs then (src/shim/heap.ts): between
    // collections the V8 heap holds up to a few MiB of garbage, which would make single readings swing by ±1.5 MiB.
    await settle();
    const fds0 = fds(), rss0 = await residentKiB(h.serverPid);
    for (let i = 0; i < EXECS; i++) {
      await one(WARMUP + i);
      if (Deno.env.get("SHIM_SOAK_TRACE") && i % 500 === 0) {
        console.log(`exec ${i}: rss ${JSON.stringify(await residentKiB(h.serverPid))} KiB, fds ${fds()}`);
      }
    }
    await settle();
    const fds1 = fds(), rss1 = await residentKiB(h.serverPid);
    console.log(
      `server RSS KiB (total/anon/file): boot ${boot.total}/${boot.anon}/${boot.file}, after ${WARMUP} warm-up execs ` +
        `${rss0.total}/${rss0.anon}/${rss0.file}, after ${EXECS} more ${rss1.total}/${rss1.anon}/${rss1.file} ` +
        `(+${rss1.total - rss0.total} KiB); fds ${fds0} → ${fds1}`,
    );
    assert.ok(fds1 <= fds0, `fds grew ${fds0} → ${fds1}`);
    assert.ok(
      rss1.total - rss0.total < 2048,
      `the server's RSS grew ${rss1.total - rss0.total} KiB over ${EXECS} execs (anon ${rss0.anon} → ${rss1.anon})`,
    );
  } finally {
    await h.cleanup();
  }
});

Deno.test("Stats stays readable after the init exits, until Delete", async () => {
  const h = await harness("statsexit");
  try {
    await h.client.call("Kill", { id: "statsexit", signal: 9 });
    assert.equal((await h.client.call("Wait", { id: "statsexit" })).exitStatus, 137);
    const stats = await h.client.call("Stats", { id: "statsexit" });
    assert.equal(stats.stats?.type_url, "io.containerd.cgroups.v1.Metrics");
    assert.ok((stats.stats?.value?.length ?? 0) > 0);
    await h.client.call("Delete", { id: "statsexit" });
    await assert.rejects(h.client.call("Stats", { id: "statsexit" }), /container not created/);
  } finally {
    await h.cleanup();
  }
});
