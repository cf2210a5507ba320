/**
 * A small, made-up run for the report tests: fixed numbers, so every figure in the rendered report is known.
 *
 * @module
 */
import type { ShimBenchResults, SoakResults } from "./results.ts";
import { benchConfig } from "./config.ts";

const totals = (processes: number, pssMiB: number, ussMiB: number, privateDirtyMiB?: number) => ({
  processes,
  rssKiB: pssMiB * 2048,
  pssKiB: pssMiB * 1024,
  ussKiB: ussMiB * 1024,
  privateDirtyKiB: privateDirtyMiB === undefined ? undefined : privateDirtyMiB * 1024,
  threads: processes * 7,
});

/** A run where lifecycle and exec miss, `start` (server runs) and node-mode memory meet their targets. */
export function sampleResults(): ShimBenchResults {
  return {
    host: {
      date: "2026-01-02T03:04:05.000Z",
      kernel: "6.1.0",
      cpu: "Test CPU",
      cpus: 2,
      memoryGiB: 24,
      containerd: "1.6.20",
      runc: "1.1.5",
      goShim: "1.6.20 (go1.19.8)",
      denoShim: "0.1.0",
      deno: "2.9.6",
      build: "bundle, abc123, built 2026-01-02",
      labLogLevel: "info",
    },
    config: benchConfig({}),
    startedAt: "2026-01-02T03:04:05.000Z",
    finishedAt: "2026-01-02T03:20:00.000Z",
    load: [{ at: "2026-01-02T03:04:05.000Z", phase: "lifecycle", load: [1.5, 1.2, 1.0] }],
    lifecycle: { go: [60, 62, 64], deno: [120, 126, 130] },
    lifecycleNode: { go: [60, 62, 64], deno: [115, 116, 117] },
    floor: {
      emptyDeno: [28, 30, 32],
      goVersion: [4, 5, 6],
      listener: { rssKiB: 40960, pssKiB: 30720, ussKiB: 20480, privateDirtyKiB: 10240 },
      emptyCommand: "deno run --no-config empty.js",
    },
    rpc: {
      Create: { go: [10, 10, 10], deno: [10, 10.5, 11] },
      Start: { go: [5, 5, 5], deno: [8, 8, 8] },
    },
    start: {
      newServer: { go: [4, 5, 6], deno: [80, 90, 100] },
      firstRpc: { go: [6, 7, 8], deno: [81, 91, 101] },
      existing: { go: [4, 4, 4], deno: [10, 11, 12] },
      delete: { go: [10, 10, 10], deno: [32, 34, 36] },
    },
    exec: { go: [50, 50, 50], deno: [60, 60, 60] },
    throughput: [
      { path: "fifo", mib: 500, mibPerS: { go: [900, 1000, 1100], deno: [1000, 1100, 1200] } },
      {
        path: "file-devnull",
        mib: 500,
        mibPerS: { go: [2500], deno: [] },
        errors: { deno: "ctr: failed to create shim task: <denied>" },
      },
    ],
    memory: [
      { mode: "go", containers: 50, totals: totals(50, 150, 120, 100), denoSharers: 3 },
      { mode: "pod", containers: 50, totals: totals(50, 1000, 850, 800), denoSharers: 53 },
      { mode: "node", containers: 50, totals: totals(1, 20, 15), denoSharers: 3 },
      { mode: "node", containers: 100, totals: totals(1, 26, 20), denoSharers: 3 },
    ],
    idle: [
      { mode: "go", containers: 20, processes: 20, seconds: 60, cpuMs: 10, switchesPerS: 2, startedAfterS: 5 },
      { mode: "pod", containers: 20, processes: 20, seconds: 60, cpuMs: 50, switchesPerS: 60, startedAfterS: 5 },
      { mode: "go", containers: 20, processes: 20, seconds: 60, cpuMs: 8, switchesPerS: 2, startedAfterS: 65 },
      { mode: "pod", containers: 20, processes: 20, seconds: 60, cpuMs: 4, switchesPerS: 1, startedAfterS: 65 },
    ],
    warnings: ["something odd"],
  };
}

/** A full-length soak whose USS grew by 1 MiB. */
export function sampleSoak(execs = 100_000): SoakResults {
  return {
    date: "2026-01-02T04:00:00.000Z",
    execs,
    warmup: 2000,
    concurrency: 3,
    sides: [{
      side: "deno",
      seconds: 2000,
      failures: 0,
      points: [
        { execs: 2000, rssKiB: 60000, pssKiB: 30000, ussKiB: 20000, fds: 30 },
        { execs, rssKiB: 61024, pssKiB: 31024, ussKiB: 21024, fds: 30 },
      ],
    }],
    bareDenoSpawnGrowthKiB: 512,
    load: [1, 1, 1],
  };
}
