/**
 * `deno task soak` (also `deno task bench:soak`): memory growth of a shim server over many execs (default 100,000),
 * the long version of the exec leak check in tests/shim_api_test.ts, which the default test run keeps short. Not
 * part of `deno task test`; it takes about half an hour on an idle 2-core machine. The exit status says whether our
 * server met the target: RSS growth under 2 MiB, no fd more at the end, no failed exec.
 *
 * A `sleep` container is started through the lab's containerd with each shim (ours in its default grouping; the Go
 * shim alongside for scale when asked), then execs are driven straight over the shim's ttrpc socket — `Exec`,
 * `Start`, `Wait`, `Delete`, no stdio — with a few in flight per shim, all shims in the same time window. Through
 * ctr and containerd the same count would take hours; the RPCs the shim serves are the same. After a warm-up, the server's
 * RSS, PSS, USS and open fds are read every `BENCH_SOAK_EVERY` execs and at the end. Then, for scale, a bare deno
 * process spawns as many short children and its RSS growth is recorded (Deno retains a little per child).
 *
 * Writes `bench/results/soak.json` and re-renders docs/benchmarks.md when `bench/results/shim.json` exists.
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `BENCH_SOAK_EXECS` | 100000 | execs per shim (warm-up included) |
 * | `BENCH_SOAK_WARMUP` | 2000 | execs before the first reading |
 * | `BENCH_SOAK_CONCURRENCY` | 3 | execs in flight per shim |
 * | `BENCH_SOAK_EVERY` | 10000 | execs between readings |
 * | `BENCH_SOAK_SIDES` | deno | which shims; `deno,go` adds the Go shim for scale (same window, twice the time) |
 * | `BENCH_SOAK_BARE` | 1 | `0` skips the bare-deno spawn comparison |
 * | `BENCH_SOAK_OUT` | bench/results/soak.json | where the result goes (the report uses only the default) |
 * | `BENCH_LAB_DIR` | /tmp/benchlab | the lab |
 * | `BENCH_KEEP_LAB` | unset | `1` leaves the lab running |
 *
 * @example
 * ```sh
 * deno task build && deno task bench:soak
 * BENCH_SOAK_EXECS=5000 BENCH_SOAK_SIDES=deno,go BENCH_SOAK_OUT=/tmp/soak.json deno task bench:soak
 * ```
 * @module
 */
import { dirname, join } from "node:path";
import { type Lab, memoryOf, stopLab, useLab } from "../../tests/lab/mod.ts";
import { TaskClient } from "../../tests/harness/shim.ts";
import { encodeJsonAny, JSON_TYPE_URLS } from "../../src/proto/any.ts";
import { runSleeper, runTag } from "../shim/ctr.ts";
import { type Side, SIDES } from "../shim/procs.ts";
import type { ShimBenchResults, SoakPoint, SoakResults, SoakSide } from "../shim/results.ts";
import { formatFiles, RESULTS_DIR, writeReport } from "../shim/main.ts";
import { soakGrowthMiB } from "../shim/targets.ts";

const NS = "bench-soak";

function intEnv(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (!raw) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer, not ${raw}`);
  return v;
}

function progress(msg: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** One shim's container, connection and server. */
interface Target {
  side: Side;
  id: string;
  client: TaskClient;
  pid: number;
}

async function connect(lab: Lab, side: Side): Promise<Target> {
  const id = `soak-${side}-${runTag()}`;
  await runSleeper(lab, side, NS, id);
  const address = await Deno.readTextFile(`${lab.dir}/state/io.containerd.runtime.v2.task/${NS}/${id}/address`);
  const client = await TaskClient.connect(address.trim(), NS);
  const pid = (await client.call("Connect", { id })).shimPid;
  return { side, id, client, pid };
}

async function reading(t: Target, execs: number): Promise<SoakPoint> {
  const m = await memoryOf(t.pid);
  if (!m) throw new Error(`${t.side} shim server ${t.pid} is gone`);
  let fds = 0;
  for await (const _ of Deno.readDir(`/proc/${t.pid}/fd`)) fds++;
  return { execs, rssKiB: m.rssKiB, pssKiB: m.pssKiB, ussKiB: m.ussKiB, fds };
}

const spec = encodeJsonAny(JSON_TYPE_URLS.process, {
  args: ["true"],
  cwd: "/",
  env: ["PATH=/bin:/usr/bin"],
  user: { uid: 0, gid: 0 },
});

/** One exec through the four RPCs; false when any of them failed or the exit status was not 0. */
async function execOnce(t: Target, n: number): Promise<boolean> {
  const execId = `s${n}`;
  try {
    await t.client.call("Exec", { id: t.id, execId, spec, terminal: false });
    await t.client.call("Start", { id: t.id, execId });
    const w = await t.client.call("Wait", { id: t.id, execId });
    await t.client.call("Delete", { id: t.id, execId });
    return w.exitStatus === 0;
  } catch (e) {
    progress(`${t.side} exec ${n}: ${e}`);
    await t.client.call("Delete", { id: t.id, execId }).catch(() => {});
    return false;
  }
}

/** Runs execs `from` … `to − 1` on `t` with `concurrency` in flight; returns the failures. */
async function execRange(t: Target, from: number, to: number, concurrency: number): Promise<number> {
  let next = from, failures = 0;
  const worker = async () => {
    while (next < to) if (!await execOnce(t, next++)) failures++;
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return failures;
}

/** Soaks every target in the same window, reading memory at the checkpoints. */
async function soak(targets: Target[], total: number, warmup: number, every: number, concurrency: number) {
  const sides = new Map<Target, SoakSide>(
    targets.map((t) => [t, { side: t.side, points: [], seconds: 0, failures: 0 }]),
  );
  await Promise.all(targets.map((t) => execRange(t, 0, warmup, concurrency)));
  for (const t of targets) sides.get(t)!.points.push(await reading(t, warmup));
  const t0 = performance.now();
  let done = warmup;
  while (done < total) {
    const to = Math.min(total, done + every - (done % every));
    const failures = await Promise.all(targets.map((t) => execRange(t, done, to, concurrency)));
    targets.forEach((t, i) => sides.get(t)!.failures += failures[i]);
    done = to;
    if (done < total) {
      for (const t of targets) sides.get(t)!.points.push(await reading(t, done));
      const rate = (done - warmup) / ((performance.now() - t0) / 1000);
      progress(
        `${done}/${total} execs (${rate.toFixed(0)}/s per shim): ` +
          targets.map((t) => `${t.side} USS ${(sides.get(t)!.points.at(-1)!.ussKiB / 1024).toFixed(1)} MiB`).join(", "),
      );
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 2000)); // let exits, reaping and event publishing finish
  for (const t of targets) {
    const s = sides.get(t)!;
    s.points.push(await reading(t, total));
    s.seconds = seconds;
  }
  return [...sides.values()];
}

/** RSS growth (KiB) of a bare deno process spawning `n` children after `warmup` unmeasured ones. */
async function bareDenoSpawnGrowthKiB(n: number, warmup: number): Promise<number> {
  const script = `
    const rss = () => Number(Deno.readTextFileSync("/proc/self/status").match(/VmRSS:\\s+(\\d+)/)[1]);
    const spawn = async () => {
      await new Deno.Command("true", { stdin: "null", stdout: "null", stderr: "null" }).spawn().status;
    };
    for (let i = 0; i < ${warmup}; i++) await spawn();
    const a = rss();
    for (let i = ${warmup}; i < ${n}; i++) await spawn();
    console.log(rss() - a);`;
  // The same V8 flag as the shim's launcher, so the heap behaves alike.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--max-semi-space-size=1", script],
    stdout: "piped",
  }).output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

if (import.meta.main) {
  const total = intEnv("BENCH_SOAK_EXECS", 100_000);
  const warmup = Math.min(intEnv("BENCH_SOAK_WARMUP", 2000), Math.floor(total / 5));
  const concurrency = Math.max(1, intEnv("BENCH_SOAK_CONCURRENCY", 3));
  const every = Math.max(1, intEnv("BENCH_SOAK_EVERY", 10_000));
  const sideNames = (Deno.env.get("BENCH_SOAK_SIDES") || "deno").split(",").map((s) => s.trim());
  const sides = SIDES.filter((s) => sideNames.includes(s));
  if (sides.length === 0) throw new Error(`BENCH_SOAK_SIDES names no shim (go, deno): ${sideNames.join(",")}`);
  const labDir = Deno.env.get("BENCH_LAB_DIR") || "/tmp/benchlab";
  const lab = await useLab({ dir: labDir });
  await lab.ensureImage(NS);
  await lab.cleanupNamespace(NS);
  const targets: Target[] = [];
  const date = new Date().toISOString();
  const load = Deno.loadavg() as [number, number, number];
  let results: SoakResults;
  try {
    for (const s of sides) targets.push(await connect(lab, s));
    progress(`soak: ${total} execs per shim (${warmup} warm-up), ${concurrency} in flight, shims ${sides.join(", ")}`);
    const soaked = await soak(targets, total, warmup, every, concurrency);
    results = { date, execs: total, warmup, concurrency, sides: soaked, bareDenoSpawnGrowthKiB: null, load };
  } finally {
    for (const t of targets) t.client.close();
    await lab.cleanupNamespace(NS).catch((e) => progress(`cleanup: ${e}`));
    if (Deno.env.get("BENCH_KEEP_LAB") !== "1") await stopLab({ dir: labDir });
  }
  if (Deno.env.get("BENCH_SOAK_BARE") !== "0") {
    progress(`bare deno: spawning ${total} children`);
    results.bareDenoSpawnGrowthKiB = await bareDenoSpawnGrowthKiB(total, warmup);
  }
  const out = Deno.env.get("BENCH_SOAK_OUT") || join(RESULTS_DIR, "soak.json");
  await Deno.mkdir(dirname(out), { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify(results, null, 2) + "\n");
  await formatFiles([out]);
  for (const s of results.sides) {
    const a = s.points[0], b = s.points.at(-1)!;
    console.log(
      `${s.side}: ${b.execs - a.execs} execs in ${s.seconds.toFixed(0)} s, ${s.failures} failed; ` +
        `RSS ${a.rssKiB} → ${b.rssKiB} KiB, PSS ${a.pssKiB} → ${b.pssKiB}, USS ${a.ussKiB} → ${b.ussKiB} ` +
        `(${((b.ussKiB - a.ussKiB) / 1024).toFixed(2)} MiB), fds ${a.fds} → ${b.fds}`,
    );
  }
  if (results.bareDenoSpawnGrowthKiB !== null) {
    console.log(`bare deno spawn growth: ${results.bareDenoSpawnGrowthKiB} KiB`);
  }
  // Only the default soak result belongs in the report.
  const shim = out === join(RESULTS_DIR, "soak.json")
    ? await Deno.readTextFile(join(RESULTS_DIR, "shim.json")).then(JSON.parse).catch(() => null)
    : null;
  if (shim) console.log(`report: ${await writeReport(shim as ShimBenchResults)}`);
  const ours = results.sides.find((s) => s.side === "deno");
  if (ours) {
    const growth = soakGrowthMiB(results)!;
    const fds = ours.points.at(-1)!.fds - ours.points[0].fds;
    const ok = growth < 2 && fds <= 0 && ours.failures === 0;
    console.log(
      `${ok ? "PASS" : "FAIL"}: our server's RSS grew ${growth.toFixed(2)} MiB (target < 2 MiB), fds ${
        fds > 0 ? `+${fds}` : "did not grow"
      }, ${ours.failures} failed execs`,
    );
    if (!ok) Deno.exit(1);
  }
}
