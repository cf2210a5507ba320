/**
 * Shared pieces of the end-to-end tests: the lab, the runtime name, event collection and leak checks.
 *
 * @module
 */
import { type Lab, type LabSeries, labSeries, useLab } from "../lab/mod.ts";
import { socketPath } from "../../src/shim/address.ts";
import { NODE_GROUPING_CONFIG, nodeGroupingConfigPath } from "../lab/config.ts";
import { CriClient, CriError } from "../cri/client.ts";
import { TaskClient } from "../harness/shim.ts";

export const RUNTIME = "io.containerd.deno.v2";

/** The containerd series this run of the end-to-end tests uses (`$SHIM_LAB_CONTAINERD`, default 1.6). */
export const SERIES: LabSeries = labSeries();

/**
 * How many rounds a heavy loop runs: `full` on containerd 1.6, `lean` on the other series. The suite runs every file
 * once per series; the 1.6 run keeps the full counts, the second run covers the same paths with fewer repetitions to
 * keep the whole suite within its time budget. Test names print the count they ran.
 */
export function rounds(full: number, lean: number): number {
  return SERIES === "1.6" ? full : lean;
}

/** The lab with the busybox image imported into `namespace`. */
export async function labWith(namespace: string): Promise<Lab> {
  const lab = await useLab();
  await lab.ensureImage(namespace);
  return lab;
}

/** `ctr run --rm` through our shim; returns ctr's result. */
export function runRm(lab: Lab, ns: string, id: string, args: string[], extra: string[] = []) {
  return lab.ctr(["run", "--rm", "--runtime", RUNTIME, ...extra, lab.image, id, ...args], { namespace: ns });
}

/** A `ctr events` subscription collecting lines until stopped. */
export class EventLog {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<void>;

  constructor(lab: Lab) {
    const child = this.#child = lab.spawnCtr(["events"]);
    this.#done = (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of child.stdout) {
        buf += decoder.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          this.lines.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      }
    })();
    this.#child.stderr.cancel().catch(() => {});
  }

  /** Topics of events about `id` (matched on "id" or "container_id"), in arrival order. */
  topicsFor(id: string): string[] {
    return this.lines
      .filter((l) => l.includes(`"container_id":"${id}"`) || l.includes(`"id":"${id}"`))
      .map((l) => l.split(" ").find((w) => w.startsWith("/")) ?? "");
  }

  async waitFor(pred: () => boolean, timeoutMs = 10_000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (pred()) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return pred();
  }

  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.#child.status;
    await this.#done.catch(() => {});
  }
}

/** Lines of /proc/self/mountinfo whose mount point is below `dir`. */
export async function mountsBelow(dir: string): Promise<string[]> {
  const info = await Deno.readTextFile("/proc/self/mountinfo");
  return info.split("\n").filter((l) => l.split(" ")[4]?.startsWith(dir));
}

/** The shim socket our `start` would use for container `id` (per-container group) in `ns`. */
export function shimSocket(lab: Lab, ns: string, id: string): string {
  return socketPath(lab.address, ns, id);
}

/**
 * The pid of the server serving container `id` (per-container group) in `ns`, as containerd learns it: Connect. Not
 * from command lines: a spare that took the group (src/shim/spare.ts) still names the group it was spawned for.
 */
export async function serverPid(lab: Lab, ns: string, id: string): Promise<number> {
  const client = await TaskClient.connect(shimSocket(lab, ns, id), ns);
  try {
    return (await client.call("Connect", { id })).shimPid;
  } finally {
    client.close();
  }
}

/** Pids of zombie processes whose parent is `ppid` (or any zombie when omitted). */
export async function zombies(ppids?: Set<number>): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (rest[0] === "Z" && (!ppids || ppids.has(Number(rest[1])))) out.push(Number(e.name));
    } catch { /* exited */ }
  }
  return out;
}

/** Pid of the containerd of the lab. */
export async function containerdPid(lab: Lab): Promise<number> {
  return Number((await Deno.readTextFile(`${lab.dir}/containerd.pid`)).trim());
}

/**
 * A CRI client for `lab`, once its CRI plugin is usable: the pause image imported, the `deno-node` handler's config file
 * written, and the runtime reporting ready (otherwise an error that quotes why containerd did not load the plugin).
 */
export async function criClientFor(lab: Lab): Promise<CriClient> {
  await lab.ensurePauseImage();
  const configPath = nodeGroupingConfigPath(lab.dir);
  if (await Deno.readTextFile(configPath).catch(() => "") !== NODE_GROUPING_CONFIG) {
    await Deno.writeTextFile(configPath, NODE_GROUPING_CONFIG);
  }
  const cri = new CriClient(lab.address, { deadlineMs: 30_000 });
  try {
    const ready = (await cri.status()).status.conditions.find((c) => c.type === "RuntimeReady");
    if (ready?.status !== true) throw new Error(`CRI runtime not ready: ${JSON.stringify(ready)}`);
  } catch (err) {
    cri.close();
    const cause = err instanceof CriError && err.code === 12 // UNIMPLEMENTED: the plugin did not load
      ? `; containerd says: ${(await lab.log()).match(/.*failed to load plugin io\.containerd\.grpc\.v1\.cri.*/)?.[0]}`
      : "";
    throw new Error(`the lab's CRI plugin is not usable: ${(err as Error).message}${cause}`);
  }
  return cri;
}
