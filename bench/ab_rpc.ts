/**
 * Two builds of our shim side by side on the Task RPCs that run runc (Create, Start, Kill, Delete) and two that do not
 * (Exec, State), interleaved A/B/B/A, each against its own running server (started the way containerd starts it, one
 * anchor `sleep` container kept running). No containerd: the harness plays its part. What `BENCH_PHASES=rpc` measures
 * against the Go shim, here between two of our builds, so that a change to the RPC path is judged within one run.
 * Needs root, runc and busybox-static, and runs containers: under the e2e lock.
 *
 * @example
 * ```sh
 * deno task build --out /tmp/a && git stash && deno task build --out /tmp/b && git stash pop
 * flock -o /tmp/shim-e2e.lock deno run -A bench/ab_rpc.ts /tmp/a /tmp/b 30
 * ```
 * @module
 */
import { resolve } from "node:path";
import { busyboxRootfs, FakeEvents, makeBundle, TaskClient } from "../tests/harness/shim.ts";
import { timedRpcs } from "./shim/phase_rpc.ts";
import { RPC_METHODS, type RpcMethod } from "./shim/results.ts";
import { abOrder, quantile } from "./shim/stats.ts";
import { startCommand } from "./soak/rpc.ts";

const median = (xs: number[]) => quantile([...xs].sort((x, y) => x - y), 0.5);
const NS = "abrpc";

interface Served {
  client: TaskClient;
  anchor: string;
}

async function serve(dist: string, dir: string, events: FakeEvents, tag: string): Promise<Served> {
  const anchor = `anchor-${tag}`;
  const bundle = await makeBundle(dir, anchor, ["sleep", "100000"]);
  const out = await startCommand(`${dist}/containerd-shim-deno-v2`, bundle, anchor, NS, dir, events.path, {
    CONTAINERD_SHIM_DENO_CONFIG: `${dir}/shim.json`,
  }).output();
  if (!out.success) throw new Error(`start failed: ${new TextDecoder().decode(out.stderr)}`);
  const client = await TaskClient.connect(new TextDecoder().decode(out.stdout).trim(), NS);
  await client.call("Create", { id: anchor, bundle });
  await client.call("Start", { id: anchor });
  return { client, anchor };
}

/** A bundle for `id` from the anchor's config (no log fifo: the server writes only to the anchor's). */
async function bundleFor(dir: string, s: Served, id: string): Promise<string> {
  const path = `${dir}/bundles/${id}`;
  await Deno.mkdir(path, { recursive: true });
  const spec = JSON.parse(await Deno.readTextFile(`${dir}/bundles/${s.anchor}/config.json`));
  spec.linux.cgroupsPath = `/harness/${id}`;
  await Deno.writeTextFile(`${path}/config.json`, JSON.stringify(spec));
  return path;
}

async function once(s: Served, dir: string, id: string): Promise<Record<RpcMethod, number>> {
  const bundle = await bundleFor(dir, s, id);
  try {
    return await timedRpcs(s.client, id, bundle);
  } finally {
    await Deno.remove(bundle, { recursive: true }).catch(() => {});
  }
}

async function stop(s: Served): Promise<void> {
  await s.client.call("Kill", { id: s.anchor, signal: 9 }).catch(() => {});
  await s.client.call("Wait", { id: s.anchor }).catch(() => {});
  await s.client.call("Delete", { id: s.anchor }).catch(() => {});
  await s.client.call("Shutdown", { id: s.anchor }).catch(() => {});
  s.client.close();
}

if (import.meta.main) {
  const [a, b] = Deno.args.slice(0, 2).map((d) => resolve(d)); // the shims run with their bundles as cwd
  const nArg = Deno.args[2];
  if (!a || !b) throw new Error("usage: ab_rpc.ts <dist A> <dist B> [iterations]");
  const n = Number(nArg ?? 20);
  const dir = await Deno.makeTempDir({ prefix: "ab-rpc-" });
  await Deno.writeTextFile(`${dir}/shim.json`, JSON.stringify({ spareSeconds: 0 }));
  const events = FakeEvents.start(dir);
  const served: Record<string, Served> = {};
  const samples: Record<string, Record<RpcMethod, number>[]> = { [a]: [], [b]: [] };
  try {
    await busyboxRootfs(dir);
    served[a] = await serve(a, dir, events, "a");
    served[b] = await serve(b, dir, events, "b");
    for (let i = -2; i < n; i++) {
      for (const side of abOrder(i + 2, a, b)) {
        const t = await once(served[side], dir, `c${i + 2}-${side === a ? "a" : "b"}`);
        if (i >= 0) samples[side].push(t); // two rounds warm both servers
      }
    }
  } finally {
    for (const s of Object.values(served)) await stop(s);
    events.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  console.log(`A = ${a}, B = ${b}, ${n} interleaved pairs, load ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  console.log("| RPC | median A ms | median B ms | B/A | median of pair ratios |");
  console.log("|---|---|---|---|---|");
  for (const m of RPC_METHODS) {
    const ma = median(samples[a].map((s) => s[m])), mb = median(samples[b].map((s) => s[m]));
    const pairs = median(samples[a].map((s, i) => samples[b][i][m] / s[m]));
    console.log(`| ${m} | ${ma.toFixed(2)} | ${mb.toFixed(2)} | ${(mb / ma).toFixed(3)} | ${pairs.toFixed(3)} |`);
  }
  Deno.exit(0);
}
