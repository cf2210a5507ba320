import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { cgroupsV1 } from "../../proto/mod.ts";
import { CgroupNotFoundError, isUnifiedHost, loadCgroup, loadCgroupAt } from "./mod.ts";

const TESTDATA = fileURLToPath(new URL("./testdata", import.meta.url));
const V1_ROOT = `${TESTDATA}/v1`;
const options = { hugePageSizes: ["1GB", "2MB"], partitionsFile: `${TESTDATA}/partitions` };
const c1 = {
  pids: "/default/c1",
  cpu: "/default/c1",
  cpuacct: "/default/c1",
  memory: "/default/c1",
  blkio: "/default/c1",
  hugetlb: "/default/c1",
};

function decode(value: Uint8Array) {
  return cgroupsV1.Metrics.decode(value);
}

/** `x`, asserted present (decoded nested messages and lists are typed optional). */
function must<T>(x: T | null | undefined, what = "value"): T {
  assert.ok(x !== null && x !== undefined, `${what} is missing`);
  return x;
}

/** Compares the named fields (decoded messages keep defaults on the prototype, so deepEqual would not see them). */
function assertFields(actual: object | null | undefined, expected: Record<string, unknown>, what = ""): void {
  assert.ok(actual, `${what} is missing`);
  const got = Object.fromEntries(Object.keys(expected).map((k) => [k, (actual as Record<string, unknown>)[k]]));
  assert.deepEqual(got, expected, what);
}

Deno.test("v1 metrics: pids, cpu and cpuacct in containerd's units (cpuacct.stat ticks → ns, pids max)", () => {
  const cg = loadCgroupAt(V1_ROOT, c1, options);
  assert.equal(cg.version, 1);
  assert.equal(cg.path, "/default/c1");
  assert.equal(cg.memoryDir, `${V1_ROOT}/memory/default/c1`);
  const { typeUrl, value } = cg.metrics();
  assert.equal(typeUrl, "io.containerd.cgroups.v1.Metrics");
  const m = decode(value);
  assertFields(m.pids, { current: 3, limit: 128 }, "pids");
  assertFields(m.cpu?.usage, {
    total: 2515807466,
    perCpu: [2471580746, 44226720],
    user: 240 * 10_000_000,
    kernel: 11 * 10_000_000,
  }, "cpu.usage");
  assertFields(m.cpu?.throttling, { periods: 177, throttledPeriods: 174, throttledTime: 7882434360 }, "throttling");
});

Deno.test("v1 metrics: memory.stat, the four usage/limit entries and memory_oom_control", () => {
  const m = decode(loadCgroupAt(V1_ROOT, c1, options).metrics().value);
  assertFields(m.memory, {
    cache: 15732736,
    rss: 57344,
    rssHuge: 2097152,
    mappedFile: 135168,
    dirty: 8192,
    writeback: 4096,
    pgPgIn: 808,
    pgPgOut: 778,
    pgFault: 1232,
    pgMajFault: 7,
    inactiveAnon: 53248,
    activeAnon: 4096,
    inactiveFile: 15728640,
    activeFile: 4096,
    unevictable: 12288,
    hierarchicalMemoryLimit: 67108864,
    hierarchicalSwapLimit: 9223372036854771712,
    totalCache: 15732737,
    totalRss: 57345,
    totalRssHuge: 2097153,
    totalMappedFile: 135169,
    totalDirty: 8193,
    totalWriteback: 4097,
    totalPgPgIn: 809,
    totalPgPgOut: 779,
    totalPgFault: 1233,
    totalPgMajFault: 8,
    totalInactiveAnon: 53249,
    totalActiveAnon: 4097,
    totalInactiveFile: 15728641,
    totalActiveFile: 4097,
    totalUnevictable: 12289,
  }, "memory");
  assertFields(m.memory?.usage, { usage: 17772544, max: 19247104, failcnt: 5, limit: 67108864 }, "usage");
  assertFields(m.memory?.swap, { usage: 17776640, max: 19251200, failcnt: 0, limit: 9223372036854771712 }, "swap");
  assertFields(m.memory?.kernel, { usage: 716800, max: 1011712, failcnt: 0, limit: 9223372036854771712 }, "kmem");
  // memory.kmem.tcp.* are missing in the fixture: the entry is there (as containerd sends it) and zero.
  assertFields(m.memory?.kernelTcp, { usage: 0, max: 0, failcnt: 0, limit: 0 }, "kmem.tcp");
  assertFields(m.memoryOomControl, { oomKillDisable: 0, underOom: 0, oomKill: 2 }, "oom control");
  assert.equal(loadCgroupAt(V1_ROOT, c1, options).oomKillCount(), 2);
});

Deno.test("v1 metrics: blkio from the CFQ files, with device names from /proc/partitions", () => {
  const blkio = must(decode(loadCgroupAt(V1_ROOT, c1, options).metrics().value).blkio);
  const b = {
    ioServiceBytesRecursive: must(blkio.ioServiceBytesRecursive),
    ioServicedRecursive: must(blkio.ioServicedRecursive),
    sectorsRecursive: must(blkio.sectorsRecursive),
    ioQueuedRecursive: must(blkio.ioQueuedRecursive),
    ioServiceTimeRecursive: must(blkio.ioServiceTimeRecursive),
    ioWaitTimeRecursive: must(blkio.ioWaitTimeRecursive),
    ioMergedRecursive: must(blkio.ioMergedRecursive),
    ioTimeRecursive: must(blkio.ioTimeRecursive),
  };
  assert.equal(b.ioServiceBytesRecursive.length, 12, "6 ops × 2 devices; the Total line is skipped");
  assertFields(b.ioServiceBytesRecursive[0], { device: "/dev/sda", major: 8, minor: 0, op: "Read", value: 1310720 });
  assertFields(b.ioServiceBytesRecursive[1], { device: "/dev/sda", major: 8, minor: 0, op: "Write", value: 4194304 });
  assertFields(b.ioServiceBytesRecursive[6], { device: "/dev/dm-0", major: 253, minor: 0, op: "Read", value: 4096 });
  assert.deepEqual(b.ioServicedRecursive.map((e) => `${e.op}=${e.value}`), [
    "Read=40",
    "Write=64",
    "Sync=104",
    "Async=0",
    "Discard=0",
    "Total=104",
  ]);
  assert.equal(b.sectorsRecursive.length, 1);
  assertFields(b.sectorsRecursive[0], { device: "/dev/sda", major: 8, minor: 0, op: "", value: 10752 });
  assert.equal(b.ioQueuedRecursive.length, 6);
  assert.equal(b.ioServiceTimeRecursive.find((e) => e.op === "Write")?.value, 2500000);
  assert.equal(b.ioWaitTimeRecursive.find((e) => e.op === "Read")?.value, 700);
  assert.equal(b.ioMergedRecursive.find((e) => e.op === "Write")?.value, 2);
  assertFields(b.ioTimeRecursive[0], { device: "/dev/sda", op: "", value: 1234 });
});

Deno.test("v1 metrics: hugetlb per host page size", () => {
  const m = decode(loadCgroupAt(V1_ROOT, c1, options).metrics().value);
  assert.equal(m.hugetlb.length, 2);
  assertFields(m.hugetlb[0], { pagesize: "1GB", usage: 0, max: 0, failcnt: 0 });
  assertFields(m.hugetlb[1], { pagesize: "2MB", usage: 2097152, max: 4194304, failcnt: 1 });
});

Deno.test("v1 metrics: without CFQ files blkio falls back to the throttle counters; absent controllers are skipped", () => {
  const cg = loadCgroupAt(V1_ROOT, { blkio: "/default/throttled", memory: "/default/throttled" }, options);
  assert.equal(cg.path, "/default/throttled");
  assert.equal(cg.memoryDir, null, "no memory cgroup directory: the controller is left out");
  assert.equal(cg.oomKillCount(), 0);
  const m = decode(cg.metrics().value);
  const blkio = must(m.blkio);
  assert.equal(blkio.ioServicedRecursive?.length, 6);
  assertFields(blkio.ioServicedRecursive?.[0], { device: "/dev/vda", major: 254, minor: 0, op: "Read", value: 12 });
  assertFields(blkio.ioServiceBytesRecursive?.[1], { device: "/dev/vda", op: "Write", value: 12288 });
  assert.equal(blkio.sectorsRecursive?.length, 0);
  assert.equal(m.memory, null);
  assert.equal(m.pids, null);
  assert.equal(m.memoryOomControl, null);
  assert.ok(m.cpu?.usage && m.cpu.throttling, "cpu and its two parts are always sent, as containerd does");
});

Deno.test("v1: a cgroup with no controller directory cannot be loaded", () => {
  assert.throws(
    () => loadCgroupAt(V1_ROOT, { memory: "/default/none", pids: "/default/none" }),
    (e) => e instanceof CgroupNotFoundError && e.cgroupPath === "/default/none",
  );
});

// A real cgroup in every v1 controller with statistics, a process in it, and the handle loadCgroup() builds for it.
/** Resolves once `pid` runs `sleep` and is asleep (state S), polling /proc (at most ~5 s). */
async function untilAsleep(pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const comm = (await Deno.readTextFile(`/proc/${pid}/comm`)).trim();
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    if (comm === "sleep" && stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "S") return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`process ${pid} never went to sleep`);
}

Deno.test({
  name: "v1 on this host: loadCgroup(pid) reports the process's real cgroups, then NotFound once they are removed",
  ignore: isUnifiedHost() || Deno.uid() !== 0,
  async fn() {
    const name = `deno-shim-test-${crypto.randomUUID().slice(0, 8)}`;
    const controllers = ["pids", "cpu", "cpuacct", "memory", "blkio"];
    const dirs = controllers.map((c) => `/sys/fs/cgroup/${c}/${name}`);
    let child: Deno.ChildProcess | undefined;
    try {
      for (const d of dirs) await Deno.mkdir(d);
      await Deno.writeTextFile(`/sys/fs/cgroup/pids/${name}/pids.max`, "50");
      await Deno.writeTextFile(`/sys/fs/cgroup/memory/${name}/memory.limit_in_bytes`, String(64 << 20));
      const join = dirs.map((d) => `echo $$ > ${d}/cgroup.procs`).join("; ");
      // Join every cgroup, burn some CPU, say so, then sleep as the only process.
      const script = `${join}; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; echo ready; exec sleep 60`;
      child = new Deno.Command("sh", { args: ["-c", script], stdout: "piped", stderr: "inherit" }).spawn();
      const reader = child.stdout.getReader();
      const { value } = await reader.read();
      reader.releaseLock();
      assert.equal(new TextDecoder().decode(value).trim(), "ready");
      // The shell execs `sleep` after "ready": wait until it sleeps, so that no CPU time accrues between the reads of
      // the total and the per-CPU counters below (they are separate files).
      await untilAsleep(child.pid);

      const cg = loadCgroup(child.pid);
      assert.equal(cg.version, 1);
      assert.equal(cg.path, `/${name}`);
      assert.equal(cg.memoryDir, `/sys/fs/cgroup/memory/${name}`);
      assert.equal(cg.exists(), true);
      const m = decode(cg.metrics().value);
      assertFields(m.pids, { current: 1, limit: 50 }, "pids");
      assert.equal(m.memory?.usage?.limit, 64 << 20);
      assert.ok((m.memory?.usage?.usage ?? 0) > 0, "memory usage is positive");
      assert.ok((m.cpu?.usage?.total ?? 0) > 0, "the busy loop used CPU time");
      const usage = must(m.cpu?.usage);
      const perCpu = must(usage.perCpu);
      assert.equal(perCpu.length, navigator.hardwareConcurrency);
      const total = must(usage.total);
      const perCpuSum = perCpu.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(perCpuSum - total) <= total * 0.05, `per-CPU sum ${perCpuSum} vs total ${total}`);
      assertFields(m.memoryOomControl, { oomKillDisable: 0, underOom: 0, oomKill: 0 }, "oom control");
      assert.ok(m.blkio, "blkio is reported");
      assert.equal(cg.oomKillCount(), 0);

      child.kill("SIGKILL");
      await child.status;
      child = undefined;
      // After the process exits and before the cgroups are removed (Delete), Stats still works.
      assertFields(decode(cg.metrics().value).pids, { current: 0, limit: 50 }, "pids after exit");
      for (const d of dirs) await Deno.remove(d);
      assert.equal(cg.exists(), false);
      assert.throws(() => cg.metrics(), CgroupNotFoundError);
    } finally {
      if (child) {
        child.kill("SIGKILL");
        await child.status;
      }
      for (const d of dirs) await Deno.remove(d).catch(() => {});
    }
  },
});
