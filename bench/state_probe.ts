/**
 * One server of each shim (ours from a dist, the Go shim), one `sleep` container in each, then State calls back to
 * back or with a pause before each, interleaved, timed from the client. Prints each side's round trip and its
 * server's CPU per State, thread by thread (from /proc, 10 ms ticks: use a few thousand calls), and the server pids so
 * that `perf` or `strace` can be attached (`STATE_PROBE_HOLD=1` waits for a line on stdin before and after the loop).
 * No containerd: the harness's fake events endpoint (as bench/ab_server.ts). What it showed is in bench/analysis.md,
 * session 23.
 *
 * ```sh
 * deno run -A bench/state_probe.ts dist 2000 0      # 2,000 States per side, no pause
 * deno run -A bench/state_probe.ts dist 300 5       # 5 ms of quiet before each State
 * (sleep 5; echo; sleep 20; echo) | STATE_PROBE_HOLD=1 deno run -A bench/state_probe.ts dist 8000 0
 * ```
 * @module
 */
import { resolve } from "node:path";
import { busyboxRootfs, FakeEvents, makeBundle, TaskClient } from "../tests/harness/shim.ts";
import { startCommand } from "./soak/rpc.ts";
import { quantile } from "./shim/stats.ts";

const [distArg, nArg, pauseArg] = Deno.args;
const dist = resolve(distArg ?? "dist");
const n = Number(nArg ?? 1000), pause = Number(pauseArg ?? 0);
const dir = await Deno.makeTempDir({ prefix: "state-probe-" });
const events = FakeEvents.start(dir);
await Deno.writeTextFile(`${dir}/no-spares.json`, JSON.stringify({ spareSeconds: 0 }));
await busyboxRootfs(dir);
const sides = { go: "/usr/bin/containerd-shim-runc-v2", deno: `${dist}/containerd-shim-deno-v2` };
const clients: Record<string, { c: TaskClient; id: string; pid: number }> = {};
const hold = Deno.env.get("STATE_PROBE_HOLD") === "1";
const enter = async () => {
  const buf = new Uint8Array(16);
  await Deno.stdin.read(buf);
};
try {
  for (const [side, bin] of Object.entries(sides)) {
    const id = `probe-${side}-${Deno.pid}`;
    const bundle = await makeBundle(dir, id, ["sleep", "100000"]);
    const out = await startCommand(bin, bundle, id, "probe", dir, events.path, {
      CONTAINERD_SHIM_DENO_CONFIG: `${dir}/no-spares.json`,
    }).output();
    if (!out.success) throw new Error(`${side} start: ${new TextDecoder().decode(out.stderr)}`);
    const c = await TaskClient.connect(new TextDecoder().decode(out.stdout).trim(), "probe");
    const pid = (await c.call("Connect", { id })).shimPid;
    await c.call("Create", { id, bundle });
    await c.call("Start", { id });
    clients[side] = { c, id, pid };
  }
  console.log(Object.entries(clients).map(([s, v]) => `${s} ${v.pid}`).join(", "));
  for (const { c, id } of Object.values(clients)) for (let i = 0; i < 50; i++) await c.call("State", { id });
  if (hold) {
    console.log("attach now; Enter to run");
    await enter();
  }
  const t: Record<string, number[]> = { go: [], deno: [] };
  const threads = async (pid: number) => {
    const out: Record<string, [number, number]> = {};
    for await (const e of Deno.readDir(`/proc/${pid}/task`)) {
      const text = await Deno.readTextFile(`/proc/${pid}/task/${e.name}/stat`);
      const name = text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
      const f = text.slice(text.lastIndexOf(") ") + 2).split(" ");
      out[`${e.name} ${name}`] = [Number(f[11]) * 10_000, Number(f[12]) * 10_000];
    }
    return out;
  };
  const total = (th: Record<string, [number, number]>) => Object.values(th).reduce((a, [u, s]) => a + u + s, 0);
  const th0 = { go: await threads(clients.go.pid), deno: await threads(clients.deno.pid) };
  for (let i = 0; i < n; i++) {
    for (const side of i % 2 ? ["go", "deno"] : ["deno", "go"]) {
      const { c, id } = clients[side];
      if (pause) await new Promise((r) => setTimeout(r, pause));
      const t0 = performance.now();
      await c.call("State", { id });
      t[side].push((performance.now() - t0) * 1000);
    }
  }
  const cpuPer = { go: 0, deno: 0 };
  for (const side of ["go", "deno"] as const) {
    const th1 = await threads(clients[side].pid);
    cpuPer[side] = (total(th1) - total(th0[side])) / n;
    const rows = Object.entries(th1).map(([k, [u, s]]) => {
      const [u0, s0] = th0[side][k] ?? [0, 0];
      return `${k}: user ${((u - u0) / n).toFixed(0)} sys ${((s - s0) / n).toFixed(0)}`;
    }).filter((r) => !/user 0 sys 0$/.test(r));
    console.log(`${side} per State (µs) by thread: ${rows.join("; ")}`);
  }
  const q = (xs: number[], p: number) => quantile([...xs].sort((a, b) => a - b), p).toFixed(0);
  for (const side of ["go", "deno"]) {
    console.log(
      `${side}: State µs p10 ${q(t[side], 0.1)} median ${q(t[side], 0.5)} p90 ${
        q(t[side], 0.9)
      }; server CPU per State ${cpuPer[side as "go"].toFixed(0)} µs`,
    );
  }
  if (hold) {
    console.log("Enter to finish");
    await enter();
  }
} finally {
  for (const { c, id } of Object.values(clients)) {
    await c.call("Kill", { id, signal: 9 }).catch(() => {});
    await c.call("Wait", { id }).catch(() => {});
    await c.call("Delete", { id }).catch(() => {});
    await c.call("Shutdown", { id }).catch(() => {});
  }
  events.close();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
Deno.exit(0);
