/**
 * `start` reusing a running server, for two builds of our shim side by side and against D (an empty `deno run` of the
 * same runtime with the shim's flags, phase_floor.ts): interleaved D/A/B/L, D/B/A/L, each build against a server of
 * its own that has already answered a few `start`s. What the benchmark's "start, server already runs" row measures
 * against a server ~100 ms old, here against a warm one, and between two builds, so that a change to `start` is judged
 * within one run. L is A's launcher running the empty script: D plus the `/bin/sh` step of the bundle flavour. No
 * containerd and no container: `start` only needs a bundle with a `config.json`.
 *
 * @example
 * ```sh
 * deno run -A tools/build.ts --out /tmp/a && git stash && deno run -A tools/build.ts --out /tmp/b && git stash pop
 * deno run -A bench/ab_start.ts /tmp/a /tmp/b 40
 * ```
 * @module
 */
import { resolve } from "node:path";
import { floorCommand, writeEmptyLauncher } from "./shim/phase_floor.ts";
import { abOrder, quantile } from "./shim/stats.ts";
import { startAddress } from "./shim/phase_start.ts";
import { mustTime } from "./shim/procs.ts";

const NS = "abstart";
const GROUP_ANNOTATION = "io.containerd.runc.v2.group";
const WARMUP = 3;
const median = (xs: number[]) => quantile([...xs].sort((x, y) => x - y), 0.5);

const [distA, distB] = Deno.args.slice(0, 2).map((d) => resolve(d));
if (!distA || !distB) throw new Error("usage: ab_start.ts <distA> <distB> [pairs]");
const pairs = Number(Deno.args[2] ?? 40);
const dir = await Deno.makeTempDir({ prefix: "abstart-" });
const servers: string[] = [];
// containerd's socket exists where GRPC_ADDRESS points: `start` keys its containerd version cache by it.
const containerdSocket = Deno.listen({ transport: "unix", path: `${dir}/containerd.sock` });
try {
  const spec = new Deno.Command("runc", { args: ["spec", "--bundle", dir] });
  if (!(await spec.output()).success) throw new Error("runc spec failed");
  const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  // A bundle, and so a pod, per build: pod groups do not carry the build, and a build's `start` would otherwise
  // reserve on the other build's server.
  const bundles = { [distA]: `${dir}/a`, [distB]: `${dir}/b` };
  for (const [k, bundle] of Object.entries({ a: bundles[distA], b: bundles[distB] })) {
    await Deno.mkdir(bundle);
    config.annotations = { [GROUP_ANNOTATION]: `abstart-${Deno.pid}-${k}` };
    await Deno.writeTextFile(`${bundle}/config.json`, JSON.stringify(config));
  }
  const address = `${dir}/containerd.sock`;
  const env = { GRPC_ADDRESS: address, TTRPC_ADDRESS: `${address}.ttrpc`, NAMESPACE: NS, MAX_SHIM_VERSION: "2" };
  const start = (dist: string, id: string) =>
    mustTime(`${dist}/containerd-shim-deno-v2`, ["-namespace", NS, "-address", address, "-id", id, "start"], {
      cwd: bundles[dist],
      env,
      captureStdout: true,
    });
  const info = JSON.parse(await Deno.readTextFile(`${distA}/BUILD-INFO.json`));
  // L: A's launcher running the empty script (written with it) instead of a command's bundle, i.e. D plus the bundle
  // flavour's `/bin/sh` step, which a compiled shim does not have.
  const emptyLauncher = await writeEmptyLauncher(`${distA}/containerd-shim-deno-v2`, dir);
  if (emptyLauncher === null) throw new Error(`${distA} has no launcher script (a compiled shim?)`);
  const d = floorCommand({ flavour: "bundle", flags: info.flags }, `${dir}/empty.js`, distA);
  const runs: Record<string, () => Promise<number>> = {
    A: async () => (await start(distA, "reuse")).ms,
    B: async () => (await start(distB, "reuse")).ms,
    D: async () => (await mustTime(d.cmd, d.args, { cwd: dir, env: d.env })).ms,
    L: async () => (await mustTime(emptyLauncher, [], { cwd: dir, env })).ms,
  };
  // Each build boots a server of its own, for its own pod.
  for (const dist of [distA, distB]) servers.push(startAddress((await start(dist, "boot")).stdout));
  const ms: Record<string, number[]> = { A: [], B: [], D: [], L: [] };
  for (let i = 0; i < WARMUP + pairs; i++) {
    for (const side of abOrder<string>(i, "A", "B").flatMap((s, k) => k === 0 ? ["D", s] : [s, "L"])) {
      const t = await runs[side]();
      if (i >= WARMUP) ms[side].push(t);
    }
  }
  const ratio = (x: string, y: string) => median(ms[x].map((v, i) => v / ms[y][i]));
  console.log(
    `start reusing a warm server, ${pairs} rounds (medians, ms): D ${median(ms.D).toFixed(1)}, ` +
      `A ${median(ms.A).toFixed(1)}, B ${median(ms.B).toFixed(1)}, L ${median(ms.L).toFixed(1)}`,
  );
  console.log(
    `pair ratios: A/D ${ratio("A", "D").toFixed(3)}, B/D ${ratio("B", "D").toFixed(3)}, ` +
      `B/A ${ratio("B", "A").toFixed(3)}, L/D ${ratio("L", "D").toFixed(3)}`,
  );
} finally {
  containerdSocket.close();
  // The servers wait for a Create that never comes: stop them (their sockets name them).
  for (const socket of servers) {
    await new Deno.Command("pkill", { args: ["-f", "--", `-socket ${socket}`] }).output().catch(() => {});
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
