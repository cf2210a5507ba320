import assert from "node:assert/strict";
import { HeapKeeper } from "./heap.ts";
import { turnEnded } from "../sys/immediate.ts";

/** Collections a release calls for, run at once instead of at the end of the turn. */
const now = (fn: () => void) => fn();

Deno.test("HeapKeeper collects after every N releases", () => {
  let runs = 0;
  const k = new HeapKeeper({ every: 3, idleMs: 60_000, gc: () => runs++, defer: now });
  try {
    for (let i = 0; i < 7; i++) k.released();
    assert.equal(runs, 2);
    assert.equal(k.collections, 2);
  } finally {
    k.close();
  }
});

Deno.test("HeapKeeper collects when RSS grew past the bound since the last collection, not per release", () => {
  let rss = 50 << 20, runs = 0;
  const k = new HeapKeeper({
    every: 1000,
    idleMs: 60_000,
    defer: now,
    growthBytes: 4 << 20,
    rss: () => rss,
    gc: () => {
      runs++;
      rss -= 2 << 20; // a collection frees half of what piled up
    },
  });
  try {
    for (let i = 0; i < 3; i++) {
      rss += 1 << 20;
      k.released();
    }
    assert.equal(runs, 0, "3 MiB of growth: below the bound");
    rss += 1 << 20;
    k.released();
    assert.equal(runs, 1, "4 MiB: collected");
    // What the collection could not free (52 MiB now) is the new baseline: no collection per release.
    for (let i = 0; i < 5; i++) k.released();
    assert.equal(runs, 1);
    rss += 4 << 20;
    k.released();
    assert.equal(runs, 2);
  } finally {
    k.close();
  }
});

Deno.test("HeapKeeper collects once when releases stop", async () => {
  let runs = 0;
  const k = new HeapKeeper({ every: 100, idleMs: 20, gc: () => runs++ });
  try {
    k.released();
    k.released();
    assert.equal(runs, 0);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(runs, 1, "one idle collection after the last release");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(runs, 1, "and no more while nothing is released");
  } finally {
    k.close();
  }
});

Deno.test("HeapKeeper collects once when calls stop and RSS grew (malloc arenas after runc create)", async () => {
  let rss = 40 << 20, runs = 0;
  const k = new HeapKeeper({
    idleMs: 30,
    collectAfterBoot: false,
    rss: () => rss,
    gc: () => {
      runs++;
      rss -= 1 << 20;
    },
  });
  try {
    rss += 2 << 20; // a Create and a Start: runc's spawns leave freed memory in the allocator
    for (let i = 0; i < 5; i++) {
      k.busy();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(runs, 0, "not while calls keep coming");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(runs, 1, "once when quiet");
  } finally {
    k.close();
  }
});

Deno.test("HeapKeeper does not collect a quiet server whose calls left nothing behind", async () => {
  let runs = 0;
  const k = new HeapKeeper({ idleMs: 20, rss: () => 40 << 20, gc: () => runs++, collectAfterBoot: false });
  try {
    for (let round = 0; round < 3; round++) {
      k.busy(); // a periodic State or Stats: no release, no growth
      await new Promise((r) => setTimeout(r, 60));
    }
    assert.equal(runs, 0);
  } finally {
    k.close();
  }
});

Deno.test("HeapKeeper collects once after boot, when the server is first quiet", async () => {
  let runs = 0;
  const k = new HeapKeeper({ idleMs: 20, rss: () => 40 << 20, gc: () => runs++ });
  try {
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(runs, 1);
    k.busy();
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(runs, 1, "a call that left nothing behind does not collect again");
  } finally {
    k.close();
  }
});

Deno.test("HeapKeeper does nothing without a collector", () => {
  const g = globalThis as { gc?: unknown };
  const saved = g.gc;
  delete g.gc;
  try {
    const k = new HeapKeeper({ every: 1 });
    k.released();
    k.collect();
    assert.equal(k.collections, 0);
  } finally {
    if (saved) g.gc = saved;
  }
});

Deno.test("the shim's V8 flags expose gc(), which the heap keeper needs, with its memory-reducing flavour", async () => {
  const { SHIM_V8_FLAGS } = await import("../permissions.ts");
  const script = 'gc({ type: "major", execution: "sync", flavor: "last-resort" }); console.log(typeof globalThis.gc)';
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", ...SHIM_V8_FLAGS, script],
    stdout: "piped",
  }).output();
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "function");
});

Deno.test("the shim's V8 flags keep hot code off the optimizing compilers (their memory was a node server's growth)", async () => {
  const { SHIM_V8_FLAGS } = await import("../permissions.ts");
  // A hot function, then V8's own word on its tier (natives syntax, parsed by V8 itself through `new Function`).
  const script = `
    function f(x) { return (x * 2 + 1) | 0; }
    let s = 0;
    const end = Date.now() + 300;
    while (Date.now() < end) for (let i = 0; i < 1000; i++) s += f(i);
    const tiers = new Function("f", "return [%IsMaglevEnabled(), %IsTurbofanEnabled(), %ActiveTierIsMaglev(f), %ActiveTierIsTurbofan(f)]");
    console.log(JSON.stringify({ hot: s > 0, tiers: tiers(f) }));`;
  const flags = SHIM_V8_FLAGS.map((f) => f.startsWith("--v8-flags=") ? `${f},--allow-natives-syntax` : f);
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", ...flags, script], stdout: "piped" }).output();
  assert.ok(out.success, "the probe ran");
  const { hot, tiers } = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.ok(hot);
  assert.deepEqual(tiers, [false, false, false, false], "[maglev on, turbofan on, f on maglev, f on turbofan]");
});

Deno.test("HeapKeeper prepares what gives memory back before a collection and runs it after", () => {
  const order: string[] = [];
  const k = new HeapKeeper({
    every: 1,
    idleMs: 60_000,
    defer: now,
    gc: () => order.push("gc"),
    giveBack: () => {
      order.push("prepare");
      return () => order.push("give back");
    },
  });
  try {
    k.released();
    assert.deepEqual(order, ["prepare", "gc", "give back"]);
  } finally {
    k.close();
  }
});

Deno.test("HeapKeeper runs the collection a release calls for after the turn, once, not inside the caller", async () => {
  const order: string[] = [];
  const k = new HeapKeeper({ every: 2, idleMs: 60_000, gc: () => order.push("gc") });
  try {
    k.released();
    k.released(); // the second release calls for a collection: the Delete's answer goes out first
    order.push("answer written");
    k.released(); // one more in the same turn does not queue a second collection
    await turnEnded();
    assert.deepEqual(order, ["answer written", "gc"]);
    assert.equal(k.collections, 1);
  } finally {
    k.close();
  }
});
