/**
 * The shim's own server, started by hand from built binaries (no containerd, no container), driven over its socket
 * with Task `Connect` calls, which answer without running runc: time from exec to "ready", the first call after
 * ready (connect + Connect), sequential Connect round trips right after it (a burst: the connection has not been
 * idle), then, after 1.5 s of idle (when connections in `reads: "auto"` move to Deno's reactor and Node
 * compatibility boots, see src/sys/unix_stream.ts; the shipped default stays on the poller), sequential round trips again (µs each; CPU of server and client per 10,000), the
 * CPU the server spent while idle, and its PSS. Several binaries (say, two builds) are measured alternately in one run, so they share the
 * machine's load. The client uses `Deno.Conn`. Reported, not asserted.
 *
 * @example
 * ```sh
 * deno task build   # then, for a before/after, build the other tree too
 * deno run --allow-all bench/ttrpc_shim_rtt.ts new=dist/containerd-shim-deno-v2 old=/tmp/old/dist/containerd-shim-deno-v2
 * ```
 * @module
 */
import { Client } from "../src/ttrpc/client.ts";
import { task } from "../src/proto/mod.ts";
import { firstLineReady } from "./shim/procs.ts";

const TASK = "containerd.task.v2.Task";
const CLK_TCK = 100;

function cpuMs(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 1000 / CLK_TCK;
}

function pssKiB(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
  return Number(s.match(/^Pss:\s+(\d+)/m)![1]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

interface Sample {
  readyMs: number;
  firstCallMs: number;
  burstUs: number;
  idleCpu: number;
  rttUs: number;
  serverCpu: number;
  clientCpu: number;
  pss: number;
}

async function once(binary: string, calls: number): Promise<Sample> {
  const dir = await Deno.makeTempDir({ prefix: "shim-rtt-" });
  const sock = `${dir}/s.sock`;
  const t0 = performance.now();
  const child = new Deno.Command(binary, {
    args: ["-namespace", "bench", "-id", "rtt", "-address", "/nonexistent.sock", "-socket", sock],
    cwd: dir,
    env: { CONTAINERD_SHIM_DENO_RESERVATION_MS: "600000" },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const ready = await firstLineReady(child);
    const readyMs = performance.now() - t0;
    if (!ready) throw new Error(`${binary}: no ready line`);
    const req = task.ConnectRequest.encode({ id: "rtt" }).finish();
    const t1 = performance.now();
    const client = await Client.connectUnix(sock);
    await client.call(TASK, "Connect", req);
    const firstCallMs = performance.now() - t1;
    const burst = 1000, tb = performance.now();
    for (let i = 0; i < burst; i++) await client.call(TASK, "Connect", req);
    const burstUs = (performance.now() - tb) * 1000 / burst;
    const i0 = cpuMs(child.pid);
    await new Promise((r) => setTimeout(r, 1500));
    const idleCpu = cpuMs(child.pid) - i0;
    const s0 = cpuMs(child.pid), c0 = cpuMs("self"), t2 = performance.now();
    for (let i = 0; i < calls; i++) await client.call(TASK, "Connect", req);
    const wall = performance.now() - t2;
    const sample = {
      readyMs,
      firstCallMs,
      burstUs,
      idleCpu,
      rttUs: wall * 1000 / calls,
      serverCpu: (cpuMs(child.pid) - s0) * 10_000 / calls,
      clientCpu: (cpuMs("self") - c0) * 10_000 / calls,
      pss: 0,
    };
    await new Promise((r) => setTimeout(r, 1000));
    sample.pss = pssKiB(child.pid);
    client.close();
    return sample;
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

const builds = Deno.args.map((a) => {
  const [name, bin] = a.split("=", 2);
  return [name, bin.startsWith("/") ? bin : `${Deno.cwd()}/${bin}`] as [string, string];
});
if (!builds.length) throw new Error("usage: ttrpc_shim_rtt.ts name=binary [name=binary...]");
const rounds = Number(Deno.env.get("BENCH_RTT_ROUNDS") ?? 5);
const calls = Number(Deno.env.get("BENCH_RTT_CALLS") ?? 5000);
const samples = new Map<string, Sample[]>(builds.map(([n]) => [n, []]));
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < builds.length; k++) {
    const [name, bin] = builds[(r + k) % builds.length];
    samples.get(name)!.push(await once(bin, calls));
  }
}
const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
console.log(
  `# shim server by hand, ${rounds} runs each, ${calls} sequential Task.Connect per run; load ${load}; medians`,
);
console.log(
  "| build | exec → ready ms | first call ms | µs per Connect, burst after ready | server CPU ms in 1.5 s idle | " +
    "µs per Connect after idle | server CPU ms / 10k | client CPU ms / 10k | PSS MiB |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const [name, s] of samples) {
  const m = (f: (x: Sample) => number, d = 1) => median(s.map(f)).toFixed(d);
  console.log(
    `| ${name} | ${m((x) => x.readyMs)} | ${m((x) => x.firstCallMs)} | ${m((x) => x.burstUs)} | ` +
      `${m((x) => x.idleCpu, 0)} | ${m((x) => x.rttUs)} | ${m((x) => x.serverCpu, 0)} | ` +
      `${m((x) => x.clientCpu, 0)} | ${m((x) => x.pss / 1024)} |`,
  );
}
