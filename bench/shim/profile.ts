/**
 * Where the time of one `ctr run --rm … true` goes, per shim (host-lab.md §8.3): each shim binary is wrapped in a
 * script that logs when its `start` and `delete` subcommands were executed and exited, `ctr events` gives the task
 * events' timestamps, and the segments between them are summarized over K interleaved runs. Not part of the report
 * run; evidence for it.
 *
 * @example
 * ```sh
 * deno run -A bench/shim/profile.ts   # 15 runs per shim; BENCH_PROFILE_K, BENCH_LAB_DIR, BENCH_KEEP_LAB=1
 * ```
 * @module
 */
import { describeContainerd, distDir, stopLab, useLab } from "../../tests/lab/mod.ts";
import { BENCH_NS, ctrTimed, runTag } from "./ctr.ts";
import type { Side } from "./procs.ts";
import { benchConfig } from "./config.ts";
import { abOrder, summarize } from "./stats.ts";

/** The segments reported, in order, from ctr's exec to ctr's exit. */
const SEGMENTS = [
  "ctr exec → shim `start` exec",
  "`start` exec → exit",
  "`start` exit → /tasks/create (connect, Create = runc create)",
  "/tasks/create → /tasks/start (Start = runc start)",
  "/tasks/start → /tasks/exit (`true` runs)",
  "/tasks/exit → /tasks/delete (Delete = runc delete)",
  "/tasks/delete → shim `delete` exec (Shutdown, disconnect)",
  "`delete` exec → exit",
  "`delete` exit → ctr exit",
  "total",
] as const;

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Epoch ms of a `ctr events` line ("2026-11-23 05:10:00.123456789 +0000 UTC ns /topic {...}"). */
function eventTime(line: string): number | null {
  const m = line.match(/^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d+))? \+0000 UTC/);
  if (!m) return null;
  const frac = Number(`0.${m[3] ?? "0"}`);
  return Date.parse(`${m[1]}T${m[2]}Z`) + frac * 1000;
}

async function wrapper(path: string, real: string, log: string): Promise<void> {
  // Runs the real shim as a child (so the Go shim's os.Executable() is still the real binary) and logs
  // "<t0> <t1> <action> <id>" in seconds since the epoch.
  await Deno.writeTextFile(
    path,
    `#!/bin/bash
t0=$EPOCHREALTIME; "${real}" "$@"; rc=$?; t1=$EPOCHREALTIME
id=""; prev=""; for a in "$@"; do [ "$prev" = "-id" ] && id=$a; prev=$a; done
printf '%s %s %s %s\\n' "$t0" "$t1" "\${@: -1}" "$id" >> "${log}"; exit $rc
`,
    { mode: 0o755 },
  );
  await Deno.chmod(path, 0o755);
}

if (import.meta.main) {
  const k = Number(Deno.env.get("BENCH_PROFILE_K") ?? "15");
  const cfg = benchConfig();
  const labDir = cfg.labDir;
  const lab = await useLab({ dir: labDir, containerd: cfg.containerd });
  console.error(`lab: ${describeContainerd(lab.containerd)} at ${lab.dir}`);
  await lab.ensureImage(BENCH_NS);
  const dir = `${lab.dir}/profile`;
  await Deno.mkdir(dir, { recursive: true });
  const log = `${dir}/shim-times.log`;
  await Deno.writeTextFile(log, "");
  const wrappers: Record<Side, string> = { go: `${dir}/timed-go`, deno: `${dir}/timed-deno` };
  await wrapper(wrappers.go, lab.goShimBinary, log);
  await wrapper(wrappers.deno, `${distDir}/containerd-shim-deno-v2`, log);

  const events = lab.spawnCtr(["events"]);
  const lines: string[] = [];
  const reading = (async () => {
    let buf = "";
    for await (const chunk of events.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
  })();
  events.stderr.cancel().catch(() => {});
  await new Promise((r) => setTimeout(r, 300)); // the subscription is in place

  const runs: { side: Side; id: string; t0: number; t1: number }[] = [];
  for (let i = 0; i < k; i++) {
    for (const side of abOrder<Side>(i, "go", "deno")) {
      const id = `prof-${side}-${runTag()}-${i}`;
      const t0 = nowMs();
      await ctrTimed(lab, BENCH_NS, ["run", "--rm", "--runtime", wrappers[side], lab.image, id, "true"]);
      runs.push({ side, id, t0, t1: nowMs() });
    }
  }
  await new Promise((r) => setTimeout(r, 500));
  events.kill("SIGTERM");
  await events.status;
  await reading.catch(() => {});

  const shimTimes = (await Deno.readTextFile(log)).trim().split("\n").map((l) => {
    const [t0, t1, action, id] = l.split(" ");
    return { t0: Number(t0) * 1000, t1: Number(t1) * 1000, action, id };
  });
  const segs: Record<Side, number[][]> = { go: SEGMENTS.map(() => []), deno: SEGMENTS.map(() => []) };
  for (const r of runs) {
    const ev = (topic: string) => {
      const l = lines.find((x) => x.includes(` ${topic} `) && x.includes(`"${r.id}"`));
      return l ? eventTime(l) : null;
    };
    const start = shimTimes.find((s) => s.id === r.id && s.action === "start");
    const del = shimTimes.find((s) => s.id === r.id && s.action === "delete");
    const points = [
      r.t0,
      start?.t0,
      start?.t1,
      ev("/tasks/create"),
      ev("/tasks/start"),
      ev("/tasks/exit"),
      ev("/tasks/delete"),
      del?.t0,
      del?.t1,
      r.t1,
    ];
    if (points.some((p) => p === null || p === undefined)) continue;
    const p = points as number[];
    for (let s = 0; s < p.length - 1; s++) segs[r.side][s].push(p[s + 1] - p[s]);
    segs[r.side][SEGMENTS.length - 1].push(r.t1 - r.t0);
  }
  const w = Math.max(...SEGMENTS.map((s) => s.length));
  console.log(`${"ms, median / p90".padEnd(w)}  ${"Go shim".padStart(15)}  ${"ours".padStart(15)}`);
  SEGMENTS.forEach((name, s) => {
    const cell = (side: Side) => {
      const x = segs[side][s];
      if (!x.length) return "—".padStart(15);
      const sm = summarize(x);
      return `${sm.median.toFixed(1)} / ${sm.p90.toFixed(1)}`.padStart(15);
    };
    console.log(`${name.padEnd(w)}  ${cell("go")}  ${cell("deno")}`);
  });
  console.log(`(${segs.go[0].length} + ${segs.deno[0].length} complete runs; load ${Deno.loadavg().join(" ")})`);
  if (Deno.env.get("BENCH_KEEP_LAB") !== "1") await stopLab({ dir: labDir, containerd: cfg.containerd });
}
