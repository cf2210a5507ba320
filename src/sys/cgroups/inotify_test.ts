import assert from "node:assert/strict";
import { ENOENT, isErrno } from "../errno.ts";
import { poller } from "../poller.ts";
import { isDirectory } from "./fs.ts";
import { activeWatches, type FileWatch, IN_IGNORED, IN_MODIFY, watchFile } from "./inotify.ts";

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("watchFile: callbacks on modification, two watchers of one file share the kernel watch", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/f`;
    await Deno.writeTextFile(path, "0");
    const a: number[] = [], b: number[] = [];
    const wa = watchFile(path, IN_MODIFY, (m) => a.push(m));
    const wb = watchFile(path, IN_MODIFY, (m) => b.push(m));
    assert.equal(activeWatches(), 1);
    await Deno.writeTextFile(path, "1");
    await until(() => a.length > 0 && b.length > 0, 2000, "both callbacks");
    assert.ok(a.every((m) => m & IN_MODIFY));
    wa.close();
    wa.close();
    assert.equal(activeWatches(), 1, "b still watches");
    const before = a.length;
    await Deno.writeTextFile(path, "2");
    await until(() => b.length > 1, 2000, "b's second callback");
    assert.equal(a.length, before, "a closed: no more callbacks");
    wb.close();
    assert.equal(activeWatches(), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await poller().idle();
  }
});

Deno.test("watchFile: deleting the file gives IN_IGNORED once; watching a missing file throws ENOENT", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/f`;
    await Deno.writeTextFile(path, "0");
    const masks: number[] = [];
    const w = watchFile(path, IN_MODIFY, (m) => masks.push(m));
    await Deno.remove(path);
    await until(() => masks.some((m) => m & IN_IGNORED), 2000, "IN_IGNORED");
    assert.equal(activeWatches(), 0);
    w.close();
    assert.throws(() => watchFile(`${dir}/missing`, IN_MODIFY, () => {}), (e) => isErrno(e, ENOENT));
    assert.equal(activeWatches(), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await poller().idle();
  }
});

// What the v2 OOM watch stands on: kernfs notifies inotify of cgroup.events changes. (It does not report rmdir: the
// watch pins the inode, so no IN_IGNORED comes until the watch is closed.)
Deno.test({
  name: "watchFile on a real cgroup2 cgroup.events: populated 0 → 1 → 0 notifies",
  ignore: Deno.uid() !== 0 || !isDirectory("/sys/fs/cgroup/unified"),
  async fn() {
    const dir = `/sys/fs/cgroup/unified/deno-shim-test-${crypto.randomUUID().slice(0, 8)}`;
    let child: Deno.ChildProcess | undefined;
    let w: FileWatch | undefined;
    try {
      await Deno.mkdir(dir);
      const masks: number[] = [];
      w = watchFile(`${dir}/cgroup.events`, IN_MODIFY, (m) => masks.push(m));
      child = new Deno.Command("sleep", { args: ["30"] }).spawn();
      await Deno.writeTextFile(`${dir}/cgroup.procs`, String(child.pid));
      await until(() => masks.length >= 1, 2000, "populated 1");
      assert.match(await Deno.readTextFile(`${dir}/cgroup.events`), /populated 1/);
      const seen = masks.length;
      child.kill("SIGKILL");
      await child.status;
      child = undefined;
      await until(() => masks.length > seen, 2000, "populated 0");
      assert.ok(masks.every((m) => m === IN_MODIFY));
      w.close();
      assert.equal(activeWatches(), 0);
    } finally {
      w?.close();
      if (child) {
        child.kill("SIGKILL");
        await child.status;
      }
      await Deno.remove(dir).catch(() => {});
      await poller().idle();
    }
  },
});
