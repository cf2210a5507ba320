/**
 * What containerd 2.x expects of a shim (issue 10), against the lab's containerd 2.x (`SHIM_LAB_CONTAINERD=2`):
 * - our shim answers Task API version 3 (containerd logs `version=3` when it connects);
 * - `ctr run --rm` leaves no shim socket behind at the moment it returns (the socket goes with Shutdown);
 * - runc runs in the bundle directory: a `BinaryName` wrapper that needs `./config.json` works (runtime_path form);
 * - through CRI, with version 3, a pod's further containers go straight to the sandbox's server: they run and are
 *   removed without one execution of our binary (counted by a wrapper around it), per-pod grouping still gives one
 *   server per pod and node grouping one per node, and nothing is left once the pods are removed.
 *
 * With another containerd these tests are registered as ignored, with the reason in their names.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Lab, useLab, waitFor } from "../lab/mod.ts";
import { parentPid } from "../lab/proc.ts";
import { CRI_HANDLERS, DIST_SHIM_PATH, RUNC_WRAPPER_SCRIPT, runcWrapperPath } from "../lab/config.ts";
import { CriClient, CriError } from "../cri/client.ts";
import { container, containerPid, hostNetworkPod, sandboxPid } from "../cri/pod.ts";
import type { PodSandboxConfig } from "../cri/client.ts";
import { socketPath } from "../../src/shim/address.ts";
import { groupFor } from "../../src/shim/grouping.ts";
import { criClientFor, mountsBelow } from "./helpers.ts";

const RUNTIME = "io.containerd.deno.v2";
/** containerd's CRI plugin keeps every pod in this containerd namespace. */
const NS = "k8s.io";
const NOT_FOUND = 5;
const COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"];

/** Whether the environment selects containerd 2.x for the lab (decided when tests are registered). */
const WANTS_2X = /^2/.test(Deno.env.get("SHIM_LAB_CONTAINERD") ?? "");
const IGNORED = WANTS_2X ? "" : " (ignored: the lab runs containerd 1.6; SHIM_LAB_CONTAINERD=2 runs it)";

function test2x(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: `containerd 2.x: ${name}${IGNORED}`,
    ignore: !WANTS_2X,
    fn: async () => {
      await fn();
    },
  });
}

async function lab2x(): Promise<Lab> {
  const lab = await useLab();
  assert.equal(lab.containerd.series, "2", "SHIM_LAB_CONTAINERD=2 but the lab does not run containerd 2.x");
  return lab;
}

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

test2x("ctr run --rm leaves no shim socket at the moment it returns, and our shim speaks Task API v3", async () => {
  const lab = await lab2x();
  const ns = "c2x-sock";
  await lab.ensureImage(ns);
  for (let i = 0; i < 3; i++) {
    const id = `sock-${Date.now() % 1_000_000}-${i}`;
    const run = await lab.ctr(["run", "--rm", "--runtime", RUNTIME, lab.image, id, "echo", "ok"], { namespace: ns });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "ok\n");
    const socket = socketPath(lab.address, ns, id);
    assert.equal(await exists(socket), false, `${socket} still exists when ctr run --rm returned`);
    const line = (await lab.log()).split("\n").find((l) => l.includes(`connecting to shim ${id}`));
    assert.ok(line, `containerd did not log its connection to the shim of ${id}`);
    assert.match(line, /\bversion=3\b/, line);
    assert.match(line, /\bprotocol=ttrpc\b/, line);
  }
});

/**
 * Replaces the binary containerd runs (`dist/containerd-shim-deno-v2`, which every lab handler resolves to) by a
 * wrapper that records each execution's arguments and then `exec`s the real one (containerd stays the parent).
 */
async function countExecutions<T>(fn: (executions: () => Promise<string[]>) => Promise<T>): Promise<T> {
  const real = `${DIST_SHIM_PATH}.counted`;
  const record = `${DIST_SHIM_PATH}.executions`;
  if (await exists(real)) await Deno.rename(real, DIST_SHIM_PATH); // a run that died before restoring it
  await Deno.writeTextFile(record, "");
  await Deno.rename(DIST_SHIM_PATH, real);
  try {
    const wrapper = `#!/bin/sh\necho "$*" >> '${record}'\nexec '${real}' "$@"\n`;
    await Deno.writeTextFile(DIST_SHIM_PATH, wrapper, { mode: 0o755 });
    return await fn(async () => (await Deno.readTextFile(record)).split("\n").filter((l) => l !== ""));
  } finally {
    await Deno.rename(real, DIST_SHIM_PATH);
    await Deno.remove(record).catch(() => {});
  }
}

interface Pod {
  id: string;
  config: PodSandboxConfig;
  logDir: string;
  containers: string[];
  removed?: boolean;
}

async function criSetup(): Promise<{ lab: Lab; cri: CriClient }> {
  const lab = await lab2x();
  return { lab, cri: await criClientFor(lab) };
}

async function runPod(cri: CriClient, lab: Lab, handler: string, name: string, pods: Pod[]): Promise<Pod> {
  const logDir = await Deno.makeTempDir({ dir: `${lab.dir}/logs`, prefix: `c2x-${name}-` });
  const config = hostNetworkPod(name, logDir);
  const pod: Pod = { id: "", config, logDir, containers: [] };
  pods.push(pod);
  pod.id = await cri.runPodSandbox(config, handler);
  return pod;
}

async function addContainer(cri: CriClient, lab: Lab, pod: Pod, name: string): Promise<string> {
  const id = await cri.createContainer(pod.id, container(name, lab.image, COMMAND), pod.config);
  pod.containers.push(id);
  await cri.startContainer(id);
  return id;
}

async function removeContainer(cri: CriClient, pod: Pod, id: string): Promise<void> {
  await cri.stopContainer(id, 10);
  await cri.removeContainer(id);
  pod.containers = pod.containers.filter((c) => c !== id);
}

async function removePod(cri: CriClient, pod: Pod): Promise<void> {
  await cri.stopPodSandbox(pod.id);
  await cri.removePodSandbox(pod.id);
  pod.removed = true;
}

/** The shim server that parents every process of `pod`. */
async function serverOf(cri: CriClient, pod: Pod): Promise<number> {
  const pids = [await sandboxPid(cri, pod.id)];
  for (const c of pod.containers) pids.push(await containerPid(cri, c));
  const parents = new Set(await Promise.all(pids.map(parentPid)));
  assert.equal(parents.size, 1, `pod ${pod.id}: processes ${pids.join(",")} have parents ${[...parents].join(",")}`);
  return [...parents][0]!;
}

/** The socket path of the server `start` computed for `pod`'s sandbox under grouping `mode`. */
function serverSocket(lab: Lab, pod: Pod, mode: "pod" | "node"): string {
  const key = groupFor(mode, { "io.kubernetes.cri.sandbox-id": pod.id }, pod.id, NS);
  return socketPath(lab.address, key.namespace, key.group);
}

async function assertNothingLeft(
  lab: Lab,
  pods: Pod[],
  servers: number[],
  before: Set<number>,
  mode: "pod" | "node",
): Promise<void> {
  const gone = async () => (await lab.shimPids()).every((p) => before.has(p) || !servers.includes(p));
  assert.ok(await waitFor(gone, 15_000), `shim servers ${servers.join(",")} still run after their pods were removed`);
  assert.deepEqual((await lab.shimPids()).filter((p) => !before.has(p)), [], "shims of ours left behind");
  const ids = pods.flatMap((p) => [p.id, ...p.containers]);
  for (const pod of pods) {
    const socket = serverSocket(lab, pod, mode);
    assert.equal(await exists(socket), false, `server socket of pod ${pod.id} left behind: ${socket}`);
  }
  const mounts = (await mountsBelow(lab.dir)).filter((m) => ids.some((id) => m.includes(id)));
  assert.deepEqual(mounts, [], "mounts left behind");
  const tasks = (await lab.ctr(["tasks", "ls"], { namespace: NS })).stdout;
  assert.ok(!ids.some((id) => tasks.includes(id)), `tasks left in ${NS}:\n${tasks}`);
  const bundles = `${lab.dir}/state/io.containerd.runtime.v2.task/${NS}`;
  for (const id of ids) assert.equal(await exists(`${bundles}/${id}`), false, `bundle of ${id} left behind`);
}

async function cleanup(cri: CriClient, lab: Lab, pods: Pod[]): Promise<void> {
  let failed = false;
  for (const pod of pods) {
    if (pod.id && !pod.removed) {
      for (const step of [() => cri.stopPodSandbox(pod.id), () => cri.removePodSandbox(pod.id)]) {
        await step().catch((e) => failed ||= !(e instanceof CriError && e.code === NOT_FOUND));
      }
    }
    await Deno.remove(pod.logDir, { recursive: true }).catch(() => {});
  }
  if (failed) await lab.cleanupNamespace(NS);
}

test2x("CRI, per-pod grouping: a pod's further containers run and go without one execution of our binary", async () => {
  const { lab, cri } = await criSetup();
  const pods: Pod[] = [];
  try {
    await countExecutions(async (executions) => {
      const before = new Set(await lab.shimPids());
      const pod = await runPod(cri, lab, CRI_HANDLERS.deno, "c2x-pod", pods);
      const afterSandbox = await executions();
      assert.ok(afterSandbox.some((e) => e.endsWith(" start")), `no start for the sandbox: ${afterSandbox}`);
      const first = await addContainer(cri, lab, pod, "first");
      await addContainer(cri, lab, pod, "second");
      const server = await serverOf(cri, pod);
      assert.deepEqual((await lab.shimPids()).filter((p) => !before.has(p)), [server], "one server for the pod");
      await removeContainer(cri, pod, first);
      assert.deepEqual(await executions(), afterSandbox, "our binary ran for a container of a running pod");
      // The server keeps serving the pod after one of its containers went (no Shutdown per container).
      assert.equal(await serverOf(cri, pod), server);
      assert.ok(await exists(serverSocket(lab, pod, "pod")), "the pod's server is not where start put it");
      await removePod(cri, pod);
      await assertNothingLeft(lab, pods, [server], before, "pod");
    });
  } finally {
    await cleanup(cri, lab, pods);
    cri.close();
  }
});

test2x("CRI, node grouping: one server for two pods, their containers without executions of our binary", async () => {
  const { lab, cri } = await criSetup();
  const pods: Pod[] = [];
  try {
    await countExecutions(async (executions) => {
      const before = new Set(await lab.shimPids());
      const a = await runPod(cri, lab, CRI_HANDLERS.denoNode, "c2x-node-a", pods);
      const b = await runPod(cri, lab, CRI_HANDLERS.denoNode, "c2x-node-b", pods);
      const afterSandboxes = await executions();
      for (const pod of [a, b]) {
        await addContainer(cri, lab, pod, "first");
        await addContainer(cri, lab, pod, "second");
      }
      const server = await serverOf(cri, a);
      assert.equal(await serverOf(cri, b), server, "two servers in node grouping");
      assert.deepEqual((await lab.shimPids()).filter((p) => !before.has(p)), [server]);
      for (const c of [...a.containers]) await removeContainer(cri, a, c);
      assert.deepEqual(await executions(), afterSandboxes, "our binary ran for a container of a running pod");
      await removePod(cri, a);
      // Pod b still lives on the node server.
      assert.equal(await serverOf(cri, b), server);
      await removePod(cri, b);
      await assertNothingLeft(lab, pods, [server], before, "node");
    });
  } finally {
    await cleanup(cri, lab, pods);
    cri.close();
  }
});

test2x(
  "CRI, runtime_path form with a runc wrapper (BinaryName) that needs ./config.json: runc runs in the bundle",
  async () => {
    const { lab, cri } = await criSetup();
    const wrapper = runcWrapperPath(lab.dir);
    await Deno.writeTextFile(wrapper, RUNC_WRAPPER_SCRIPT, { mode: 0o755 });
    await Deno.writeTextFile(`${wrapper}.log`, "");
    const pods: Pod[] = [];
    try {
      const before = new Set(await lab.shimPids());
      const pod = await runPod(cri, lab, CRI_HANDLERS.denoWrapped, "c2x-wrapped", pods);
      const id = await addContainer(cri, lab, pod, "wrapped");
      const server = await serverOf(cri, pod);
      assert.ok(!before.has(server) && (await lab.shimPids()).includes(server), "the pod runs on a server of ours");
      const exec = await cri.execSync(id, ["sh", "-c", "echo wrapped"], 10);
      assert.equal(new TextDecoder().decode(exec.stdout), "wrapped\n");
      await removeContainer(cri, pod, id);
      await removePod(cri, pod);
      const calls = (await Deno.readTextFile(`${wrapper}.log`)).split("\n").filter((l) => l !== "");
      assert.deepEqual(
        calls.filter((l) => l.startsWith("missing")),
        [],
        `runc ran outside a bundle:\n${calls.join("\n")}`,
      );
      for (const cmd of ["create", "start", "exec", "kill", "delete"]) {
        assert.ok(calls.some((l) => l.endsWith(` ${cmd}`)), `the wrapper saw no runc ${cmd}:\n${calls.join("\n")}`);
      }
      await assertNothingLeft(lab, pods, [server], before, "pod");
    } finally {
      await cleanup(cri, lab, pods);
      cri.close();
    }
  },
);
