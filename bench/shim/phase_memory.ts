/**
 * Memory per container and idle CPU (host-lab.md §8.5), for three configurations: the Go shim, ours in its default
 * per-pod grouping (one server per container outside Kubernetes), and ours in node grouping (one server for all).
 *
 * Detached `sleep` containers are started one by one up to the largest step; at each step (1, 20, 50, 100 by
 * default), after a settle time, the memory of every shim process of the configuration is summed from
 * `smaps_rollup` (PSS, and USS = Private_Clean + Private_Dirty, which does not depend on who else maps the same
 * files) and divided by the number of containers. At the idle step the CPU time and context switches of all shim
 * threads are sampled over a quiet interval.
 *
 * The Go shim and per-pod mode ramp together, their starts interleaved, so their idle samples share one time window;
 * they share no executable pages (only libc), so neither moves the other's PSS. Node mode ramps alone afterwards:
 * per-pod servers would share the deno executable's pages with the node server and make its PSS look smaller.
 * Node mode is selected by writing the shim's config file only while node-mode containers are being started.
 *
 * It also reads what issue 11's memory and idle targets are stated in ({@link MemoryFigures}): the private dirty memory
 * of a per-pod server against an idle Deno unix-socket listener's (the floor, measured here with the same executable
 * and flags: `idle_listener.ts`), node grouping's marginal cost per container between the two largest steps (50 → 100
 * by default) and its PSS per container at 50, and ours / Go idle CPU in each idle window.
 *
 * @module
 */
import type { Lab } from "../../tests/lab/mod.ts";
import { waitFor } from "../../tests/lab/proc.ts";
import type { BenchConfig } from "./config.ts";
import { runSleeper, runTag } from "./ctr.ts";
import { memoryTotals, processesSharingExe, shimProcesses, type Side } from "./procs.ts";
import type { IdleReading, MemoryMode, MemoryPoint } from "./results.ts";
import { withShimConfig } from "./shim_config.ts";
import {
  measureIdleListener,
  privateDirtyTotal,
  type RollupKiB,
  type ThreadCpu,
  threadCpu,
  threadCpuDelta,
} from "./idle_listener.ts";

/** The side and namespace of each configuration. */
const MODES: Record<MemoryMode, { side: Side; ns: string }> = {
  go: { side: "go", ns: "bench-mem-go" },
  pod: { side: "deno", ns: "bench-mem-pod" },
  node: { side: "deno", ns: "bench-mem-node" },
};

/** Private dirty memory of one configuration's shim processes at a step. */
export interface PrivateDirtyPoint {
  mode: MemoryMode;
  containers: number;
  processes: number;
  kiB: number;
}

/** What the memory phase hands back. */
export interface MemoryResults {
  memory: MemoryPoint[];
  idle: IdleReading[];
  /** Private dirty memory per configuration and step (not in `MemoryPoint`'s totals). */
  privateDirty: PrivateDirtyPoint[];
  /** The idle Deno unix-socket listener (the floor), when it could be measured. */
  listener?: RollupKiB;
}

/** Issue 11's memory and idle figures, derived from {@link MemoryResults}; null where a reading is missing. */
export interface MemoryFigures {
  /** Mean private dirty KiB of a per-pod server (at the largest step), and the listener's. */
  podPrivateDirtyKiB: number | null;
  listenerPrivateDirtyKiB: number | null;
  /** Per-pod server private dirty / idle listener private dirty (goal ≤ 1.2). */
  podVsListener: number | null;
  /** The two node-grouping steps the slope is taken between (50 and 100 by default). */
  slopeFrom: number | null;
  slopeTo: number | null;
  /** KiB per further container between those steps, by PSS and by USS (goal ≤ 100). */
  nodeSlopePssKiB: number | null;
  nodeSlopeUssKiB: number | null;
  /** PSS per container at 50 in node grouping, MiB (goal ≤ 0.6). */
  nodePssPerContainerAt50MiB: number | null;
  /** Ours (per pod) / Go idle CPU in each window, by its start (s after the last container start). */
  idleRatios: { startedAfterS: number; ratio: number | null }[];
}

/** Computes {@link MemoryFigures}. */
export function memoryFigures(r: MemoryResults): MemoryFigures {
  const pod = r.privateDirty.filter((p) => p.mode === "pod" && p.processes > 0).sort((a, b) =>
    a.containers - b.containers
  ).at(-1);
  const podPd = pod ? pod.kiB / pod.processes : null;
  const lis = r.listener?.privateDirtyKiB ?? null;
  const node = r.memory.filter((p) => p.mode === "node").sort((a, b) => a.containers - b.containers);
  const [from, to] = node.length >= 2 ? node.slice(-2) : [undefined, undefined];
  const slope = (k: "pssKiB" | "ussKiB") =>
    from && to ? (to.totals[k] - from.totals[k]) / (to.containers - from.containers) : null;
  const at50 = node.find((p) => p.containers === 50);
  const windows = [...new Set(r.idle.map((i) => i.startedAfterS ?? 0))].sort((a, b) => a - b);
  return {
    podPrivateDirtyKiB: podPd,
    listenerPrivateDirtyKiB: lis,
    podVsListener: podPd !== null && lis ? podPd / lis : null,
    slopeFrom: from?.containers ?? null,
    slopeTo: to?.containers ?? null,
    nodeSlopePssKiB: slope("pssKiB"),
    nodeSlopeUssKiB: slope("ussKiB"),
    nodePssPerContainerAt50MiB: at50 ? at50.totals.pssKiB / 50 / 1024 : null,
    idleRatios: windows.map((w) => {
      const go = r.idle.find((i) => i.mode === "go" && (i.startedAfterS ?? 0) === w);
      const ours = r.idle.find((i) => i.mode === "pod" && (i.startedAfterS ?? 0) === w);
      return { startedAfterS: w, ratio: go && ours && go.cpuMs > 0 ? ours.cpuMs / go.cpuMs : null };
    }),
  };
}

/** One line per figure, for the run's progress output. */
export function describeFigures(f: MemoryFigures): string[] {
  const n = (v: number | null, d = 2) => v === null ? "—" : v.toFixed(d);
  return [
    `per-pod server private dirty ${n(f.podPrivateDirtyKiB, 0)} KiB vs idle deno listener ` +
    `${n(f.listenerPrivateDirtyKiB, 0)} KiB: ${n(f.podVsListener)}× (goal ≤ 1.20)`,
    `node grouping, one more container (${f.slopeFrom ?? "—"} → ${f.slopeTo ?? "—"}): ` +
    `${n(f.nodeSlopePssKiB, 0)} KiB PSS, ${n(f.nodeSlopeUssKiB, 0)} KiB USS (goal ≤ 100 KiB)`,
    `node grouping PSS per container @50: ${n(f.nodePssPerContainerAt50MiB)} MiB (goal ≤ 0.60)`,
    `idle CPU ours / Go per window: ${
      f.idleRatios.map((w) => `from +${w.startedAfterS} s ${n(w.ratio)}×`).join(", ") || "—"
    } (goal ≤ 1.00 in every window)`,
  ];
}

interface Hooks {
  progress(msg: string): void;
  warn(msg: string): void;
}

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

async function pidsOf(lab: Lab, mode: MemoryMode): Promise<number[]> {
  return (await shimProcesses(lab, MODES[mode].side)).map((p) => p.pid);
}

/** Samples the idle cost of every listed configuration over the same `seconds`. */
async function sampleIdle(
  lab: Lab,
  modes: MemoryMode[],
  containers: number,
  seconds: number,
  startedAfterS: number,
): Promise<IdleReading[]> {
  const pids = new Map<MemoryMode, number[]>();
  for (const m of modes) pids.set(m, await pidsOf(lab, m));
  const sample = async (list: number[]) => {
    const out = new Map<number, ThreadCpu>();
    for (const pid of list) {
      const t = await threadCpu(pid);
      if (t) out.set(pid, t);
    }
    return out;
  };
  const before = new Map<MemoryMode, Map<number, ThreadCpu>>();
  for (const m of modes) before.set(m, await sample(pids.get(m)!));
  await sleep(seconds);
  const out: IdleReading[] = [];
  for (const m of modes) {
    const after = await sample(pids.get(m)!);
    let cpuNs = 0, switches = 0;
    for (const [pid, b] of before.get(m)!) {
      const a = after.get(pid);
      if (!a) continue; // exited during the interval: nothing to compare
      const d = threadCpuDelta(b, a);
      cpuNs += d.cpuNs;
      switches += d.switches;
    }
    out.push({
      mode: m,
      containers,
      processes: after.size,
      seconds,
      cpuMs: cpuNs / 1e6,
      switchesPerS: switches / seconds,
      startedAfterS,
    });
  }
  return out;
}

/** Ramps the listed configurations together (starts interleaved), reading memory at each step. */
async function ramp(lab: Lab, cfg: BenchConfig, modes: MemoryMode[], hooks: Hooks): Promise<MemoryResults> {
  const res: MemoryResults = { memory: [], idle: [], privateDirty: [] };
  let running = 0;
  for (const step of cfg.memorySteps) {
    while (running < step) {
      const order = running % 2 === 0 ? modes : [...modes].reverse();
      for (const m of order) {
        const id = `mem-${m}-${runTag()}-${running}`;
        const start = () => runSleeper(lab, MODES[m].side, MODES[m].ns, id);
        if (m === "node") await withShimConfig({ grouping: "node" }, lab.dir, start);
        else await start();
      }
      running++;
    }
    await sleep(cfg.memorySettleSeconds);
    const ours = (await Promise.all(modes.filter((m) => m !== "go").map((m) => pidsOf(lab, m)))).flat();
    // Whatever executable our servers run (the deno runtime): every process running it shares its pages.
    const sharers = ours.length ? await processesSharingExe(`/proc/${ours[0]}/exe`) : 0;
    for (const m of modes) {
      const pids = await pidsOf(lab, m);
      const totals = await memoryTotals(pids);
      if (totals.processes === 0) throw new Error(`no ${m} shim process found with ${step} containers running`);
      res.memory.push({ mode: m, containers: step, totals, denoSharers: sharers });
      res.privateDirty.push({ mode: m, containers: step, ...await privateDirtyTotal(pids) });
      const perC = (kib: number) => (kib / step / 1024).toFixed(2);
      hooks.progress(
        `memory ${m} @${step}: ${totals.processes} processes, PSS/container ${perC(totals.pssKiB)} MiB, ` +
          `USS/container ${perC(totals.ussKiB)} MiB`,
      );
    }
    if (step === cfg.idleAt) {
      // The target's window, then (informational) the next one: a Deno server does a one-off ~30 ms of work about
      // 30 s after it starts (bench/analysis.md), which the first window catches for most servers.
      res.idle.push(...await sampleIdle(lab, modes, step, cfg.idleSeconds, cfg.memorySettleSeconds));
      res.idle.push(
        ...await sampleIdle(lab, modes, step, cfg.idleSeconds, cfg.memorySettleSeconds + cfg.idleSeconds),
      );
      hooks.progress(
        `idle @${step}: ${res.idle.slice(-modes.length).map((r) => `${r.mode} ${r.cpuMs.toFixed(1)} ms`).join(", ")}`,
      );
    }
  }
  return res;
}

/**
 * The idle listener, run by the executable our servers run (read from a live server, so it is the one measured) while
 * the per-pod containers still run, settled as long as the servers were.
 */
async function listenerFloor(lab: Lab, cfg: BenchConfig, hooks: Hooks): Promise<RollupKiB | undefined> {
  const ours = await pidsOf(lab, "pod");
  try {
    const deno = ours.length ? await Deno.realPath(`/proc/${ours[0]}/exe`) : Deno.execPath();
    const m = await measureIdleListener(deno, cfg.memorySettleSeconds);
    hooks.progress(`idle deno listener: ${m.privateDirtyKiB} KiB private dirty, ${m.pssKiB} KiB PSS`);
    return m;
  } catch (err) {
    hooks.warn(`idle listener not measured: ${(err as Error).message}`);
    return undefined;
  }
}

/** Removes every container of the configurations and waits until their shim processes are gone. */
async function teardown(lab: Lab, modes: MemoryMode[], hooks: Hooks): Promise<void> {
  for (const m of modes) await lab.cleanupNamespace(MODES[m].ns);
  const sides = [...new Set(modes.map((m) => MODES[m].side))];
  const gone = await waitFor(
    async () => {
      for (const s of sides) if ((await shimProcesses(lab, s)).length > 0) return false;
      return true;
    },
    30_000,
    200,
  );
  if (!gone) {
    const left = (await Promise.all(sides.map((s) => shimProcesses(lab, s)))).flat().map((p) => p.pid);
    hooks.warn(`shim processes still running 30 s after their containers were removed: ${left.join(", ")}`);
  }
}

/** Both ramps; each is torn down before the next starts and on failure. */
export async function measureMemory(lab: Lab, cfg: BenchConfig, hooks: Hooks): Promise<MemoryResults> {
  const out: MemoryResults = { memory: [], idle: [], privateDirty: [] };
  for (const modes of [["go", "pod"], ["node"]] as MemoryMode[][]) {
    await teardown(lab, modes, hooks); // leftovers of an interrupted run
    try {
      const r = await ramp(lab, cfg, modes, hooks);
      out.memory.push(...r.memory);
      out.idle.push(...r.idle);
      out.privateDirty.push(...r.privateDirty);
      if (modes.includes("pod") && !out.listener) out.listener = await listenerFloor(lab, cfg, hooks);
    } finally {
      await teardown(lab, modes, hooks);
    }
  }
  for (const line of describeFigures(memoryFigures(out))) hooks.progress(line);
  return out;
}
