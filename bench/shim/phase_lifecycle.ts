/**
 * Lifecycle latency: `ctr run --rm <busybox> <id> true` wall time through each shim, interleaved A/B/B/A on the same
 * containerd (host-lab.md §8.2 and §8.7). A few unrecorded warm-up runs per side come first.
 *
 * @module
 */
import type { Lab } from "../../tests/lab/mod.ts";
import { runRm, runTag } from "./ctr.ts";
import type { Side } from "./procs.ts";
import type { AbSamples } from "./results.ts";
import { abOrder } from "./stats.ts";

const WARMUP = 3;

/** Runs `n` interleaved pairs and returns the wall times in ms. */
export async function measureLifecycle(lab: Lab, n: number, progress: (msg: string) => void): Promise<AbSamples> {
  const out: AbSamples = { go: [], deno: [] };
  for (let i = 0; i < WARMUP; i++) {
    for (const side of abOrder<Side>(i, "go", "deno")) await runRm(lab, side, `lw-${side}-${runTag()}-${i}`, ["true"]);
  }
  for (let i = 0; i < n; i++) {
    for (const side of abOrder<Side>(i, "go", "deno")) {
      out[side].push((await runRm(lab, side, `lc-${side}-${runTag()}-${i}`, ["true"])).ms);
    }
    if ((i + 1) % 10 === 0) progress(`lifecycle ${i + 1}/${n}`);
  }
  return out;
}
