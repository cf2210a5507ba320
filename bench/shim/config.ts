import { type LabSeries, parseSeries } from "../../tests/lab/containerd.ts";

/**
 * What one benchmark run does, from the environment. Every knob has a default that gives the full run described in
 * docs/benchmarks.md (about 15 minutes on a 2-vCPU host); lower them for a quick look.
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `BENCH_N` | 30 | samples per shim for the floor, lifecycle, `start`, RPC and exec latency |
 * | `BENCH_TP_MIB` | 500 | MiB written to stdout per throughput run |
 * | `BENCH_TP_RUNS` | 5 | throughput runs per shim and path |
 * | `BENCH_IDLE_S` | 60 | seconds of idle CPU sampling |
 * | `BENCH_MEM_STEPS` | 1,20,50,100 | container counts at which memory is measured |
 * | `BENCH_MEM_SETTLE_S` | 5 | seconds between the last start and a memory reading |
 * | `BENCH_IDLE_AT` | 20 | container count at which idle CPU is sampled (must be one of the steps) |
 * | `BENCH_PHASES` | all | comma list of floor, lifecycle, lifecycle-boot, lifecycle-node, start, rpc, exec, cri, throughput, memory |
 * | `BENCH_CONTAINERD` | `$SHIM_LAB_CONTAINERD`, else 1.6 | which containerd: 1.6 (the system's), 2 (Debian sid's), 1.7 |
 * | `BENCH_LAB_DIR` | /tmp/benchlab (-2, -1.7) | the private containerd's directory (never the repo's `.lab`) |
 * | `BENCH_KEEP_LAB` | unset | `1` leaves the lab running afterwards |
 * | `BENCH_OUT` | docs/benchmarks.md | where the report goes (the SVG and JSON go next to it / to bench/results) |
 *
 * @example
 * ```ts
 * import { benchConfig } from "./config.ts";
 * const c = benchConfig({ BENCH_N: "5", BENCH_PHASES: "lifecycle" });
 * console.log(c.n, c.phases); // 5 ["lifecycle"]
 * ```
 * @module
 */

/** The measurement phases, in the order a full run executes them. */
export const PHASES = [
  "floor",
  "lifecycle",
  "lifecycle-boot",
  "lifecycle-node",
  "start",
  "rpc",
  "exec",
  "cri",
  "cri-2x",
  "throughput",
  "memory",
] as const;
/** One measurement phase. */
export type Phase = typeof PHASES[number];

/** Settings of one run. */
export interface BenchConfig {
  n: number;
  throughputMiB: number;
  throughputRuns: number;
  idleSeconds: number;
  memorySteps: number[];
  memorySettleSeconds: number;
  idleAt: number;
  phases: Phase[];
  /** Which containerd the lab runs (tests/lab/containerd.ts). */
  containerd: LabSeries;
  labDir: string;
  keepLab: boolean;
  out: string;
}

function positiveInt(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  return v;
}

/** Reads the settings from `env` (default: the process environment); throws on a malformed value. */
export function benchConfig(env: Record<string, string | undefined> = Deno.env.toObject()): BenchConfig {
  const steps = (env.BENCH_MEM_STEPS || "1,20,50,100").split(",").map((s) => Number(s.trim()));
  if (steps.some((s) => !Number.isInteger(s) || s <= 0)) {
    throw new Error(`BENCH_MEM_STEPS must list positive integers, not ${JSON.stringify(env.BENCH_MEM_STEPS)}`);
  }
  const memorySteps = [...new Set(steps)].sort((a, b) => a - b);
  const idleAt = positiveInt(env, "BENCH_IDLE_AT", Math.min(20, memorySteps.at(-1)!));
  if (!memorySteps.includes(idleAt)) throw new Error(`BENCH_IDLE_AT=${idleAt} is not one of BENCH_MEM_STEPS`);
  const phases = env.BENCH_PHASES ? env.BENCH_PHASES.split(",").map((p) => p.trim()) : [...PHASES];
  for (const p of phases) {
    if (!(PHASES as readonly string[]).includes(p)) throw new Error(`unknown phase ${p}; known: ${PHASES.join(", ")}`);
  }
  const series = parseSeries(env.BENCH_CONTAINERD || env.SHIM_LAB_CONTAINERD || "1.6");
  return {
    n: positiveInt(env, "BENCH_N", 30),
    throughputMiB: positiveInt(env, "BENCH_TP_MIB", 500),
    throughputRuns: positiveInt(env, "BENCH_TP_RUNS", 5),
    idleSeconds: positiveInt(env, "BENCH_IDLE_S", 60),
    memorySteps,
    memorySettleSeconds: positiveInt(env, "BENCH_MEM_SETTLE_S", 5),
    idleAt,
    phases: PHASES.filter((p) => phases.includes(p)),
    containerd: series,
    labDir: env.BENCH_LAB_DIR || (series === "1.6" ? "/tmp/benchlab" : `/tmp/benchlab-${series}`),
    keepLab: env.BENCH_KEEP_LAB === "1",
    out: env.BENCH_OUT || "docs/benchmarks.md",
  };
}
