/**
 * Each Task RPC on its own, straight over ttrpc (no containerd, no ctr), for both shims side by side: the cost the
 * shim adds to every lifecycle step, which the `ctr` figures blur with containerd's own work.
 *
 * Per side a server is started the way containerd starts it (`start` in a scratch bundle of the lab, a per-run group
 * annotation) and an anchor `sleep` container is created and started in it, so the server stays up as on a real
 * node. Then per iteration, interleaved A/B/B/A, a new container (busybox `sleep`, a plain rootfs directory, no
 * stdio) goes through the RPCs containerd sends for `ctr run` plus an exec, each round trip timed from the client:
 * Create, Start, Exec (Start, Wait and Delete of the exec are not timed), State, Kill (SIGKILL), then Wait (not
 * timed) and Delete. At the end the anchors are killed and deleted and each server is asked to Shutdown.
 *
 * @module
 */
import type { Lab } from "../../tests/lab/mod.ts";
import { busyboxRootfs, makeBundle, TaskClient } from "../../tests/harness/shim.ts";
import { terminate } from "../../tests/lab/proc.ts";
import { encodeJsonAny, JSON_TYPE_URLS } from "../../src/proto/any.ts";
import { runTag } from "./ctr.ts";
import { findServer, isServerArgv, shimEnv, startAddress } from "./phase_start.ts";
import { mustTime, type Side } from "./procs.ts";
import { type AbSamples, RPC_METHODS, type RpcMethod } from "./results.ts";
import { abOrder } from "./stats.ts";

const NS = "rpcbench";
const GROUP_ANNOTATION = "io.containerd.runc.v2.group";
const WARMUP = 2;

const execSpec = encodeJsonAny(JSON_TYPE_URLS.process, {
  args: ["true"],
  cwd: "/",
  env: ["PATH=/bin:/usr/bin"],
  user: { uid: 0, gid: 0 },
});

/** One side's server and its anchor container. */
interface Served {
  side: Side;
  client: TaskClient;
  anchor: string;
  serverId: string;
}

/** Milliseconds of `f`'s round trip. */
async function time(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/**
 * A bundle for a `sleep` container `id` under `dir`, on the shared busybox rootfs. Only the anchor's bundle, where
 * `start` runs, gets the `log` FIFO with a reader ({@linkcode makeBundle}); the server never opens another's.
 */
async function createBundle(dir: string, id: string, group: string, anchor = false): Promise<string> {
  const annotations = { [GROUP_ANNOTATION]: group };
  const path = `${dir}/bundles/${id}`;
  if (anchor) return await makeBundle(dir, id, ["sleep", "1000000"], annotations, path, `${NS}/${id}`);
  await Deno.mkdir(path, { recursive: true });
  const spec = JSON.parse(await Deno.readTextFile(`${dir}/bundles/${group}-anchor/config.json`));
  spec.annotations = annotations;
  spec.linux.cgroupsPath = `/harness/${NS}/${id}`;
  await Deno.writeTextFile(`${path}/config.json`, JSON.stringify(spec));
  return path;
}

/** Starts `side`'s server through its `start` subcommand and runs the anchor container in it. */
async function serve(lab: Lab, side: Side, dir: string): Promise<Served> {
  const binary = side === "go" ? lab.goShimBinary : lab.shimBinary;
  const group = `rpc-${side}-${runTag()}`;
  const anchor = `${group}-anchor`;
  const bundle = await createBundle(dir, anchor, group, true);
  const env = shimEnv(lab, NS);
  const args = ["-namespace", NS, "-address", lab.address, "-publish-binary", lab.containerdBinary, "-id", anchor];
  const started = await mustTime(binary, [...args, "start"], { cwd: bundle, env, captureStdout: true });
  const client = await TaskClient.connect(startAddress(started.stdout), NS);
  await client.call("Create", { id: anchor, bundle, rootfs: [], terminal: false, stdin: "", stdout: "", stderr: "" });
  await client.call("Start", { id: anchor });
  return { side, client, anchor, serverId: anchor };
}

/** Kills and deletes `id` (errors ignored: cleanup). */
async function removeTask(c: TaskClient, id: string): Promise<void> {
  await c.call("Kill", { id, signal: 9, all: true }).catch(() => {});
  await c.call("Wait", { id }, 10_000).catch(() => {});
  await c.call("Delete", { id }).catch(() => {});
}

/**
 * Container `id` (its bundle at `bundle`, not created yet) through the RPCs containerd sends for `ctr run` plus an exec,
 * on `c`; returns each timed RPC's round trip in ms. Throws on the first failure (the caller cleans up).
 */
export async function timedRpcs(c: TaskClient, id: string, bundle: string): Promise<Record<RpcMethod, number>> {
  const t = {} as Record<RpcMethod, number>;
  t.Create = await time(() =>
    c.call("Create", { id, bundle, rootfs: [], terminal: false, stdin: "", stdout: "", stderr: "" })
  );
  t.Start = await time(() => c.call("Start", { id }));
  t.Exec = await time(() => c.call("Exec", { id, execId: "e1", spec: execSpec, terminal: false }));
  await c.call("Start", { id, execId: "e1" });
  await c.call("Wait", { id, execId: "e1" });
  await c.call("Delete", { id, execId: "e1" });
  t.State = await time(() => c.call("State", { id }));
  t.Kill = await time(() => c.call("Kill", { id, signal: 9 }));
  await c.call("Wait", { id });
  t.Delete = await time(() => c.call("Delete", { id }));
  return t;
}

/** One container through the timed RPCs; returns each RPC's round trip in ms. */
async function once(s: Served, dir: string, id: string, group: string): Promise<Record<RpcMethod, number>> {
  const bundle = await createBundle(dir, id, group);
  try {
    return await timedRpcs(s.client, id, bundle);
  } catch (e) {
    await removeTask(s.client, id);
    throw new Error(`${s.side}: ${e instanceof Error ? e.message : e}`);
  } finally {
    await Deno.remove(bundle, { recursive: true }).catch(() => {});
  }
}

/** Runs `n` interleaved iterations per side and returns every RPC's samples. */
export async function measureRpc(
  lab: Lab,
  n: number,
  progress: (msg: string) => void,
  warn: (msg: string) => void,
): Promise<Record<RpcMethod, AbSamples>> {
  const dir = `${lab.dir}/rpc`;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  await busyboxRootfs(dir);
  const out = Object.fromEntries(
    RPC_METHODS.map((m): [RpcMethod, AbSamples] => [m, { go: [], deno: [] }]),
  ) as Record<RpcMethod, AbSamples>;
  const served: Partial<Record<Side, Served>> = {};
  try {
    for (const side of ["go", "deno"] as const) served[side] = await serve(lab, side, dir);
    for (let i = 0; i < WARMUP + n; i++) {
      for (const side of abOrder<Side>(i, "go", "deno")) {
        const s = served[side]!;
        const t = await once(s, dir, `rpc-${side}-${runTag()}-${i}`, s.serverId.replace(/-anchor$/, ""));
        if (i >= WARMUP) { for (const m of RPC_METHODS) out[m][side].push(t[m]); }
      }
      if (i >= WARMUP && (i - WARMUP + 1) % 10 === 0) progress(`rpc ${i - WARMUP + 1}/${n}`);
    }
  } finally {
    for (const s of Object.values(served)) {
      await removeTask(s.client, s.anchor);
      await s.client.call("Shutdown", { id: s.anchor }).catch(() => {});
      s.client.close();
      // A server that did not take the Shutdown (e.g. something was left in it) is stopped by PID.
      const pid = await findServer(lab, s.anchor);
      if (pid !== null && !await terminate(pid, (argv) => isServerArgv(argv, lab, s.anchor), 5_000)) {
        warn(`${s.side}: rpc server ${pid} did not exit`);
      }
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return out;
}
