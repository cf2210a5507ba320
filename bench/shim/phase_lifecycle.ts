/**
 * Lifecycle latency: `ctr run --rm <busybox> <id> true` wall time through each shim, interleaved A/B/B/A on the same
 * containerd (host-lab.md §8.2 and §8.7). A few unrecorded warm-up runs per side come first.
 *
 * @module
 */
import type { Lab } from "../../tests/lab/mod.ts";
import { BENCH_NS, ctrTimed, removeContainers, runRm, runTag } from "./ctr.ts";
import { type Side, SIDE_INFO } from "./procs.ts";
import type { AbSamples } from "./results.ts";
import { abOrder } from "./stats.ts";

const WARMUP = 3;

/** Runs `n` interleaved pairs and returns the wall times in ms (ours with the shim's defaults: spares on). */
export function measureLifecycle(lab: Lab, n: number, progress: (msg: string) => void): Promise<AbSamples> {
  return lifecyclePairs(lab, n, [], "lifecycle", progress);
}

/**
 * The same with spares off for ours (`spareSeconds: 0` through `ctr run --runtime-config-path`): every pod boots a
 * server, as before spares (src/shim/spare.ts) and as for a pod that comes after a quiet spell. Informational.
 */
export async function measureLifecycleBoot(lab: Lab, n: number, progress: (msg: string) => void): Promise<AbSamples> {
  const config = `${lab.dir}/bench-no-spares.json`;
  await Deno.writeTextFile(config, JSON.stringify({ spareSeconds: 0 }));
  return await lifecyclePairs(lab, n, ["--runtime-config-path", config], "lifecycle (spares off)", progress);
}

async function lifecyclePairs(
  lab: Lab,
  n: number,
  ours: string[],
  label: string,
  progress: (msg: string) => void,
): Promise<AbSamples> {
  const extra: Record<Side, string[]> = { go: [], deno: ours };
  const out: AbSamples = { go: [], deno: [] };
  for (let i = 0; i < WARMUP; i++) {
    for (const side of abOrder<Side>(i, "go", "deno")) {
      await runRm(lab, side, `lw-${side}-${runTag()}-${i}`, ["true"], extra[side]);
    }
  }
  for (let i = 0; i < n; i++) {
    for (const side of abOrder<Side>(i, "go", "deno")) {
      out[side].push((await runRm(lab, side, `lc-${side}-${runTag()}-${i}`, ["true"], extra[side])).ms);
    }
    if ((i + 1) % 10 === 0) progress(`${label} ${i + 1}/${n}`);
  }
  return out;
}

/**
 * Lifecycle in node grouping, as on a real node: one `sleep` container per side is kept running so that the group's
 * server stays up (with no container left the node server exits, and every `ctr run --rm` would boot a new one). Ours
 * is put in node grouping through `ctr run --runtime-config-path` (CRI's runtime options), so no host-wide config
 * file is written; the Go shim has no grouping outside pods and runs as in {@linkcode measureLifecycle}.
 */
export async function measureLifecycleNode(
  lab: Lab,
  n: number,
  progress: (msg: string) => void,
): Promise<AbSamples> {
  const config = `${lab.dir}/bench-node-grouping.json`;
  await Deno.writeTextFile(config, JSON.stringify({ grouping: "node" }));
  const extra: Record<Side, string[]> = { go: [], deno: ["--runtime-config-path", config] };
  const anchors: Record<Side, string> = { go: `ln-anchor-go-${runTag()}`, deno: `ln-anchor-deno-${runTag()}` };
  const out: AbSamples = { go: [], deno: [] };
  try {
    for (const side of ["go", "deno"] as const) {
      await ctrTimed(lab, BENCH_NS, [
        "run",
        "-d",
        "--runtime",
        SIDE_INFO[side].runtime,
        ...extra[side],
        lab.image,
        anchors[side],
        "sleep",
        "1000000",
      ]);
    }
    for (let i = 0; i < WARMUP + n; i++) {
      for (const side of abOrder<Side>(i, "go", "deno")) {
        const r = await runRm(lab, side, `ln-${side}-${runTag()}-${i}`, ["true"], extra[side]);
        if (i >= WARMUP) out[side].push(r.ms);
      }
      if (i >= WARMUP && (i - WARMUP + 1) % 10 === 0) progress(`lifecycle (node grouping) ${i - WARMUP + 1}/${n}`);
    }
  } finally {
    await removeContainers(lab, BENCH_NS, Object.values(anchors));
  }
  return out;
}
