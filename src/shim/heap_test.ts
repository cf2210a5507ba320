import assert from "node:assert/strict";
import { HeapKeeper } from "./heap.ts";

Deno.test("HeapKeeper collects after every N releases", () => {
  let runs = 0;
  const k = new HeapKeeper({ every: 3, idleMs: 60_000, gc: () => runs++ });
  try {
    for (let i = 0; i < 7; i++) k.released();
    assert.equal(runs, 2);
    assert.equal(k.collections, 2);
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

Deno.test("the shim's V8 flags expose gc(), which the heap keeper needs", async () => {
  const { SHIM_V8_FLAGS } = await import("../permissions.ts");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", ...SHIM_V8_FLAGS, "console.log(typeof globalThis.gc)"],
    stdout: "piped",
  }).output();
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "function");
});
