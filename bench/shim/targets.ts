/**
 * The project's performance targets (issue 6) and their evaluation against a run's results. A target that was not
 * measured in this run says so; it is never counted as met.
 *
 * | target | goal |
 * |---|---|
 * | lifecycle (`ctr run --rm … true`), ours / Go | ≤ 1.05 |
 * | `start` when the group's server already runs, ours / Go | ≤ 3.0 |
 * | exec latency, ours / Go | ≤ 1.10 |
 * | CRI create+start+stop+remove of a container in a running pod, ours / Go (issue 10; the 2.x figure counts) | ≤ 1.10 |
 * | PSS per container at 50 containers, node mode | ≤ 0.5 MiB |
 * | stdout throughput (FIFO path; file:// to /dev/null and to a tmpfs file), ours / Go | ≥ 1.0 |
 * | idle CPU with 20 containers (default grouping), ours / Go | ≤ 1.0 |
 * | memory growth over 100,000 execs (`bench:soak`, RSS of our server) | < 2 MiB |
 *
 * @module
 */
import type { MemoryPoint, ShimBenchResults, SoakResults, ThroughputPath } from "./results.ts";
import { ratio, summarize } from "./stats.ts";

/** Whether a target was reached. */
export type TargetStatus = "met" | "missed" | "not measured";

/** One evaluated target. */
export interface TargetRow {
  /** Stable key, for the chart. */
  key: string;
  name: string;
  /** The measured figure (a ratio, or MiB for absolute targets); null when not measured. */
  value: number | null;
  /** How the figure reads, e.g. "1.93×" or "0.41 MiB". */
  shown: string;
  goal: string;
  status: TargetStatus;
  /** True when the figure is a ratio ours / Go (the chart draws those on one axis). */
  isRatio: boolean;
  /** The limit, in the figure's unit, and which side of it is good. */
  limit: number;
  better: "lower" | "higher";
}

/** Soak length the growth target is defined for. */
export const SOAK_TARGET_EXECS = 100_000;

function check(value: number | null, limit: number, better: "lower" | "higher", strict = false): TargetStatus {
  if (value === null || !Number.isFinite(value)) return "not measured";
  if (better === "lower") return (strict ? value < limit : value <= limit) ? "met" : "missed";
  return value >= limit ? "met" : "missed";
}

function medianRatio(s: { go: number[]; deno: number[] } | undefined): number | null {
  if (!s || s.go.length === 0 || s.deno.length === 0) return null;
  return ratio(summarize(s.deno).median, summarize(s.go).median);
}

function ratioRow(
  key: string,
  name: string,
  value: number | null,
  limit: number,
  better: "lower" | "higher",
): TargetRow {
  return {
    key,
    name,
    value,
    shown: value === null ? "—" : `${value.toFixed(2)}×`,
    goal: `${better === "lower" ? "≤" : "≥"} ${limit.toFixed(2)}`,
    status: check(value, limit, better),
    isRatio: true,
    limit,
    better,
  };
}

/** PSS per container (MiB) of `mode` at `containers`, or null. */
export function pssPerContainer(memory: MemoryPoint[] | undefined, mode: string, containers: number): number | null {
  const p = memory?.find((m) => m.mode === mode && m.containers === containers);
  return p ? p.totals.pssKiB / containers / 1024 : null;
}

/**
 * The growth of our server's RSS over the soak, MiB, or null without a soak of our shim. RSS, not USS or PSS: those
 * move when other processes sharing the deno executable come and go, which says nothing about the server.
 */
export function soakGrowthMiB(soak: SoakResults | undefined): number | null {
  const ours = soak?.sides.find((s) => s.side === "deno");
  if (!ours || ours.points.length < 2) return null;
  return (ours.points.at(-1)!.rssKiB - ours.points[0].rssKiB) / 1024;
}

/** Evaluates every target. */
export function evaluateTargets(r: ShimBenchResults, soak?: SoakResults): TargetRow[] {
  const rows: TargetRow[] = [
    ratioRow("lifecycle", "lifecycle: ctr run --rm … true", medianRatio(r.lifecycle), 1.05, "lower"),
    ratioRow("start", "start, server already runs", medianRatio(r.start?.existing), 3.0, "lower"),
    ratioRow("exec", "exec latency (ctr task exec)", medianRatio(r.exec), 1.10, "lower"),
    ratioRow("cri", "CRI container create→remove in a running pod", medianRatio(r.cri), 1.10, "lower"),
  ];
  const tpNames: Record<ThroughputPath, string> = {
    fifo: "stdout throughput, FIFO → ctr",
    "file-devnull": "stdout throughput, file:///dev/null",
    "file-tmpfs": "stdout throughput, file:// on tmpfs",
  };
  for (const path of ["fifo", "file-devnull", "file-tmpfs"] as const) {
    const tp = r.throughput?.find((t) => t.path === path);
    const row = ratioRow(`throughput-${path}`, tpNames[path], medianRatio(tp?.mibPerS), 1.0, "higher");
    // A path our shim cannot serve at all misses the target; it is not merely unmeasured.
    if (tp?.errors?.deno) rows.push({ ...row, shown: "fails", status: "missed" });
    else rows.push(row);
  }
  const idleGo = r.idle?.find((i) => i.mode === "go");
  const idlePod = r.idle?.find((i) => i.mode === "pod");
  rows.push(ratioRow(
    "idle",
    `idle CPU, ${idlePod?.containers ?? 20} containers`,
    idleGo && idlePod ? ratio(idlePod.cpuMs, idleGo.cpuMs) : null,
    1.0,
    "lower",
  ));
  const pss = pssPerContainer(r.memory, "node", 50);
  rows.push({
    key: "pss-node-50",
    name: "PSS per container @50, node mode",
    value: pss,
    shown: pss === null ? "—" : `${pss.toFixed(2)} MiB`,
    goal: "≤ 0.50 MiB",
    status: check(pss, 0.5, "lower"),
    isRatio: false,
    limit: 0.5,
    better: "lower",
  });
  const growth = soakGrowthMiB(soak);
  const fullSoak = (soak?.execs ?? 0) >= SOAK_TARGET_EXECS;
  rows.push({
    key: "soak",
    name: `memory growth over ${(soak?.execs ?? SOAK_TARGET_EXECS).toLocaleString("en-US")} execs (RSS)`,
    value: growth,
    shown: growth === null ? "—" : `${growth.toFixed(2)} MiB`,
    goal: "< 2.00 MiB",
    status: fullSoak ? check(growth, 2, "lower", true) : "not measured",
    isRatio: false,
    limit: 2,
    better: "lower",
  });
  return rows;
}
