/**
 * Timed `ctr` invocations against the lab, with the runtime of one side, and the container ids the benchmark uses
 * (unique per run, so leftovers of an interrupted run never collide).
 *
 * @example
 * ```ts
 * import { useLab } from "../../tests/lab/mod.ts";
 * import { ctrTimed, runTag } from "./ctr.ts";
 * const lab = await useLab({ dir: "/tmp/benchlab" });
 * const r = await ctrTimed(lab, "bench", ["run", "--rm", lab.image, `x-${runTag()}`, "true"]);
 * console.log(r.ms);
 * ```
 * @module
 */
import type { Lab } from "../../tests/lab/mod.ts";
import { mustTime, type Side, SIDE_INFO, type Timed, type TimedOptions } from "./procs.ts";

/** The namespace of the latency and throughput phases (the memory phase uses one per configuration). */
export const BENCH_NS = "bench";

let tag: string | undefined;
/** A short tag unique to this process, for container ids. */
export function runTag(): string {
  return tag ??= Date.now().toString(36).slice(-5);
}

/** `ctr -a <lab> -n <ns> …args`, timed; a non-zero exit is an error. */
export function ctrTimed(lab: Lab, ns: string, args: string[], opts: TimedOptions = {}): Promise<Timed> {
  return mustTime("ctr", ["-a", lab.address, "-n", ns, ...args], opts);
}

/** `ctr run --rm --runtime <side> [extra] <image> <id> …cmd`, timed. */
export function runRm(lab: Lab, side: Side, id: string, cmd: string[], extra: string[] = [], opts: TimedOptions = {}) {
  return ctrTimed(
    lab,
    BENCH_NS,
    ["run", "--rm", "--runtime", SIDE_INFO[side].runtime, ...extra, lab.image, id, ...cmd],
    opts,
  );
}

/** Starts a detached `sleep` container of `side` in `ns`. */
export async function runSleeper(lab: Lab, side: Side, ns: string, id: string): Promise<void> {
  await ctrTimed(lab, ns, ["run", "-d", "--runtime", SIDE_INFO[side].runtime, lab.image, id, "sleep", "1000000"]);
}

/** SIGKILLs and removes the given containers of `ns` (task, then container). */
export async function removeContainers(lab: Lab, ns: string, ids: readonly string[]): Promise<void> {
  for (const id of ids) await lab.ctr(["tasks", "kill", "-s", "SIGKILL", id], { namespace: ns });
  for (const id of ids) {
    // The kill is asynchronous: retry the forced delete until the task is gone.
    for (let attempt = 0; attempt < 20; attempt++) {
      const r = await lab.ctr(["tasks", "rm", "-f", id], { namespace: ns });
      if (r.code === 0 || /not found/.test(r.stderr)) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    await lab.ctr(["containers", "rm", id], { namespace: ns });
  }
}
