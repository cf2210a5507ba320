import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { cgroupsV2 } from "../../proto/mod.ts";
import { CgroupNotFoundError, loadCgroupAt } from "./mod.ts";

const V2_ROOT = fileURLToPath(new URL("./testdata/v2", import.meta.url));
const sizes = { hugePageSizes: ["1GB", "2MB"] };

function decode(value: Uint8Array) {
  return cgroupsV2.Metrics.decode(value);
}

/** Compares the named fields (decoded messages keep defaults on the prototype, so deepEqual would not see them). */
function assertFields(actual: object | null | undefined, expected: Record<string, unknown>, what = ""): void {
  assert.ok(actual, `${what} is missing`);
  const got = Object.fromEntries(Object.keys(expected).map((k) => [k, (actual as Record<string, unknown>)[k]]));
  assert.deepEqual(got, expected, what);
}

Deno.test("v2 metrics of a full cgroup carry every file's values under containerd's field names", () => {
  const cg = loadCgroupAt(V2_ROOT, "/default/c1", sizes);
  assert.equal(cg.version, 2);
  assert.equal(cg.path, "/default/c1");
  assert.equal(cg.memoryDir, `${V2_ROOT}/default/c1`);
  const { typeUrl, value } = cg.metrics();
  assert.equal(typeUrl, "io.containerd.cgroups.v2.Metrics");
  const m = decode(value);

  // pids.max "max" is 2^64-1 on the wire (decoded as the nearest double).
  assert.equal(m.pids?.current, 3);
  assert.equal(m.pids?.limit, 2 ** 64);

  assertFields(m.cpu, {
    usageUsec: 1520436,
    userUsec: 1210045,
    systemUsec: 310391,
    nrPeriods: 412,
    nrThrottled: 37,
    throttledUsec: 2871440,
  });

  const mem = m.memory!;
  assert.equal(mem.anon, 2293760);
  assert.equal(mem.file, 16924672);
  assert.equal(mem.kernelStack, 49152);
  assert.equal(mem.slab, 1088880);
  assert.equal(mem.sock, 4096);
  assert.equal(mem.shmem, 12288);
  assert.equal(mem.fileMapped, 1757184);
  assert.equal(mem.fileDirty, 16384);
  assert.equal(mem.fileWriteback, 8192);
  assert.equal(mem.anonThp, 2097152);
  assert.equal(mem.inactiveAnon, 2285568);
  assert.equal(mem.activeAnon, 20480);
  assert.equal(mem.inactiveFile, 16748544);
  assert.equal(mem.activeFile, 163840);
  assert.equal(mem.unevictable, 4096);
  assert.equal(mem.slabReclaimable, 701232);
  assert.equal(mem.slabUnreclaimable, 387648);
  assert.equal(mem.pgfault, 5931);
  assert.equal(mem.pgmajfault, 12);
  // Kernels since 5.9 split workingset_refault/activate into _anon/_file: the old keys are absent, hence 0.
  assert.equal(mem.workingsetRefault, 0);
  assert.equal(mem.workingsetActivate, 0);
  assert.equal(mem.workingsetNodereclaim, 2);
  assert.equal(mem.pgrefill, 9);
  assert.equal(mem.pgscan, 120);
  assert.equal(mem.pgsteal, 110);
  assert.equal(mem.pgactivate, 45);
  assert.equal(mem.pgdeactivate, 6);
  assert.equal(mem.pglazyfree, 1);
  assert.equal(mem.pglazyfreed, 1);
  assert.equal(mem.thpFaultAlloc, 1);
  assert.equal(mem.thpCollapseAlloc, 0);
  assert.equal(mem.usage, 20566016);
  assert.equal(mem.usageLimit, 67108864);
  assert.equal(mem.swapUsage, 0);
  assert.equal(mem.swapLimit, 2 ** 64);
  assert.equal(mem.maxUsage, 22020096);
  assert.equal(mem.swapMaxUsage, 0, "memory.swap.peak is missing: skipped");

  assertFields(m.memoryEvents, { low: 0, high: 3, max: 17, oom: 2, oomKill: 1 });

  assert.equal(m.io?.usage?.length, 2);
  assertFields(m.io.usage[0], { major: 8, minor: 0, rbytes: 1310720, wbytes: 4194304, rios: 40, wios: 64 }, "io 8:0");
  assertFields(m.io.usage[1], { major: 253, minor: 0, rbytes: 4096, wbytes: 0, rios: 1, wios: 0 }, "io 253:0");

  assert.equal(m.hugetlb.length, 2);
  assertFields(m.hugetlb[0], { pagesize: "1GB", current: 0, max: 2 ** 64 }, "hugetlb 1GB");
  assertFields(m.hugetlb[1], { pagesize: "2MB", current: 2097152, max: 4194304 }, "hugetlb 2MB");
  assert.ok(m.rdma, "rdma is sent (empty), as containerd does");
});

Deno.test("v2 oomKillCount reads memory.events", () => {
  assert.equal(loadCgroupAt(V2_ROOT, "/default/c1").oomKillCount(), 1);
  assert.equal(loadCgroupAt(V2_ROOT, "/default/minimal").oomKillCount(), 0);
});

Deno.test("v2 metrics of a cgroup without memory, pids and io files: zero values, no memory_events", () => {
  const m = decode(loadCgroupAt(V2_ROOT, "/default/minimal", sizes).metrics().value);
  assertFields(m.cpu, {
    usageUsec: 1000,
    userUsec: 600,
    systemUsec: 400,
    nrPeriods: 0,
    nrThrottled: 0,
    throttledUsec: 0,
  });
  assert.equal(m.pids?.current, 0);
  assert.equal(m.pids?.limit, 0);
  assert.equal(m.memory?.usage, 0);
  assert.equal(m.memory?.usageLimit, 0);
  assert.equal(m.memoryEvents, null);
  assert.deepEqual(m.io?.usage, []);
  assert.deepEqual(m.hugetlb, []);
});

Deno.test("v2: loading a missing cgroup, or asking a deleted one for metrics, is CgroupNotFoundError", async () => {
  assert.throws(() => loadCgroupAt(V2_ROOT, "/default/nope"), CgroupNotFoundError);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/default/gone`, { recursive: true });
    await Deno.writeTextFile(`${dir}/default/gone/cpu.stat`, "usage_usec 5\n");
    await Deno.writeTextFile(`${dir}/default/gone/memory.events`, "oom_kill 0\n");
    const cg = loadCgroupAt(dir, "/default/gone");
    assert.equal(decode(cg.metrics().value).cpu?.usageUsec, 5);
    assert.equal(cg.exists(), true);
    await Deno.remove(`${dir}/default/gone`, { recursive: true });
    assert.equal(cg.exists(), false);
    assert.throws(() => cg.metrics(), (e) => e instanceof CgroupNotFoundError && e.message === "cgroup does not exist");
    assert.equal(cg.oomKillCount(), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("v2: a file that appears later (a controller enabled) is read once the missing-file retry is due", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/c`);
    await Deno.writeTextFile(`${dir}/c/cpu.stat`, "usage_usec 5\n");
    const lazy = loadCgroupAt(dir, "/c", { missingFileRetryMs: 60_000 });
    const eager = loadCgroupAt(dir, "/c", { missingFileRetryMs: 0 });
    assert.equal(decode(lazy.metrics().value).memory?.usage, 0);
    assert.equal(decode(eager.metrics().value).memory?.usage, 0);
    await Deno.writeTextFile(`${dir}/c/memory.current`, "4096\n");
    await Deno.writeTextFile(`${dir}/c/cpu.stat`, "usage_usec 9\n");
    const m = decode(lazy.metrics().value);
    assert.equal(m.cpu?.usageUsec, 9, "existing files are read afresh every time");
    assert.equal(m.memory?.usage, 0, "a missing file is not retried before the interval");
    assert.equal(decode(eager.metrics().value).memory?.usage, 4096);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("v2 against the real (controller-less) cgroup2 mount of a hybrid host: cpu.stat of the root", () => {
  let cg;
  try {
    cg = loadCgroupAt("/sys/fs/cgroup/unified", "/");
  } catch (e) {
    if (e instanceof CgroupNotFoundError) return; // no cgroup2 mount there (a pure v1 or pure v2 host)
    throw e;
  }
  const m = decode(cg.metrics().value);
  assert.ok((m.cpu?.usageUsec ?? 0) > 0, "the root's CPU usage is positive");
});
