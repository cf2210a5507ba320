/**
 * `deno task bench:shim`: containerd-shim-deno-v2 against containerd-shim-runc-v2, side by side on one private
 * containerd, interleaved A/B/B/A in one run. Measures lifecycle, the `start` subcommand, exec latency, stdout
 * throughput, memory per container (Go, ours per pod, ours per node) and idle CPU, each Task RPC straight over ttrpc, and
 * the runtime's floor (an empty `deno run` with the shim's flags, the Go shim's `-v`, an idle Deno listener's memory); writes the raw results to
 * `bench/results/shim.json`, the report to `docs/benchmarks.md` with its chart `docs/benchmarks.svg` (including the
 * last `bench:soak` result from `bench/results/soak.json`), and prints the tables.
 *
 * Needs root, a built shim (`deno task build`), containerd, runc and busybox-static. Settings: see config.ts.
 * `--containerd 1.6|2|1.7` (or `BENCH_CONTAINERD`, else `SHIM_LAB_CONTAINERD`) picks the containerd the lab runs;
 * the report names it. `--render [results.json]` re-renders the report from saved results (default `bench/results/shim.json`) without
 * measuring.
 *
 * @example
 * ```sh
 * deno task build && deno task bench:shim
 * BENCH_N=5 BENCH_TP_MIB=50 BENCH_IDLE_S=5 BENCH_MEM_STEPS=1,5 BENCH_IDLE_AT=5 BENCH_OUT=/tmp/b.md deno task bench:shim
 * BENCH_N=3 BENCH_PHASES=lifecycle BENCH_OUT=/tmp/b2.md deno task bench:shim --containerd 2
 * deno task bench:shim --render
 * ```
 * @module
 */
import { dirname, join, relative, resolve } from "node:path";
import { describeContainerd, repoRoot, stopLab, useLab } from "../../tests/lab/mod.ts";
import { type BenchConfig, benchConfig } from "./config.ts";
import { BENCH_NS } from "./ctr.ts";
import { hostInfo, loadSample } from "./host.ts";
import { measureCri } from "./phase_cri.ts";
import { measureExec } from "./phase_exec.ts";
import { measureFloor } from "./phase_floor.ts";
import { measureLifecycle, measureLifecycleBoot, measureLifecycleNode } from "./phase_lifecycle.ts";
import { measureMemory } from "./phase_memory.ts";
import { measureRpc } from "./phase_rpc.ts";
import { measureStart } from "./phase_start.ts";
import { measureThroughput } from "./phase_throughput.ts";
import { shimProcesses } from "./procs.ts";
import { containerdLabel, readmeSummary, renderReport, terminalTable, withReadmeSummary } from "./report.ts";
import type { ShimBenchResults, SoakResults } from "./results.ts";
import { repairShimConfig } from "./shim_config.ts";
import { renderChart } from "./svg.ts";
import { evaluateTargets } from "./targets.ts";

/** Where the raw results of the last runs live. */
export const RESULTS_DIR = join(repoRoot, "bench/results");
/** Hand-written notes (profiling evidence) appended to the report when present. */
export const ANALYSIS_FILE = join(repoRoot, "bench/analysis.md");

function progress(msg: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/**
 * Runs `deno fmt` on files this benchmark wrote, with the repository's settings, so that the tree's `deno fmt --check`
 * stays clean (it formats markdown, JSON and SVG too).
 */
export async function formatFiles(paths: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", ...paths], cwd: repoRoot }).output();
  if (!out.success) throw new Error(`deno fmt ${paths.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
}

/** Writes the report and its chart for `results` (and the saved soak, if any); returns the report's path. */
export async function writeReport(results: ShimBenchResults, out = results.config.out): Promise<string> {
  const soak = await readJson<SoakResults>(join(RESULTS_DIR, "soak.json"));
  const analysis = await Deno.readTextFile(ANALYSIS_FILE).catch(() => undefined);
  const md = resolve(repoRoot, out);
  const svg = md.replace(/\.md$/, "") + ".svg";
  await Deno.mkdir(dirname(md), { recursive: true });
  const subtitle =
    `containerd-shim-deno-v2 vs containerd-shim-runc-v2 on ${containerdLabel(results.host.containerd)} — ` +
    `${results.host.date.slice(0, 10)}, ` +
    `${results.host.cpus} vCPU, load ${results.load[0]?.load[0].toFixed(2) ?? "?"}`;
  await Deno.writeTextFile(svg, renderChart(evaluateTargets(results, soak), results.memory ?? [], subtitle));
  await Deno.writeTextFile(md, renderReport(results, soak, relative(dirname(md), svg), analysis));
  // The README carries the same chart and targets table, with the date and machine (only for the default report).
  const readme = join(repoRoot, "README.md");
  const touched = [md, svg];
  if (md === resolve(repoRoot, "docs/benchmarks.md")) {
    const text = await Deno.readTextFile(readme);
    const next = withReadmeSummary(text, readmeSummary(results, soak, relative(repoRoot, svg)));
    if (next !== text) {
      await Deno.writeTextFile(readme, next);
      touched.push(readme);
    }
  }
  await formatFiles(touched);
  return md;
}

async function measure(cfg: BenchConfig): Promise<ShimBenchResults> {
  if (await repairShimConfig(cfg.labDir)) progress("restored the shim config file left by an interrupted run");
  const lab = await useLab({ dir: cfg.labDir, containerd: cfg.containerd });
  progress(`lab: ${describeContainerd(lab.containerd)} at ${lab.dir}`);
  await lab.ensureImage(BENCH_NS);
  for (const ns of ["bench-mem-go", "bench-mem-pod", "bench-mem-node"]) await lab.ensureImage(ns);
  await lab.cleanupNamespace(BENCH_NS);
  const results: ShimBenchResults = {
    host: await hostInfo(lab),
    config: cfg,
    startedAt: new Date().toISOString(),
    finishedAt: "",
    load: [],
    warnings: [],
  };
  const warn = (msg: string) => {
    results.warnings.push(msg);
    progress(`warning: ${msg}`);
  };
  const leftovers = await shimProcesses(lab, "deno");
  if (leftovers.length) warn(`${leftovers.length} of our shim processes were running in the lab before the run`);
  try {
    for (const phase of cfg.phases) {
      results.load.push(loadSample(phase));
      progress(`${phase} (load ${results.load.at(-1)!.load.map((x) => x.toFixed(2)).join(" ")})`);
      try {
        await runPhase(phase);
      } catch (e) {
        // One broken phase should not cost the others' figures: record it and go on.
        warn(`${phase} failed: ${e instanceof Error ? e.stack ?? e.message : e}`);
      }
    }
    results.load.push(loadSample("end"));
    const buildAtEnd = (await hostInfo(lab)).build;
    if (buildAtEnd !== results.host.build) warn(`dist/ was rebuilt during the run: ${buildAtEnd}`);
  } finally {
    results.finishedAt = new Date().toISOString();
    await lab.cleanupNamespace(BENCH_NS).catch((e) => warn(`cleanup: ${e}`));
    if (!cfg.keepLab) await stopLab({ dir: cfg.labDir, containerd: cfg.containerd });
  }
  return results;

  async function runPhase(phase: BenchConfig["phases"][number]): Promise<void> {
    switch (phase) {
      case "floor":
        results.floor = await measureFloor(lab, cfg.n, cfg.memorySettleSeconds, progress);
        break;
      case "lifecycle":
        results.lifecycle = await measureLifecycle(lab, cfg.n, progress);
        break;
      case "lifecycle-boot":
        results.lifecycleBoot = await measureLifecycleBoot(lab, cfg.n, progress);
        break;
      case "lifecycle-node":
        results.lifecycleNode = await measureLifecycleNode(lab, cfg.n, progress);
        break;
      case "start":
        results.start = await measureStart(lab, cfg.n, progress, warn);
        break;
      case "rpc":
        results.rpc = await measureRpc(lab, cfg.n, progress, warn);
        break;
      case "exec":
        results.exec = await measureExec(lab, cfg.n, progress);
        break;
      case "cri":
        results.cri = await measureCri(lab, cfg.n, progress);
        break;
      case "cri-2x": {
        // The CRI target is judged on containerd 2.x: a run on another series brings up a 2.x lab beside its own.
        const own = cfg.containerd === "2";
        const dir = own ? cfg.labDir : `${cfg.labDir}-cri-2x`;
        const lab2 = own ? lab : await useLab({ dir, containerd: "2" });
        try {
          const samples = await measureCri(lab2, cfg.n, progress);
          results.cri2x = { ...samples, containerd: describeContainerd(lab2.containerd) };
        } finally {
          if (!own) await stopLab({ dir, containerd: "2" });
        }
        break;
      }
      case "throughput":
        results.throughput = await measureThroughput(lab, cfg.throughputMiB, cfg.throughputRuns, progress);
        break;
      case "memory": {
        const m = await measureMemory(lab, cfg, { progress, warn });
        results.memory = m.memory;
        results.idle = m.idle;
        break;
      }
    }
  }
}

if (import.meta.main) {
  let results: ShimBenchResults;
  const render = Deno.args.indexOf("--render");
  if (render >= 0) {
    const source = Deno.args[render + 1] ?? join(RESULTS_DIR, "shim.json");
    const saved = await readJson<ShimBenchResults>(source);
    if (!saved) throw new Error(`no saved results in ${source}; run the benchmark first`);
    results = saved;
    const out = Deno.env.get("BENCH_OUT");
    if (out) results.config.out = out;
  } else {
    // `--containerd 2` is the same as BENCH_CONTAINERD=2.
    const flag = Deno.args.indexOf("--containerd");
    const env = Deno.env.toObject();
    if (flag >= 0) {
      if (!Deno.args[flag + 1]) throw new Error("--containerd needs a series: 1.6, 2 or 1.7");
      env.BENCH_CONTAINERD = Deno.args[flag + 1];
    }
    results = await measure(benchConfig(env));
    // A partial (dev) run writing elsewhere must not replace the committed full results.
    const json = results.config.out === "docs/benchmarks.md"
      ? join(RESULTS_DIR, "shim.json")
      : resolve(repoRoot, results.config.out).replace(/\.md$/, "") + ".json";
    await Deno.mkdir(dirname(json), { recursive: true });
    await Deno.writeTextFile(json, JSON.stringify(results, null, 2) + "\n");
    await formatFiles([json]);
  }
  const soak = await readJson<SoakResults>(join(RESULTS_DIR, "soak.json"));
  const md = await writeReport(results);
  console.log(terminalTable(results, soak));
  console.log(`\nreport: ${relative(Deno.cwd(), md)}`);
}
