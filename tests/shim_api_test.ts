/**
 * Task API features that ctr 1.6 cannot reach, driven through the harness: Update, the shim cgroup and OOM score
 * of the server, and memory/fd stability over many execs.
 */
import assert from "node:assert/strict";
import { encodeAny, encodeJsonAny } from "../src/proto/any.ts";
import { Any } from "../src/proto/mod.ts";
import { busyboxRootfs, FakeEvents, makeBundle, runShim, TaskClient } from "./harness/shim.ts";

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

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of Deno.readTextFileSync(`/proc/${pid}/status`).split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
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
const WARMUP = Math.min(2000, Math.floor(EXECS / 5));

/**
 * RSS growth of a bare Deno process doing, `n` times, the runtime work one exec needs (spawn one child, write,
 * stat, read and remove a small file), measured the same way as the shim below. Deno 2.9 itself retains memory for
 * these operations (most of it in the first few thousand, then ~50 B per operation), so the soak compares the shim
 * with this baseline to tell what the shim's own code keeps.
 */
async function runtimeGrowthKiB(n: number): Promise<number> {
  const script = `
    const rss = () => Number(Deno.readTextFileSync("/proc/self/status").match(/VmRSS:\\s+(\\d+)/)[1]);
    const f = "/tmp/shim-soak-baseline-" + Deno.pid;
    const one = async () => {
      await new Deno.Command("true", { stdin: "null", stdout: "null", stderr: "null" }).spawn().status;
      await Deno.writeTextFile(f, '{"args":["true"]}');
      await Deno.stat(f);
      await Deno.readTextFile(f);
      await Deno.remove(f);
    };
    for (let i = 0; i < ${WARMUP}; i++) await one();
    const a = rss();
    for (let i = ${WARMUP}; i < ${n}; i++) await one();
    console.log(rss() - a);`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--max-semi-space-size=1", script],
    stdout: "piped",
  }).output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

Deno.test(`${EXECS} sequential execs: no fd leak, and no per-exec memory leak in the shim`, async () => {
  const h = await harness("soak");
  const spec = encodeJsonAny(PROCESS_URL, { args: ["true"], cwd: "/", env: ["PATH=/bin"], user: { uid: 0, gid: 0 } });
  const fds = () => [...Deno.readDirSync(`/proc/${h.serverPid}/fd`)].length;
  const rssKiB = () => Number(status(h.serverPid).VmRSS.split(" ")[0]);
  const one = async (i: number) => {
    const execId = `x${i}`;
    await h.client.call("Exec", { id: "soak", execId, spec });
    await h.client.call("Start", { id: "soak", execId });
    const w = await h.client.call("Wait", { id: "soak", execId });
    assert.equal(w.exitStatus, 0);
    await h.client.call("Delete", { id: "soak", execId });
  };
  try {
    for (let i = 0; i < WARMUP; i++) await one(i);
    const fds0 = fds(), rss0 = rssKiB();
    for (let i = WARMUP; i < EXECS; i++) {
      await one(i);
      if (Deno.env.get("SHIM_SOAK_TRACE") && i % 500 === 0) {
        Deno.kill(h.serverPid, "SIGUSR2");
        console.log(`exec ${i}: rss ${rssKiB()} KiB threads ${status(h.serverPid).Threads} fds ${fds()}`);
      }
    }
    await new Promise((r) => setTimeout(r, 500));
    const fds1 = fds(), rss1 = rssKiB();
    const runtime = await runtimeGrowthKiB(EXECS);
    const own = rss1 - rss0 - Math.max(0, runtime);
    console.log(
      `execs=${EXECS} (after ${WARMUP} warm-up): server RSS ${rss0} → ${rss1} KiB (+${rss1 - rss0}), ` +
        `bare Deno doing the same runtime work: +${runtime} KiB, shim's own: ${own} KiB; fds ${fds0} → ${fds1}`,
    );
    assert.ok(fds1 <= fds0, `fds grew ${fds0} → ${fds1}`);
    // The bare-Deno baseline itself varies by ±1 MiB between runs, so the comparison above is reported, not asserted.
    // What is asserted catches a per-exec leak in the shim: everything together stays under 1 KiB per exec (measured:
    // ~600 B per exec, most of it the runtime's own, as the baseline shows).
    const perExec = ((rss1 - rss0) * 1024) / (EXECS - WARMUP);
    assert.ok(perExec < 1024, `the server's RSS grew ${rss1 - rss0} KiB, ${perExec.toFixed(0)} B per exec`);
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
