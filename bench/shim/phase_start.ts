/**
 * The `start` subcommand on its own (host-lab.md §8.4 "isolated"): each shim binary is run by hand, as containerd
 * would run it, in a scratch bundle (a `runc spec` config.json carrying a per-iteration group annotation, and a `log`
 * FIFO with a reader), against the lab's addresses. Per iteration and side:
 *
 * 1. `start` for a new group: it must bring up the group's server (exec → exit is recorded);
 * 2. the first Task RPC answered by that server, counted from the exec of step 1 (the Go `start` binds the socket and
 *    returns before its daemon serves; ours returns once its server is serving, so only this figure is like for like);
 * 3. a second `start` with the same group annotation: the server already runs, `start` only finds it;
 * 4. the server is stopped with SIGTERM by PID, after checking its cmdline, and waited for;
 * 5. `delete` for the first container in the same bundle (what containerd runs after every task: the server is gone
 *    and runc keeps no state for the id by then; the bundle holds what each side's server leaves after Delete),
 *    exec → exit.
 *
 * Before each iteration D (an empty `deno run` like ours, phase_floor.ts) is timed too: `start` and `delete` are judged
 * against the D of their own iterations. So is L, our launcher running an empty script, for the report: how much of
 * D's multiple is the bundle flavour's `/bin/sh` step.
 *
 * @module
 */
import { dirname } from "node:path";
import type { Lab } from "../../tests/lab/mod.ts";
import { readCmdline, terminate } from "../../tests/lab/proc.ts";
import { Client } from "../../src/ttrpc/client.ts";
import { isClosedError, TtrpcError } from "../../src/ttrpc/status.ts";
import { runTag } from "./ctr.ts";
import { emptyDenoRunner, emptyLauncherRunner } from "./phase_floor.ts";
import { mustTime, type Side } from "./procs.ts";
import type { StartSamples } from "./results.ts";
import { abOrder } from "./stats.ts";
import { ROOTFS_UNMOUNTED_FILE } from "../../src/task/bundle_files.ts";

const NS = "isobench";
const GROUP_ANNOTATION = "io.containerd.runc.v2.group";
const WARMUP = 2;

/** A scratch bundle of one side with its log reader. */
interface Bundle {
  dir: string;
  spec: Record<string, unknown>;
  reader: Deno.ChildProcess;
}

async function makeBundle(dir: string): Promise<Bundle> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  await mustTime("runc", ["spec", "--bundle", dir]);
  await mustTime("mkfifo", [`${dir}/log`]);
  // `<>` opens the FIFO read-write, so the reader never sees EOF when one server closes it and the next opens it.
  const reader = new Deno.Command("sh", {
    args: ["-c", "exec cat <>log >>shim.log"],
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const spec = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  return { dir, spec, reader };
}

async function closeBundle(b: Bundle): Promise<void> {
  try {
    b.reader.kill("SIGKILL");
  } catch { /* already gone */ }
  await b.reader.status;
}

/**
 * The socket path in what `start` printed: a plain `unix://…` address (Task API v2), or the bootstrap JSON
 * `{"version":3,"address":"unix://…","protocol":"ttrpc"}` that shims of containerd 2.x print.
 */
export function startAddress(stdout: string): string {
  const text = stdout.trim();
  const address = text.startsWith("{") ? String(JSON.parse(text).address ?? "") : text;
  if (!address.startsWith("unix://")) throw new Error(`start printed no unix address: ${JSON.stringify(text)}`);
  return address.slice("unix://".length);
}

/** Time (ms) until the server at `address` answers any Task RPC (an error status counts: it was served). */
async function timeToAnswer(address: string, timeoutMs = 10_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    let client: Client | undefined;
    try {
      client = await Client.connectUnix(address);
      await client.call("containerd.task.v2.Task", "State", new Uint8Array(), {
        timeoutMs: 2_000,
        metadata: { "containerd-namespace-ttrpc": NS },
      });
      return performance.now() - t0;
    } catch (e) {
      if (e instanceof TtrpcError && !isClosedError(e)) return performance.now() - t0;
      if (performance.now() - t0 > timeoutMs) throw new Error(`no answer from ${address}: ${e}`);
      await new Promise((r) => setTimeout(r, 1));
    } finally {
      client?.close();
    }
  }
}

/**
 * The environment the lab's containerd gives a shim's `start` in `namespace` (both shims get the same): containerd 1.6
 * sets only `TTRPC_ADDRESS` and `GOMAXPROCS`; 1.7 and later add `GRPC_ADDRESS`, `NAMESPACE` and `MAX_SHIM_VERSION`
 * (shim-protocol.md). Without `GRPC_ADDRESS` our `start` knows it talks to 1.6 without looking containerd's version up.
 */
export function shimEnv(
  lab: Pick<Lab, "address" | "ttrpcAddress" | "containerd">,
  namespace: string,
): Record<string, string> {
  const env: Record<string, string> = { TTRPC_ADDRESS: lab.ttrpcAddress, GOMAXPROCS: "2" };
  if (lab.containerd.series === "1.6") return env;
  return { ...env, GRPC_ADDRESS: lab.address, NAMESPACE: namespace, MAX_SHIM_VERSION: "2" };
}

/** PID of the server that `start` spawned for container `id` (its argv names the id and the lab's address). */
export async function findServer(lab: Lab, id: string): Promise<number | null> {
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const argv = await readCmdline(Number(e.name));
    if (argv && isServerArgv(argv, lab, id)) return Number(e.name);
  }
  return null;
}

/** True for the argv of the server (not the `start`) serving container `id` of `lab`. */
export function isServerArgv(argv: string[], lab: Lab, id: string): boolean {
  const at = argv.indexOf("-id");
  return at >= 0 && argv[at + 1] === id && argv.includes(lab.address) && !argv.includes("start");
}

/** Runs `n` interleaved iterations of the four steps. */
export async function measureStart(
  lab: Lab,
  n: number,
  progress: (msg: string) => void,
  warn: (msg: string) => void,
): Promise<StartSamples> {
  const binaries: Record<Side, string> = { go: lab.goShimBinary, deno: lab.shimBinary };
  const bundles: Partial<Record<Side, Bundle>> = {};
  const env = shimEnv(lab, NS);
  const out: StartSamples = {
    newServer: { go: [], deno: [] },
    firstRpc: { go: [], deno: [] },
    existing: { go: [], deno: [] },
    delete: { go: [], deno: [] },
    emptyDeno: [],
  };
  const emptyDeno = await emptyDenoRunner(lab);
  const emptyLauncher = await emptyLauncherRunner(lab);
  if (emptyLauncher) out.emptyLauncher = [];
  out.emptyDenoAfterBoot = [];
  /** Ends the server that `start` spawned for `id` (its socket path `address`), as the Go shim's gets ended too. */
  const endServer = async (side: Side, id: string, address: string) => {
    const pid = await findServer(lab, id);
    if (pid === null) warn(`${side}: no server process found for ${id}`);
    else if (!await terminate(pid, (argv) => isServerArgv(argv, lab, id), 5_000)) {
      warn(`${side}: server ${pid} for ${id} did not exit`);
    }
    await Deno.remove(address).catch(() => {}); // a socket left by a server that was killed
  };
  /** The shim flags containerd gives container `id`, before the action. */
  const args = (
    id: string,
  ) => ["-namespace", NS, "-address", lab.address, "-publish-binary", lab.containerdBinary, "-id", id];
  /** Puts `side`'s bundle in pod `group` (the annotation its `start` groups by). */
  const inGroup = (side: Side, group: string) =>
    Deno.writeTextFile(
      `${bundles[side]!.dir}/config.json`,
      JSON.stringify({ ...bundles[side]!.spec, annotations: { [GROUP_ANNOTATION]: group } }),
    );
  /** `side`'s `start` for container `id`, timed, in its bundle. */
  const start = (side: Side, id: string) =>
    mustTime(binaries[side], [...args(id), "start"], { cwd: bundles[side]!.dir, env, captureStdout: true });
  /** D′ (results.ts): one of our servers boots and answers, then D runs where the second `start` would. */
  const afterBoot = async (i: number) => {
    const group = `iso-dprime-${runTag()}-${i}`;
    await inGroup("deno", group);
    const address = startAddress((await start("deno", `${group}-a`)).stdout);
    await timeToAnswer(address);
    const ms = await emptyDeno.run();
    await endServer("deno", `${group}-a`, address);
    return ms;
  };
  const once = async (side: Side, i: number, record: boolean) => {
    const b = bundles[side]!;
    const group = `iso-${side}-${runTag()}-${i}`;
    await inGroup(side, group);
    const first = await start(side, `${group}-a`);
    const address = startAddress(first.stdout);
    const answered = await timeToAnswer(address);
    const second = await start(side, `${group}-b`);
    if (startAddress(second.stdout) !== address) {
      throw new Error(`${side}: the second start of group ${group} printed ${second.stdout.trim()}, not ${address}`);
    }
    await endServer(side, `${group}-a`, address);
    // containerd's bundle directory is named after the container, and the Go shim's `delete` reads `<cwd>/../<id>`:
    // the `runtime` file its Create wrote (empty: the default runc) and the `address` ours wrote.
    const delBundle = `${dirname(b.dir)}/${group}-a`;
    await Deno.mkdir(`${delBundle}/rootfs`, { recursive: true }); // containerd's bundle has it, unmounted by then
    await Deno.writeTextFile(`${delBundle}/runtime`, "");
    // What our server's Delete leaves besides (src/task/bundle_files.ts): its mark that rootfs holds no mount.
    if (side === "deno") await Deno.writeFile(`${delBundle}/${ROOTFS_UNMOUNTED_FILE}`, new Uint8Array());
    await Deno.copyFile(`${b.dir}/address`, `${delBundle}/address`).catch(() => {});
    const del = await mustTime(binaries[side], [...args(`${group}-a`), "-bundle", delBundle, "delete"], {
      cwd: delBundle,
      env,
      captureStdout: true,
    }).finally(() => Deno.remove(delBundle, { recursive: true }).catch(() => {}));
    if (record) {
      out.delete![side].push(del.ms);
      out.newServer[side].push(first.ms);
      out.firstRpc[side].push(first.ms + answered);
      out.existing[side].push(second.ms);
    }
  };
  try {
    for (const side of ["go", "deno"] as const) bundles[side] = await makeBundle(`${lab.dir}/iso/${side}`);
    for (let i = 0; i < WARMUP; i++) for (const side of abOrder<Side>(i, "go", "deno")) await once(side, -1 - i, false);
    for (let i = 0; i < n; i++) {
      out.emptyDeno!.push(await emptyDeno.run());
      if (emptyLauncher) out.emptyLauncher!.push(await emptyLauncher());
      for (const side of abOrder<Side>(i, "go", "deno")) await once(side, i, true);
      out.emptyDenoAfterBoot.push(await afterBoot(i));
      if ((i + 1) % 10 === 0) progress(`start ${i + 1}/${n}`);
    }
  } finally {
    for (const b of Object.values(bundles)) await closeBundle(b);
  }
  return out;
}
