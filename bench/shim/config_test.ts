import assert from "node:assert/strict";
import { benchConfig, PHASES } from "./config.ts";

Deno.test("benchConfig: defaults are the full run", () => {
  const c = benchConfig({});
  assert.equal(c.n, 30);
  assert.equal(c.throughputMiB, 500);
  assert.deepEqual(c.memorySteps, [1, 20, 50, 100]);
  assert.equal(c.idleAt, 20);
  assert.equal(c.idleSeconds, 60);
  assert.deepEqual(c.phases, [...PHASES]);
  assert.equal(c.containerd, "1.6");
  assert.equal(c.labDir, "/tmp/benchlab");
  assert.equal(c.out, "docs/benchmarks.md");
});

Deno.test("benchConfig: overrides, phases in run order, steps sorted", () => {
  const c = benchConfig({ BENCH_N: "5", BENCH_PHASES: "memory,lifecycle", BENCH_MEM_STEPS: "5,1", BENCH_IDLE_AT: "5" });
  assert.equal(c.n, 5);
  assert.deepEqual(c.phases, ["lifecycle", "memory"]);
  assert.deepEqual(c.memorySteps, [1, 5]);
});

Deno.test("benchConfig: the containerd series, with its own lab directory", () => {
  assert.equal(benchConfig({ SHIM_LAB_CONTAINERD: "2" }).containerd, "2");
  const c = benchConfig({ BENCH_CONTAINERD: "2", SHIM_LAB_CONTAINERD: "1.6" });
  assert.equal(c.containerd, "2");
  assert.equal(c.labDir, "/tmp/benchlab-2");
  assert.throws(() => benchConfig({ BENCH_CONTAINERD: "3" }), /SHIM_LAB_CONTAINERD must be/);
});

Deno.test("benchConfig: malformed values are errors naming the variable", () => {
  assert.throws(() => benchConfig({ BENCH_N: "0" }), /BENCH_N/);
  assert.throws(() => benchConfig({ BENCH_PHASES: "warp" }), /unknown phase warp/);
  assert.throws(() => benchConfig({ BENCH_MEM_STEPS: "1,x" }), /BENCH_MEM_STEPS/);
  assert.throws(() => benchConfig({ BENCH_IDLE_AT: "7" }), /BENCH_IDLE_AT=7/);
});
