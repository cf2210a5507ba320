/**
 * Exec latency: `ctr task exec --exec-id <x> <container> true` on a running `sleep` container of each shim,
 * interleaved. Each exec goes ctr → containerd → shim (Exec, Start, Wait, Delete RPCs) → `runc exec`.
 *
 * @module
 */
import type { Lab } from "../../tests/lab/mod.ts";
import { BENCH_NS, ctrTimed, removeContainers, runSleeper, runTag } from "./ctr.ts";
import type { Side } from "./procs.ts";
import type { AbSamples } from "./results.ts";
import { abOrder } from "./stats.ts";

const WARMUP = 3;

/** Runs `n` interleaved pairs of execs and returns their wall times in ms. */
export async function measureExec(lab: Lab, n: number, progress: (msg: string) => void): Promise<AbSamples> {
  const ids: Record<Side, string> = { go: `ex-go-${runTag()}`, deno: `ex-deno-${runTag()}` };
  const out: AbSamples = { go: [], deno: [] };
  try {
    for (const side of ["go", "deno"] as const) await runSleeper(lab, side, BENCH_NS, ids[side]);
    const exec = (side: Side, execId: string) =>
      ctrTimed(lab, BENCH_NS, ["task", "exec", "--exec-id", execId, ids[side], "true"]);
    for (let i = 0; i < WARMUP; i++) {
      for (const side of abOrder<Side>(i, "go", "deno")) await exec(side, `w${i}`);
    }
    for (let i = 0; i < n; i++) {
      for (const side of abOrder<Side>(i, "go", "deno")) out[side].push((await exec(side, `x${i}`)).ms);
      if ((i + 1) % 10 === 0) progress(`exec ${i + 1}/${n}`);
    }
  } finally {
    await removeContainers(lab, BENCH_NS, Object.values(ids));
  }
  return out;
}
