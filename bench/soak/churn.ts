/**
 * `deno task soak:churn`: memory of a node-grouped server over many sequential container lifecycles (issue 14.4).
 *
 * One keeper container holds the node server up; then `BENCH_CHURN_RUNS` times `ctr run --rm … true` goes through the
 * same server (Create, Start, Wait, Delete, events). The server's RSS is read before the first lifecycle and after
 * every one; the result is its start, peak, end and peak − start (the bound: ≤ +10 MiB over 300 lifecycles). Not part
 * of the default tests: it takes minutes and holds real containers (run it under `flock /tmp/shim-e2e.lock`).
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `BENCH_CHURN_RUNS` | 300 | lifecycles |
 * | `BENCH_CHURN_OUT` | unset | also write the samples as JSON there |
 * | `BENCH_CHURN_STATE` | 0 | `N`: every N lifecycles SIGUSR2 the server (it logs its JS heap, external memory, RSS) and print those lines |
 * | `BENCH_LAB_DIR` | the test lab (`<repo>/.lab`) | the lab |
 *
 * @example
 * ```sh
 * deno task build && flock -o /tmp/shim-e2e.lock deno task soak:churn
 * ```
 * @module
 */
import { type Lab, memoryOf, useLab } from "../../tests/lab/mod.ts";
import { readCmdline } from "../../tests/lab/proc.ts";

const NS = "bench-churn";
const RUNTIME = "io.containerd.deno.v2";

/** What one churn measured (KiB). */
export interface ChurnResult {
  runs: number;
  startKiB: number;
  peakKiB: number;
  endKiB: number;
  /** RSS after each lifecycle. */
  samples: number[];
  seconds: number;
}

async function nodeServer(lab: Lab): Promise<number> {
  const out: number[] = [];
  for (const pid of await lab.shimPids()) if ((await readCmdline(pid) ?? []).includes("-socket")) out.push(pid);
  if (out.length !== 1) throw new Error(`expected one node server, found ${out.length}`);
  return out[0];
}

async function rssKiB(pid: number): Promise<number> {
  const m = await memoryOf(pid);
  if (!m) throw new Error(`node server ${pid} is gone`);
  return m.rssKiB;
}

/** Runs the churn against `lab`; the namespace is cleaned before and after. */
export async function churn(lab: Lab, runs: number, onProgress?: (i: number, kib: number, pid: number) => void) {
  await lab.ensureImage(NS);
  await lab.cleanupNamespace(NS);
  const config = `${lab.dir}/churn-node-grouping.json`;
  await Deno.writeTextFile(config, JSON.stringify({ grouping: "node" }));
  const rt = ["--runtime", RUNTIME, "--runtime-config-path", config];
  try {
    const keeper = await lab.ctr(["run", "-d", ...rt, lab.image, "churn-keeper", "sleep", "1000000"], {
      namespace: NS,
    });
    if (keeper.code !== 0) throw new Error(`keeper: ${keeper.stderr}`);
    const pid = await nodeServer(lab);
    // The start is the settled server: its heap keeper collects the boot's garbage once it has been quiet for 2 s
    // (src/shim/heap.ts). Read before that, the start held ~10 MiB of garbage and hid most of the growth.
    await new Promise((r) => setTimeout(r, 3500));
    const startKiB = await rssKiB(pid);
    const samples: number[] = [];
    const tag = Date.now().toString(36).slice(-5); // ids unique per run: runc's state is host-wide
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) {
      const r = await lab.ctr(["run", "--rm", ...rt, lab.image, `churn-${tag}-${i}`, "true"], { namespace: NS });
      if (r.code !== 0) throw new Error(`lifecycle ${i}: ${r.stderr}`);
      samples.push(await rssKiB(pid));
      onProgress?.(i, samples.at(-1)!, pid);
    }
    const seconds = (performance.now() - t0) / 1000;
    if (await nodeServer(lab) !== pid) throw new Error("the node server changed during the churn");
    return { runs, startKiB, peakKiB: Math.max(...samples), endKiB: samples.at(-1)!, samples, seconds };
  } finally {
    await lab.cleanupNamespace(NS);
  }
}

if (import.meta.main) {
  const runs = Number(Deno.env.get("BENCH_CHURN_RUNS") || 300);
  const dir = Deno.env.get("BENCH_LAB_DIR") || undefined;
  const lab = await useLab(dir ? { dir } : {});
  const mib = (k: number) => (k / 1024).toFixed(1);
  const stateEvery = Number(Deno.env.get("BENCH_CHURN_STATE") || 0);
  const r = await churn(lab, runs, (i, k, pid) => {
    if ((i + 1) % 25 === 0) console.error(`${i + 1}/${runs}: RSS ${mib(k)} MiB`);
    if (stateEvery > 0 && (i + 1) % stateEvery === 0) Deno.kill(pid, "SIGUSR2");
  });
  if (stateEvery > 0) {
    for (const line of (await lab.log()).split("\n")) if (line.includes("shim state")) console.log(line);
  }
  console.log(
    `node server over ${r.runs} lifecycles (${r.seconds.toFixed(0)} s): RSS start ${mib(r.startKiB)} MiB, ` +
      `peak ${mib(r.peakKiB)} MiB (+${mib(r.peakKiB - r.startKiB)}), end ${mib(r.endKiB)} MiB`,
  );
  const out = Deno.env.get("BENCH_CHURN_OUT");
  if (out) await Deno.writeTextFile(out, JSON.stringify(r, null, 2) + "\n");
}
