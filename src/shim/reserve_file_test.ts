import assert from "node:assert/strict";
import { groupFiles, GroupLease, livePath, reservationPath, reserveByFile } from "./reserve_file.ts";

/** A state directory of its own for each test. */
async function withState(fn: (state: string) => Promise<void> | void): Promise<void> {
  const state = await Deno.makeTempDir({ prefix: "reserve-file-" });
  try {
    await fn(state);
  } finally {
    await Deno.remove(state, { recursive: true });
  }
}

const exists = (p: string) => {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
};

Deno.test("no groups directory, or no live file: start reserves over the socket instead", () =>
  withState((state) => {
    const g = groupFiles(state, "/run/containerd/s/aaa");
    assert.equal(reserveByFile(g, "default", "c1"), false);
    Deno.mkdirSync(g.dir);
    assert.equal(reserveByFile(g, "default", "c1"), false);
    assert.equal(exists(reservationPath(g, "default", "c1")), false);
  }));

Deno.test("a stripe lock held for too long sends start to the socket instead of waiting", () =>
  withState(async (state) => {
    const g = groupFiles(state, "/run/containerd/s/held");
    const lease = new GroupLease(g, 60_000);
    assert.equal(await lease.open(), true);
    // Someone (a stopped process, say) holds every stripe lock: another open file description in this process.
    const held = [...Deno.readDirSync(g.dir)].filter((e) => e.name.startsWith("lock.")).map((e) => {
      const f = Deno.openSync(`${g.dir}/${e.name}`, { read: true, write: true });
      f.lockSync(true);
      return f;
    });
    try {
      const t0 = performance.now();
      assert.equal(reserveByFile(g, "default", "late"), false);
      assert.ok(performance.now() - t0 >= 900, "gave up before its time");
      assert.equal(exists(reservationPath(g, "default", "late")), false);
    } finally {
      for (const f of held) f.close();
    }
    assert.equal(reserveByFile(g, "default", "late"), true);
  }));

Deno.test("a live file nobody holds (its server died) takes no reservation", () =>
  withState((state) => {
    const g = groupFiles(state, "/run/containerd/s/dead");
    Deno.mkdirSync(g.dir);
    Deno.writeFileSync(livePath(g), new Uint8Array());
    assert.equal(reserveByFile(g, "default", "c1"), false);
    assert.equal(exists(reservationPath(g, "default", "c1")), false);
    // The check took the lock and gave it back: a server can still take the file.
    const f = Deno.openSync(livePath(g), { read: true });
    try {
      assert.equal(f.tryLockSync(true), true);
    } finally {
      f.close();
    }
  }));

Deno.test("a live server keeps the places reserved through files until Create, and leaves only when none is left", () =>
  withState(async (state) => {
    const g = groupFiles(state, "/run/containerd/s/bbb");
    const lease = new GroupLease(g, 60_000);
    assert.equal(await lease.open(), true);
    assert.equal(lease.live, true);
    assert.equal(reserveByFile(g, "k8s.io", "web"), true);
    assert.equal(reserveByFile(g, "default", "a:b/c"), true); // escaped: no separator, no path
    assert.ok(exists(reservationPath(g, "k8s.io", "web")));

    // A Shutdown with no container: the files keep the server, and tell it who comes.
    let seen: { namespace: string; id: string; remainingMs: number }[] = [];
    assert.equal(await lease.settle((pending) => (seen = pending, seen.length === 0)), false);
    assert.deepEqual(seen.map((p) => `${p.namespace}/${p.id}`).sort(), ["default/a:b/c", "k8s.io/web"]);
    for (const p of seen) assert.ok(p.remainingMs > 0 && p.remainingMs <= 60_000, `${p.remainingMs}`);
    assert.equal(lease.live, true);

    // Create consumes them (or a Shutdown that names the id, with or without its namespace); then the server may go,
    // and its live file goes in the same step.
    lease.consume("k8s.io", "web");
    lease.consume(undefined, "a:b/c");
    assert.equal(exists(reservationPath(g, "default", "a:b/c")), false);
    assert.equal(await lease.settle((pending) => pending.length === 0), true);
    assert.equal(lease.live, false);
    assert.equal(exists(livePath(g)), false);
    assert.equal(reserveByFile(g, "k8s.io", "late"), false, "a start after the decision must not reserve");
  }));

Deno.test("expired reservation files do not keep a server, and are removed", () =>
  withState(async (state) => {
    const g = groupFiles(state, "/run/containerd/s/ccc");
    const lease = new GroupLease(g, 20);
    assert.equal(await lease.open(), true);
    assert.equal(reserveByFile(g, "default", "gone"), true);
    await new Promise((r) => setTimeout(r, 60));
    let seen = -1;
    assert.equal(await lease.settle((pending) => (seen = pending.length, true)), true);
    assert.equal(seen, 0);
    assert.equal(exists(reservationPath(g, "default", "gone")), false);
  }));

Deno.test("a new server replaces a dead one's live file; release leaves a server that held none alone", () =>
  withState(async (state) => {
    const g = groupFiles(state, "/run/containerd/s/ddd");
    Deno.mkdirSync(g.dir);
    Deno.writeFileSync(livePath(g), new Uint8Array()); // left by a server that died
    Deno.writeFileSync(reservationPath(g, "default", "x"), new Uint8Array());
    const lease = new GroupLease(g, 60_000);
    assert.equal(await lease.open(), true);
    assert.equal(reserveByFile(g, "default", "y"), true);

    // A second server of the group that could not take the file (or is leaving) touches nothing of the first's.
    const other = new GroupLease(g, 60_000);
    other.release();
    assert.equal(await other.open(), false, "a released lease takes no live file");
    assert.ok(exists(livePath(g)));
    assert.ok(exists(reservationPath(g, "default", "y")));

    // Released on a signal: the live file and the group's reservation files go.
    lease.release();
    assert.equal(exists(livePath(g)), false);
    assert.equal(exists(reservationPath(g, "default", "x")), false);
    assert.equal(exists(reservationPath(g, "default", "y")), false);
  }));
