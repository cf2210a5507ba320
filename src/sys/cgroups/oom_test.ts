import assert from "node:assert/strict";
import { cgroupsV1 } from "../../proto/mod.ts";
import { ENOENT, isErrno } from "../errno.ts";
import { poller } from "../poller.ts";
import { activeWatches } from "./inotify.ts";
import { isUnifiedHost, loadCgroupAt, watchOom } from "./mod.ts";

/** Open fds of this process, with the process-wide poller's own two counted in (it may not exist yet). */
function openFds(): number {
  poller();
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** Resolves when `check()` holds, polling; rejects after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs dd with a 64 MiB buffer inside the memory cgroup `dir` (32 MiB limit): the kernel OOM-kills it. */
async function oomKillOneProcess(dir: string): Promise<Deno.CommandStatus> {
  const script = `echo $$ > ${dir}/cgroup.procs; exec dd if=/dev/zero of=/dev/null bs=64M count=1`;
  return await new Deno.Command("sh", { args: ["-c", script], stdout: "null", stderr: "null" }).output();
}

Deno.test({
  name: "v1 OOM on this host: the eventfd watch reports each OOM kill, earlier kills once, and ends with the cgroup",
  ignore: isUnifiedHost() || Deno.uid() !== 0,
  async fn() {
    const name = `deno-shim-test-${crypto.randomUUID().slice(0, 8)}`;
    const dir = `/sys/fs/cgroup/memory/${name}`;
    let stop: (() => void) | undefined;
    try {
      await Deno.mkdir(dir);
      await Deno.writeTextFile(`${dir}/memory.limit_in_bytes`, String(32 << 20));
      const cg = loadCgroupAt("/sys/fs/cgroup", { memory: `/${name}` });

      // A kill before the watch starts (between runc start and Start's watch) is reported once, after the call.
      const early = await oomKillOneProcess(dir);
      assert.equal(early.signal, "SIGKILL", "dd with a 64 MiB buffer under a 32 MiB limit is OOM-killed");
      assert.equal(cg.oomKillCount(), 1);

      const baseline = openFds();
      let calls = 0;
      stop = watchOom(cg, () => calls++);
      assert.equal(calls, 0, "never called synchronously");
      await until(() => calls === 1, 2000, "the earlier kill to be reported");

      const status = await oomKillOneProcess(dir);
      assert.equal(status.signal, "SIGKILL");
      await until(() => calls >= 2, 5000, "the OOM callback");
      assert.equal(cg.oomKillCount(), 2);
      const m = cgroupsV1.Metrics.decode(cg.metrics().value);
      assert.equal(m.memoryOomControl?.oomKill, 2);

      // Removing the cgroup signals the eventfd once more: no callback, and the watch closes its fd by itself.
      await Deno.remove(dir);
      await until(() => openFds() === baseline, 2000, "the watch to release its eventfd");
      await sleep(50);
      assert.equal(calls, 2, "cgroup removal is not an OOM");
      stop();
      stop();
    } finally {
      stop?.();
      await Deno.remove(dir).catch(() => {});
      await poller().idle();
    }
  },
});

Deno.test({
  name: "v1 OOM: stop() closes the eventfd and no callback follows",
  ignore: isUnifiedHost() || Deno.uid() !== 0,
  async fn() {
    const name = `deno-shim-test-${crypto.randomUUID().slice(0, 8)}`;
    const dir = `/sys/fs/cgroup/memory/${name}`;
    try {
      await Deno.mkdir(dir);
      await Deno.writeTextFile(`${dir}/memory.limit_in_bytes`, String(32 << 20));
      const cg = loadCgroupAt("/sys/fs/cgroup", { memory: `/${name}` });
      const baseline = openFds();
      let calls = 0;
      const stop = watchOom(cg, () => calls++);
      assert.equal(openFds(), baseline + 1, "one fd while watching (the eventfd)");
      stop();
      assert.equal(openFds(), baseline);
      assert.equal((await oomKillOneProcess(dir)).signal, "SIGKILL");
      await sleep(100);
      assert.equal(calls, 0);
    } finally {
      await Deno.remove(dir).catch(() => {});
      await poller().idle();
    }
  },
});

Deno.test("watchOom refuses a cgroup without a memory controller", () => {
  const cg = loadCgroupAt(new URL("./testdata/v1", import.meta.url).pathname, { blkio: "/default/throttled" });
  assert.throws(() => watchOom(cg, () => {}), /no memory controller/);
});

/** A v2 cgroup directory in a temp dir, with the files the OOM watch reads. */
async function v2Fixture(
  oomKill: number,
): Promise<{ root: string; dir: string; events(kills: number): Promise<void> }> {
  const root = await Deno.makeTempDir();
  const dir = `${root}/c`;
  await Deno.mkdir(dir);
  const events = (kills: number) =>
    Deno.writeTextFile(`${dir}/memory.events`, `low 0\nhigh 0\nmax ${kills * 3}\noom ${kills}\noom_kill ${kills}\n`);
  await events(oomKill);
  await Deno.writeTextFile(`${dir}/cgroup.events`, "populated 1\nfrozen 0\n");
  await Deno.writeTextFile(`${dir}/cpu.stat`, "usage_usec 1\n");
  return { root, dir, events };
}

Deno.test("v2 OOM: one callback per increase of memory.events oom_kill, none for other changes or after stop", async () => {
  const f = await v2Fixture(0);
  try {
    const cg = loadCgroupAt(f.root, "/c");
    let calls = 0;
    const stop = watchOom(cg, () => calls++);
    assert.equal(activeWatches(), 2, "memory.events and cgroup.events");
    await f.events(1);
    await until(() => calls === 1, 2000, "the first OOM callback");
    // max/high changes without a kill, and cgroup.events changes: re-read, nothing to report.
    await Deno.writeTextFile(`${f.dir}/memory.events`, "low 0\nhigh 9\nmax 9\noom 1\noom_kill 1\n");
    await Deno.writeTextFile(`${f.dir}/cgroup.events`, "populated 1\nfrozen 1\n");
    await sleep(100);
    assert.equal(calls, 1);
    assert.equal(activeWatches(), 2);
    await f.events(3);
    await until(() => calls === 2, 2000, "the second OOM callback");
    stop();
    stop();
    assert.equal(activeWatches(), 0, "the shared inotify instance holds nothing after stop");
    await f.events(4);
    await sleep(100);
    assert.equal(calls, 2);
  } finally {
    await Deno.remove(f.root, { recursive: true });
    await poller().idle();
  }
});

Deno.test("v2 OOM: kills before the watch are reported once, after watchOom returns", async () => {
  const f = await v2Fixture(2);
  try {
    let calls = 0;
    const stop = watchOom(loadCgroupAt(f.root, "/c"), () => calls++);
    assert.equal(calls, 0);
    await until(() => calls === 1, 1000, "the earlier kills to be reported");
    await f.events(2); // rewritten, same count
    await sleep(100);
    assert.equal(calls, 1);
    stop();
  } finally {
    await Deno.remove(f.root, { recursive: true });
    await poller().idle();
  }
});

Deno.test("v2 OOM: when the cgroup empties, the counter is checked once more and the watch ends", async () => {
  const f = await v2Fixture(0);
  try {
    let calls = 0;
    const stop = watchOom(loadCgroupAt(f.root, "/c"), () => calls++);
    assert.equal(activeWatches(), 2);
    // The kill and the exit land together (the kernel rate-limits memory.events notifications).
    await f.events(1);
    await Deno.writeTextFile(`${f.dir}/cgroup.events`, "populated 0\nfrozen 0\n");
    await until(() => activeWatches() === 0, 2000, "the watches to be dropped");
    assert.equal(calls, 1, "the last kill is reported exactly once");
    stop();
  } finally {
    await Deno.remove(f.root, { recursive: true });
    await poller().idle();
  }
});

Deno.test("v2 OOM: the watch ends by itself when the cgroup's files are removed", async () => {
  const f = await v2Fixture(0);
  try {
    let calls = 0;
    const stop = watchOom(loadCgroupAt(f.root, "/c"), () => calls++);
    await Deno.remove(f.dir, { recursive: true });
    await until(() => activeWatches() === 0, 2000, "the watches to be dropped");
    assert.equal(calls, 0);
    stop();
  } finally {
    await Deno.remove(f.root, { recursive: true });
    await poller().idle();
  }
});

Deno.test("v2 OOM: a cgroup without memory.events cannot be watched (ENOENT), and nothing is left behind", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/c`);
    await Deno.writeTextFile(`${root}/c/cpu.stat`, "usage_usec 1\n");
    assert.throws(() => watchOom(loadCgroupAt(root, "/c"), () => {}), (e) => isErrno(e, ENOENT));
    assert.equal(activeWatches(), 0);
  } finally {
    await Deno.remove(root, { recursive: true });
    await poller().idle();
  }
});
