/**
 * Two builds of our shim side by side, interleaved A/B/B/A: a per-pod `start` that boots a server (exec → exit), the
 * first Task RPC it answers (counted from the same exec), and the server's memory with one running container, after it
 * went quiet (the heap keeper collects 2 s after the last call). No containerd: the harness plays its part (a fake
 * events endpoint, a busybox bundle), so the figures are the servers' alone. Needs root, runc and busybox-static, and
 * runs containers: under the e2e lock. `--start-only`: no container, only `start` and the first RPC (then Shutdown);
 * `--no-memory`: the container's Create and Start without the wait for a memory reading.
 *
 * @example
 * ```sh
 * deno task build --out /tmp/a && git stash && deno task build --out /tmp/b && git stash pop
 * flock -o /tmp/shim-e2e.lock deno run -A bench/ab_server.ts /tmp/a /tmp/b 10
 * ```
 * @module
 */
import { resolve } from "node:path";
import { busyboxRootfs, FakeEvents, makeBundle, TaskClient } from "../tests/harness/shim.ts";
import { abOrder, quantile } from "./shim/stats.ts";
import { startCommand } from "./soak/rpc.ts";

const median = (xs: number[]) => quantile([...xs].sort((x, y) => x - y), 0.5);

/** Private_Dirty and Pss (KiB) of `pid` from smaps_rollup. */
async function memory(pid: number): Promise<{ privateDirty: number; pss: number }> {
  const text = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`);
  const field = (name: string) => Number(text.match(new RegExp(`^${name}:\\s+(\\d+)`, "m"))?.[1] ?? NaN);
  return { privateDirty: field("Private_Dirty"), pss: field("Pss") };
}

interface Sample {
  startMs: number;
  /** From `start`'s exit to the server's first answer: what loading the serving code after "ready" costs. */
  afterStartMs: number;
  firstRpcMs: number;
  /** The first container's Create and Start. */
  createStartMs: number;
  privateDirtyKiB: number;
  pssKiB: number;
}

const SETTLE_MS = 3500;

async function once(
  dist: string,
  dir: string,
  events: FakeEvents,
  tag: string,
  mode: { startOnly: boolean; noMemory: boolean },
): Promise<Sample> {
  const ns = "abserver";
  const id = `ab-${tag}`;
  const bundle = await makeBundle(dir, id, ["sleep", "100000"]);
  const t0 = performance.now();
  const child = startCommand(`${dist}/containerd-shim-deno-v2`, bundle, id, ns, dir, events.path, {
    CONTAINERD_SHIM_DENO_CONFIG: `${dir}/no-spares.json`,
  }).spawn();
  const out = await child.output();
  const startMs = performance.now() - t0;
  if (!out.success) throw new Error(`start failed: ${new TextDecoder().decode(out.stderr)}`);
  const client = await TaskClient.connect(new TextDecoder().decode(out.stdout).trim(), ns);
  try {
    const pid = (await client.call("Connect", { id })).shimPid;
    const firstRpcMs = performance.now() - t0;
    if (mode.startOnly) {
      await client.call("Shutdown", { id }).catch(() => {});
      const nan = { createStartMs: NaN, privateDirtyKiB: NaN, pssKiB: NaN };
      return { startMs, afterStartMs: firstRpcMs - startMs, firstRpcMs, ...nan };
    }
    const t1 = performance.now();
    await client.call("Create", { id, bundle });
    await client.call("Start", { id });
    const createStartMs = performance.now() - t1;
    if (!mode.noMemory) await new Promise((r) => setTimeout(r, SETTLE_MS));
    const mem = mode.noMemory ? { privateDirty: NaN, pss: NaN } : await memory(pid);
    await client.call("Kill", { id, signal: 9 });
    await client.call("Wait", { id });
    await client.call("Delete", { id });
    await client.call("Shutdown", { id }).catch(() => {});
    for (let i = 0; i < 500 && (await Deno.stat(`/proc/${pid}`).catch(() => null)); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const afterStartMs = firstRpcMs - startMs;
    return { startMs, afterStartMs, firstRpcMs, createStartMs, privateDirtyKiB: mem.privateDirty, pssKiB: mem.pss };
  } finally {
    client.close();
  }
}

if (import.meta.main) {
  const mode = { startOnly: Deno.args.includes("--start-only"), noMemory: Deno.args.includes("--no-memory") };
  const [a, b, nArg] = Deno.args.filter((x) => !x.startsWith("--")).map((x, i) => i < 2 ? resolve(x) : x);
  if (!a || !b) throw new Error("usage: ab_server.ts [--start-only | --no-memory] <dist A> <dist B> [pairs]");
  const n = Number(nArg ?? 10);
  const dir = await Deno.makeTempDir({ prefix: "ab-server-" });
  const events = FakeEvents.start(dir);
  // Every sample is a server's boot: a spare left by the previous sample of the same build would take the next pod
  // (src/shim/spare.ts), with neither a boot to time nor a fresh server's memory.
  await Deno.writeTextFile(`${dir}/no-spares.json`, JSON.stringify({ spareSeconds: 0 }));
  const samples: Record<string, Sample[]> = { [a]: [], [b]: [] };
  try {
    await busyboxRootfs(dir);
    for (let i = -1; i < n; i++) {
      for (const side of abOrder(i + 1, a, b)) {
        const s = await once(side, dir, events, `${i + 1}-${side === a ? "a" : "b"}`, mode);
        if (i >= 0) samples[side].push(s); // the first pair warms caches
        console.error(`${i} ${side === a ? "A" : "B"} ${JSON.stringify(s)}`);
      }
    }
  } finally {
    events.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const row = (k: keyof Sample) => {
    const ma = median(samples[a].map((s) => s[k])), mb = median(samples[b].map((s) => s[k]));
    const pairs = median(samples[a].map((s, i) => samples[b][i][k] / s[k]));
    return `| ${k} | ${ma.toFixed(1)} | ${mb.toFixed(1)} | ${(mb / ma).toFixed(3)} | ${pairs.toFixed(3)} |`;
  };
  console.log(`A = ${a}, B = ${b}, ${n} interleaved pairs, load ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  console.log("| metric | median A | median B | B/A | median of pair ratios |");
  console.log("|---|---|---|---|---|");
  for (const k of ["startMs", "afterStartMs", "firstRpcMs", "createStartMs", "privateDirtyKiB", "pssKiB"] as const) {
    console.log(row(k));
  }
  // The harness's log readers end with their fifo's last writer; one that never saw a writer would hold the process.
  Deno.exit(0);
}
