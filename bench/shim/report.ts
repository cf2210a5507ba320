/**
 * Renders docs/benchmarks.md from a run's results (and the last soak's, when there is one): the machine, the targets
 * with their status, the chart, and one table per measurement with both shims side by side. Also renders the short
 * table the benchmark prints on the terminal.
 *
 * @example
 * ```ts
 * import { renderReport } from "./report.ts";
 * const results = JSON.parse(await Deno.readTextFile("bench/results/shim.json"));
 * await Deno.writeTextFile("docs/benchmarks.md", renderReport(results, undefined, "benchmarks.svg"));
 * ```
 * @module
 */
import { floorMedians } from "./floor.ts";
import {
  type IdleReading,
  type MemoryMode,
  RPC_METHODS,
  type ShimBenchResults,
  type SoakResults,
  type ThroughputPath,
} from "./results.ts";
import { paired, summarize, type Summary } from "./stats.ts";
import { evaluateTargets, type TargetRow } from "./targets.ts";

const MODE_LABEL: Record<MemoryMode, string> = { go: "Go shim", pod: "ours, per pod", node: "ours, node" };

function f(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "—";
}

function statusMark(s: TargetRow["status"]): string {
  return s === "met" ? "✅ met" : s === "missed" ? "❌ missed" : "— not measured";
}

/** `median / p90 (min–max)`. */
function cell(s: Summary, digits = 1): string {
  return `${f(s.median, digits)} / ${f(s.p90, digits)} (${f(s.min, digits)}–${f(s.max, digits)})`;
}

/** One row of an A/B table: both summaries, the ratio of medians, and the paired difference. */
function abRow(name: string, go: number[], deno: number[], digits = 1): string {
  if (go.length === 0 || deno.length === 0) {
    const one = (x: number[]) => x.length ? cell(summarize(x), digits) : "— (no successful run)";
    return `| ${name} | ${one(go)} | ${one(deno)} | — | — |`;
  }
  const g = summarize(go), d = summarize(deno);
  const diff = go.length === deno.length ? paired(go, deno) : null;
  const diffText = diff ? `${diff.median >= 0 ? "+" : ""}${f(diff.median, digits)} (σ ${f(diff.stdev, digits)})` : "—";
  return `| ${name} | ${cell(g, digits)} | ${cell(d, digits)} | ${f(d.median / g.median, 2)}× | ${diffText} |`;
}

function machine(r: ShimBenchResults, soak?: SoakResults): string {
  const h = r.host;
  const loads = r.load.map((l) => `${l.phase} ${l.load.map((x) => x.toFixed(2)).join(" ")}`).join("; ");
  const c = r.config;
  return [
    "| | |",
    "|---|---|",
    `| date | ${h.date} (run ${r.startedAt} → ${r.finishedAt}) |`,
    `| machine | ${h.cpus} × ${h.cpu}, ${h.memoryGiB} GiB RAM, Linux ${h.kernel} |`,
    `| load average (1/5/15 min) before each phase | ${loads} |`,
    `| containerd / runc | ${
      containerdLabel(h.containerd)
    } / runc ${h.runc}; log level ${h.labLogLevel} (private lab at \`${c.labDir}\`) |`,
    `| Go shim | containerd-shim-runc-v2 ${h.goShim} |`,
    `| our shim | containerd-shim-deno-v2 ${h.denoShim} on Deno ${h.deno}; dist: ${h.build} |`,
    `| settings | N=${c.n} per shim; throughput ${c.throughputMiB} MiB × ${c.throughputRuns}; memory steps ` +
    `${
      c.memorySteps.join(", ")
    } (settle ${c.memorySettleSeconds} s); idle ${c.idleSeconds} s at ${c.idleAt} containers |`,
    soak
      ? `| soak | ${soak.date}: ${soak.execs.toLocaleString("en-US")} execs after ${soak.warmup} warm-up, ` +
        `${soak.concurrency} in flight, load ${soak.load.map((x) => x.toFixed(2)).join(" ")} |`
      : "| soak | not run |",
  ].join("\n");
}

/**
 * The targets: the measured figure as ours / Go, what the runtime's floor allows in the same unit and how far ours is
 * from it (targets without a floor leave those blank), the goal and the status.
 */
export function targetsTable(rows: TargetRow[]): string {
  const floor = (t: TargetRow) => t.floor === undefined ? "" : t.floor === null ? "—" : `${t.floor.toFixed(2)}×`;
  const toFloor = (t: TargetRow) => t.toFloor === undefined ? "" : t.toFloor || "—";
  return [
    "| target | ours / Go | the floor allows | ours vs floor | goal | status |",
    "|---|---|---|---|---|---|",
    ...rows.map((t) =>
      `| ${t.name} | ${t.shown} | ${floor(t)} | ${toFloor(t)} | ${t.goal} | ${statusMark(t.status)} |`
    ),
  ].join("\n");
}

/** The floor in one sentence (README and report): D, G and the idle listener, or "" when it was not measured. */
export function floorLine(r: ShimBenchResults): string {
  const f = floorMedians(r);
  if (!f) return "";
  const l = r.floor?.listener;
  const mem = l
    ? `; an idle Deno unix-socket listener ${f1(l.privateDirtyKiB / 1024)} MiB private dirty ` +
      `(${f1(l.pssKiB / 1024)} MiB PSS, ${f1(l.ussKiB / 1024)} MiB USS)`
    : "";
  return `Floor in this run: an empty \`deno run\` with the shim's flags (D) ${f1(f.d)} ms, the Go shim's \`-v\` (G) ` +
    `${f1(f.g)} ms${mem}.`;
}

function f1(x: number): string {
  return f(x, 1);
}

function floorTable(r: ShimBenchResults): string {
  const fl = r.floor;
  if (!fl) return "_not measured in this run_";
  const rows = [
    "| what | ms: median / p90 (min–max) |",
    "|---|---|",
    `| D: empty \`deno run\` with the shim's flags | ${fl.emptyDeno.length ? cell(summarize(fl.emptyDeno)) : "—"} |`,
    `| G: the Go shim's \`-v\` | ${fl.goVersion.length ? cell(summarize(fl.goVersion)) : "—"} |`,
  ];
  const l = fl.listener;
  if (l) {
    rows.push(
      "",
      "| idle Deno unix-socket listener | RSS | PSS | USS | private dirty |",
      "|---|---|---|---|---|",
      `| MiB | ${f(l.rssKiB / 1024)} | ${f(l.pssKiB / 1024)} | ${f(l.ussKiB / 1024)} | ${
        f(l.privateDirtyKiB / 1024)
      } |`,
    );
  }
  if (r.start?.emptyDeno?.length) {
    rows.push(
      "",
      `D timed again before each iteration of the \`start\` phase (what \`start\` and \`delete\` are judged against): ` +
        `${cell(summarize(r.start.emptyDeno))} ms.`,
    );
    const l = r.start.emptyLauncher;
    if (l?.length === r.start.emptyDeno.length) {
      const perIteration = summarize(l.map((ms, i) => ms / r.start!.emptyDeno![i])).median;
      rows.push(
        "",
        `L, our launcher running an empty script (D plus the bundle flavour's \`/bin/sh\` step, which a compiled shim ` +
          `does not have), timed right after D in the same iterations: ${cell(summarize(l))} ms, ` +
          `${f(perIteration, 2)}× D (median per iteration).`,
      );
    }
  }
  const dPrime = r.start?.emptyDenoAfterBoot;
  if (dPrime?.length) {
    rows.push(
      "",
      `D′, D timed right after one of our servers answered its first call, where \`start\` with a server running is ` +
        `timed (and judged against it): ${cell(summarize(dPrime))} ms.`,
    );
  }
  if (fl.emptyCommand) rows.push("", `D runs \`${fl.emptyCommand}\`.`);
  return rows.join("\n");
}

function rpcTable(r: ShimBenchResults): string {
  if (!r.rpc) return "_not measured in this run_";
  return [
    "| ms: median / p90 (min–max) | Go shim | ours | ratio | paired ours − Go: median (σ) |",
    "|---|---|---|---|---|",
    ...RPC_METHODS.filter((m) => r.rpc![m]).map((m) => abRow(m, r.rpc![m]!.go, r.rpc![m]!.deno, 2)),
  ].join("\n");
}

function latencyTable(r: ShimBenchResults): string {
  const head = [
    "| ms: median / p90 (min–max) | Go shim | ours | ratio | paired ours − Go: median (σ) |",
    "|---|---|---|---|---|",
  ];
  const rows: string[] = [];
  if (r.lifecycle) rows.push(abRow("lifecycle: `ctr run --rm … true`", r.lifecycle.go, r.lifecycle.deno));
  if (r.lifecycleBoot) {
    rows.push(abRow("lifecycle, spares off (each pod boots a server)", r.lifecycleBoot.go, r.lifecycleBoot.deno));
  }
  if (r.lifecycleNode) {
    rows.push(abRow("lifecycle, node grouping (one container kept running)", r.lifecycleNode.go, r.lifecycleNode.deno));
  }
  if (r.start) {
    rows.push(abRow("`start`, new server: exec → exit", r.start.newServer.go, r.start.newServer.deno));
    rows.push(abRow("`start`, new server: exec → first RPC answered", r.start.firstRpc.go, r.start.firstRpc.deno));
    rows.push(abRow("`start`, server already runs: exec → exit", r.start.existing.go, r.start.existing.deno));
    if (r.start.delete) {
      rows.push(abRow("`delete` after the task: exec → exit", r.start.delete.go, r.start.delete.deno));
    }
  }
  if (r.exec) rows.push(abRow("exec: `ctr task exec … true`", r.exec.go, r.exec.deno));
  if (r.cri) rows.push(abRow("CRI: create+start+stop+remove in a running pod", r.cri.go, r.cri.deno));
  if (r.cri2x) {
    rows.push(abRow(`CRI, the same on ${r.cri2x.containerd}`, r.cri2x.go, r.cri2x.deno));
  }
  return rows.length ? [...head, ...rows].join("\n") : "_not measured in this run_";
}

function throughputTable(r: ShimBenchResults): string {
  if (!r.throughput?.length) return "_not measured in this run_";
  const label: Record<ThroughputPath, string> = {
    fifo: "container → shim → FIFO → ctr → /dev/null",
    "file-devnull": "container → shim → `file:///dev/null`",
    "file-tmpfs": "container → shim → `file://` on tmpfs",
  };
  const failures = r.throughput.flatMap((t) =>
    Object.entries(t.errors ?? {}).map(([side, e]) => `- ${side === "go" ? "Go shim" : "ours"}, ${label[t.path]}: ${e}`)
  );
  return [
    "| MiB/s: median / p90 (min–max) | Go shim | ours | ratio | paired ours − Go: median (σ) |",
    "|---|---|---|---|---|",
    ...r.throughput.map((t) => abRow(`${label[t.path]} (${t.mib} MiB)`, t.mibPerS.go, t.mibPerS.deno, 0)),
    ...netOfLifecycle(r),
    ...(failures.length ? ["", "Failed runs (the side was skipped on that path):", "", ...failures] : []),
  ].join("\n");
}

/** The copy rate with each shim's median lifecycle time taken out of the wall time (informational). */
function netOfLifecycle(r: ShimBenchResults): string[] {
  if (!r.lifecycle?.go.length || !r.lifecycle.deno.length || !r.throughput) return [];
  const life = { go: summarize(r.lifecycle.go).median, deno: summarize(r.lifecycle.deno).median };
  const lines = r.throughput.filter((t) => t.mibPerS.go.length && t.mibPerS.deno.length).map((t) => {
    const net = (side: "go" | "deno") => {
      const wallMs = t.mib / summarize(t.mibPerS[side]).median * 1000;
      return wallMs > life[side] ? t.mib / ((wallMs - life[side]) / 1000) : NaN;
    };
    const g = net("go"), d = net("deno");
    return `- ${t.path}: Go shim ${f(g, 0)} MiB/s, ours ${f(d, 0)} MiB/s (${f(d / g, 2)}×)`;
  });
  return lines.length
    ? [
      "",
      `Informational, not a target: the same medians with each shim's median lifecycle wall time ` +
      `(Go ${f(life.go)} ms, ours ${f(life.deno)} ms) subtracted, i.e. roughly the copy alone:`,
      "",
      ...lines,
    ]
    : [];
}

function memoryTable(r: ShimBenchResults): string {
  if (!r.memory?.length) return "_not measured in this run_";
  const modes = (["go", "pod", "node"] as const).filter((m) => r.memory!.some((p) => p.mode === m));
  const steps = [...new Set(r.memory.map((p) => p.containers))].sort((a, b) => a - b);
  const head = `| containers | ${modes.map((m) => `${MODE_LABEL[m]}: PSS / USS per container`).join(" | ")} | ` +
    `shim processes (${modes.map((m) => MODE_LABEL[m]).join(" / ")}) | processes running the deno executable |`;
  const rows = steps.map((n) => {
    const cells = modes.map((m) => {
      const p = r.memory!.find((x) => x.mode === m && x.containers === n);
      return p ? `${f(p.totals.pssKiB / n / 1024, 2)} / ${f(p.totals.ussKiB / n / 1024, 2)} MiB` : "—";
    });
    const procs = modes.map((m) => r.memory!.find((x) => x.mode === m && x.containers === n)?.totals.processes ?? "—");
    const sharers = modes.filter((m) => m !== "go").map((m) => {
      const p = r.memory!.find((x) => x.mode === m && x.containers === n);
      return `${m}: ${p?.denoSharers ?? "—"}`;
    }).join(", ");
    return `| ${n} | ${cells.join(" | ")} | ${procs.join(" / ")} | ${sharers} |`;
  });
  const totals = steps.map((n) => {
    const cells = modes.map((m) => {
      const p = r.memory!.find((x) => x.mode === m && x.containers === n);
      return p ? `${f(p.totals.rssKiB / 1024)} / ${f(p.totals.pssKiB / 1024)} / ${f(p.totals.ussKiB / 1024)}` : "—";
    });
    return `| ${n} | ${cells.join(" | ")} |`;
  });
  return [
    head,
    `|---|${modes.map(() => "---|").join("")}---|---|`,
    ...rows,
    "",
    "Totals over all shim processes, MiB (RSS / PSS / USS):",
    "",
    `| containers | ${modes.map((m) => MODE_LABEL[m]).join(" | ")} |`,
    `|---|${modes.map(() => "---|").join("")}`,
    ...totals,
  ].join("\n");
}

function idleTable(r: ShimBenchResults): string {
  if (!r.idle?.length) return "_not measured in this run_";
  // Each configuration's readings in the order taken; "vs Go" compares readings of the same window.
  const goIn = (w?: number) => r.idle!.find((i) => i.mode === "go" && i.startedAfterS === w);
  const window = (i: IdleReading) =>
    i.startedAfterS === undefined ? "" : `${f(i.startedAfterS, 0)}–${f(i.startedAfterS + i.seconds, 0)} s`;
  return [
    "| configuration | containers | shim processes | interval after the last start | CPU over the interval " +
    "| % of one CPU | context switches/s | vs Go |",
    "|---|---|---|---|---|---|---|---|",
    ...r.idle.map((i) => {
      const go = goIn(i.startedAfterS);
      return `| ${MODE_LABEL[i.mode]} | ${i.containers} | ${i.processes} | ${window(i)} | ` +
        `${f(i.cpuMs)} ms / ${i.seconds} s | ${f(i.cpuMs / (i.seconds * 1000) * 100, 3)} % | ${f(i.switchesPerS)} | ` +
        `${go && i.mode !== "go" && go.cpuMs > 0 ? `${f(i.cpuMs / go.cpuMs, 2)}×` : ""} |`;
    }),
  ].join("\n");
}

function soakSection(soak?: SoakResults): string {
  if (!soak) return "_`deno task bench:soak` has not been run; its result is added here when it is._";
  const lines = [
    "| shim | execs measured | wall time | failures | RSS start → end (Δ) | PSS Δ | USS start → end (Δ) " +
    "| fds start → end |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const s of soak.sides) {
    const a = s.points[0], b = s.points.at(-1)!;
    const d = (x: number, y: number) => `${y - x >= 0 ? "+" : ""}${f((y - x) / 1024, 2)}`;
    lines.push(
      `| ${s.side === "go" ? "Go shim" : "ours"} | ${(b.execs - a.execs).toLocaleString("en-US")} | ${
        f(s.seconds, 0)
      } s | ` +
        `${s.failures} | ${f(a.rssKiB / 1024)} → ${f(b.rssKiB / 1024)} MiB (${d(a.rssKiB, b.rssKiB)}) | ` +
        `${d(a.pssKiB, b.pssKiB)} MiB | ${f(a.ussKiB / 1024)} → ${f(b.ussKiB / 1024)} MiB (${
          d(a.ussKiB, b.ussKiB)
        }) | ` +
        `${a.fds} → ${b.fds} |`,
    );
  }
  if (soak.bareDenoSpawnGrowthKiB !== null) {
    lines.push(
      "",
      `For scale: a bare Deno ${"process"} spawning as many short children (\`true\`) grew its RSS by ` +
        `${f(soak.bareDenoSpawnGrowthKiB / 1024, 2)} MiB over the same count — the runtime's own share.`,
    );
  }
  const ours = soak.sides.find((s) => s.side === "deno");
  if (ours && ours.points.length > 2) {
    // Where the growth happens tells a warming heap from a per-exec leak.
    const end = ours.points.at(-1)!;
    const mid = ours.points.reduce((best, p) =>
      Math.abs(p.execs - end.execs / 2) < Math.abs(best.execs - end.execs / 2) ? p : best
    );
    if (mid !== end && mid !== ours.points[0]) {
      lines.push(
        "",
        `Ours over the second half alone (${(mid.execs / 1000).toFixed(0)}k → ${(end.execs / 1000).toFixed(0)}k ` +
          `execs): RSS ${f((end.rssKiB - mid.rssKiB) / 1024, 2)} MiB, ` +
          `USS ${f((end.ussKiB - mid.ussKiB) / 1024, 2)} MiB.`,
      );
    }
    lines.push(
      "",
      "RSS / USS of our server along the soak (MiB): " +
        ours.points.map((p) => `${(p.execs / 1000).toFixed(0)}k ${f(p.rssKiB / 1024)} / ${f(p.ussKiB / 1024)}`)
          .join(", "),
    );
  }
  return lines.join("\n");
}

/** The whole markdown report; `svgName` is the chart's file name relative to the report. */
export function renderReport(
  r: ShimBenchResults,
  soak: SoakResults | undefined,
  svgName: string,
  analysis?: string,
): string {
  const targets = evaluateTargets(r, soak);
  const met = targets.filter((t) => t.status === "met").length;
  const missed = targets.filter((t) => t.status === "missed").length;
  const unmeasured = targets.length - met - missed;
  return `# Benchmarks: containerd-shim-deno-v2 against containerd-shim-runc-v2

Generated by \`deno task bench:shim\` (and \`deno task bench:soak\` for the soak) — do not edit by hand; rerun instead.
Both shims ran on the same private containerd, interleaved A/B/B/A in one run (host-lab.md §8.7). On this 2-vCPU
host figures move by about ±10 ms (latency) and ±20 % (throughput) between runs, so only the ratios within one run
mean anything; ratio = ours / Go, of medians.

## Machine

${machine(r, soak)}

## Targets: ${met} met, ${missed} missed${unmeasured ? `, ${unmeasured} not measured` : ""}

![ours / Go per target, and memory per container](${svgName})

${targetsTable(targets)}

"ours / Go" is the ratio of medians. For the targets the Deno runtime bounds, "the floor allows" is what ours / Go
would be if our process cost exactly what Deno itself costs (see "Floor" below): for the lifecycle (Go + k·(D − G)) / Go
with k = 2 Deno start-ups in node grouping (\`start\`, \`delete\`) and 3 per pod (plus the server's boot); for
\`start\` and \`delete\` D / Go; for memory the idle listener's private dirty / the Go shim's. "ours vs floor" is the
distance: ratio points above the floor for the lifecycle, multiples of D or of the listener for the others.

## Floor: what Deno allows

${floorLine(r)}

${floorTable(r)}

## Latency

${latencyTable(r)}

\`start\` is run by hand in a scratch bundle (no containerd involved), for a new group and again for the same group.
The Go \`start\` binds the socket and exits before its daemon serves; ours exits once its server serves, so
"first RPC answered" is the like-for-like figure for a new server.

## Task RPCs straight over ttrpc

${rpcTable(r)}

One server per shim, started by its own \`start\` with an anchor container kept running; per iteration a new busybox
\`sleep\` container (plain rootfs directory, no stdio) goes through Create, Start, Exec (its Start, Wait and Delete
untimed), State, Kill (SIGKILL), Wait (untimed) and Delete, each round trip timed by the client.

## stdout throughput

${throughputTable(r)}

MiB/s = MiB written ÷ the whole \`ctr run --rm\` wall time, including container start and teardown (as in the Go
baseline), so a slower lifecycle also lowers it.

## Memory per container

${memoryTable(r)}

Detached \`sleep\` containers; all shim processes summed from \`smaps_rollup\` and divided by the number of
containers. PSS splits shared pages among every process mapping them: our server's executable is the deno runtime,
shared with every other deno process on the host (the last column), so compare USS (Private_Clean + Private_Dirty)
for what one more process really costs.

## Idle CPU

${idleTable(r)}

Sum of \`schedstat\` CPU time of every shim thread over the interval, with the containers idle. The target uses the
first interval of each configuration; the second follows it directly.

## Soak: memory over many execs

${soakSection(soak)}

The soak drives \`Exec\`, \`Start\`, \`Wait\` and \`Delete\` straight over the shim's ttrpc socket (containerd and ctr
would make 100,000 execs take hours), with no stdio, on a \`sleep\` container started through containerd.

## How to run

\`\`\`sh
deno task build                 # the shim under test: dist/containerd-shim-deno-v2
deno task bench:shim            # ≈ 10–15 min; writes this file, benchmarks.svg and bench/results/shim.json
deno task bench:soak            # ≈ 40 min for 100,000 execs; adds the soak to this file (not in CI)
deno task bench:shim --render   # re-renders this file from bench/results/*.json
\`\`\`

Knobs (environment): \`BENCH_N\` (samples per shim, default 30), \`BENCH_TP_MIB\` (500), \`BENCH_TP_RUNS\` (5),
\`BENCH_IDLE_S\` (60), \`BENCH_MEM_STEPS\` (1,20,50,100), \`BENCH_PHASES\`, \`BENCH_LAB_DIR\` (/tmp/benchlab),
\`BENCH_OUT\`; for the soak \`BENCH_SOAK_EXECS\` (100000), \`BENCH_SOAK_SIDES\` (deno; \`deno,go\` adds the Go
shim), \`BENCH_SOAK_CONCURRENCY\`.
Node mode is selected by writing \`/etc/containerd/containerd-shim-deno.json\` only while node-mode containers
start; the previous file (or its absence) is restored, also after an interrupted run.
${analysis ? `\n## Where the time goes\n\n${analysis.trim()}\n` : ""}${
    r.warnings.length ? `\n## Warnings during the run\n\n${r.warnings.map((w) => `- ${w}`).join("\n")}\n` : ""
  }`;
}

/** How a report names the containerd: results before the series was recorded hold only the version. */
export function containerdLabel(containerd: string): string {
  return containerd.startsWith("containerd ") ? containerd : `containerd ${containerd}`;
}

/** Markers around the benchmark summary in README.md, which {@linkcode withReadmeSummary} rewrites. */
export const README_BEGIN = "<!-- bench:begin (written by deno task bench:shim) -->";
export const README_END = "<!-- bench:end -->";

/** The README's summary: when and where, the chart, and the targets table. */
export function readmeSummary(r: ShimBenchResults, soak: SoakResults | undefined, svgPath: string): string {
  const targets = evaluateTargets(r, soak);
  const met = targets.filter((t) => t.status === "met").length;
  const h = r.host;
  return [
    `Latest run: ${h.date.slice(0, 10)} on ${h.cpus} × ${h.cpu}, ${h.memoryGiB} GiB RAM, Linux ${h.kernel}; ` +
    `${containerdLabel(h.containerd)}, runc ${h.runc}, Deno ${h.deno}. ${met} of ${targets.length} targets met.`,
    ...(floorLine(r) ? ["", floorLine(r)] : []),
    "",
    `![ours / Go per target, and memory per container](${svgPath})`,
    "",
    targetsTable(targets),
  ].join("\n");
}

/** `readme` with the text between the markers replaced by `summary`; unchanged when the markers are missing. */
export function withReadmeSummary(readme: string, summary: string): string {
  const a = readme.indexOf(README_BEGIN), b = readme.indexOf(README_END);
  if (a < 0 || b < a) return readme;
  return `${readme.slice(0, a + README_BEGIN.length)}\n\n${summary}\n\n${readme.slice(b)}`;
}

/** What a run prints at the end: the tables with both shims, then the targets. */
export function terminalTable(r: ShimBenchResults, soak?: SoakResults): string {
  return [
    "== floor",
    floorTable(r),
    "== latency",
    latencyTable(r),
    "== Task RPCs over ttrpc",
    rpcTable(r),
    "== stdout throughput",
    throughputTable(r),
    "== memory per container",
    memoryTable(r),
    "== idle CPU",
    idleTable(r),
    "== targets",
    targetsTable(evaluateTargets(r, soak)),
  ].join("\n\n");
}
