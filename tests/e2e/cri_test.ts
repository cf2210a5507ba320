/**
 * Kubernetes' path through our shim (issue 5): the CRI calls kubelet makes, sent over gRPC to the lab containerd's
 * CRI plugin, for each runtime handler the lab registers for our shim (tests/lab/config.ts `CRI_HANDLERS`). Per pod:
 * RunPodSandbox (host network: no CNI needed), two containers created and started, ExecSync, ContainerStatus,
 * ListContainers/ListPodSandbox, the CRI log file, StopContainer (graceful and forced), RemoveContainer, then
 * StopPodSandbox and RemovePodSandbox. Around that: which shim process served the pod (the parent, as child
 * subreaper, of every process in it), how many of ours existed, and that nothing is left afterwards. Last, a
 * container's CRI log across a containerd restart, through our shim and the Go shim.
 *
 * Pods are stopped and removed through CRI even when an assertion fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { basename } from "node:path";
import { type Lab, useLab, waitFor } from "../lab/mod.ts";
import { parentPid, readCmdline } from "../lab/proc.ts";
import { CRI_HANDLERS, DIST_SHIM_PATH } from "../lab/config.ts";
import { CriClient, CriError, type PodSandboxConfig } from "../cri/client.ts";
import { container, containerPid, hostNetworkPod, parseCriLog, sandboxPid } from "../cri/pod.ts";
import { criClientFor, mountsBelow } from "./helpers.ts";

/** containerd's CRI plugin keeps every pod in this containerd namespace. */
const NS = "k8s.io";
const GO_SHIM = "containerd-shim-runc-v2";
/** grpc status NOT_FOUND. */
const NOT_FOUND = 5;
/** A container that logs a line, then waits; SIGTERM makes it exit 42 (pid 1 ignores signals it does not trap). */
const COMMAND = ["sh", "-c", "trap 'exit 42' TERM; echo hello-from-cri; sleep 1000 & wait"];
const CONTAINER_NAMES = ["first", "second"];

/** Which shim binary is expected to serve a pod. */
type ShimKind = "deno" | "go";

interface Pod {
  handler: string;
  id: string;
  config: PodSandboxConfig;
  logDir: string;
  containers: string[];
  /** Set once RemovePodSandbox succeeded: nothing left for the cleanup. */
  removed?: boolean;
}

/** The lab and a client whose CRI plugin answers. */
async function setup(): Promise<{ lab: Lab; cri: CriClient }> {
  const lab = await useLab();
  return { lab, cri: await criClientFor(lab) };
}

/** Runs a pod through `handler` and starts its two containers; `created` learns the pod id at once (for cleanup). */
async function startPod(cri: CriClient, lab: Lab, handler: string, name: string, created: Pod[]): Promise<Pod> {
  const logDir = await Deno.makeTempDir({ dir: `${lab.dir}/logs`, prefix: `cri-${name}-` });
  const config = hostNetworkPod(name, logDir);
  const pod: Pod = { handler, id: "", config, logDir, containers: [] };
  created.push(pod);
  pod.id = await cri.runPodSandbox(config, handler);
  const status = (await cri.podSandboxStatus(pod.id)).status;
  assert.equal(status.state, "SANDBOX_READY");
  assert.equal(status.runtime_handler, handler);
  assert.equal(status.metadata.name, name);
  for (const n of CONTAINER_NAMES) {
    const id = await cri.createContainer(pod.id, container(n, lab.image, COMMAND), config);
    pod.containers.push(id);
    await cri.startContainer(id);
  }
  return pod;
}

/** The shim binary containerd recorded for the pod's sandbox task. */
function shimBinaryPath(lab: Lab, pod: Pod): Promise<string> {
  return Deno.readTextFile(`${lab.dir}/state/io.containerd.runtime.v2.task/${NS}/${pod.id}/shim-binary-path`);
}

/**
 * Asserts that one shim process of `kind` is the parent of every process of `pods` (sandboxes and containers) and
 * that, of our shims, exactly that one (deno) or none (go) appeared since `before`. Returns its pid.
 */
async function assertOneServer(cri: CriClient, lab: Lab, pods: Pod[], before: Set<number>, kind: ShimKind) {
  const pids: number[] = [];
  for (const pod of pods) {
    pids.push(await sandboxPid(cri, pod.id));
    for (const c of pod.containers) pids.push(await containerPid(cri, c));
  }
  const parents = new Set(await Promise.all(pids.map(parentPid)));
  assert.equal(parents.size, 1, `the pods' processes ${pids.join(",")} have parents ${[...parents].join(",")}`);
  const server = [...parents][0]!;
  const argv = await readCmdline(server) ?? [];
  let ours: number[] = [];
  // A `start` or `delete` invocation may still be on its way out; only servers stay.
  await waitFor(async () => {
    ours = (await lab.shimPids()).filter((p) => !before.has(p));
    return ours.length === (kind === "deno" ? 1 : 0);
  }, 5_000);
  if (kind === "deno") {
    assert.deepEqual(ours, [server], `new shims of ours: ${ours.join(",")}; the pods' parent: ${argv.join(" ")}`);
  } else {
    assert.equal(basename(argv[0] ?? ""), GO_SHIM, `the pods' parent is ${argv.join(" ")}`);
    assert.deepEqual(ours, [], "none of our shims serves this pod");
  }
  return server;
}

/** The CRI calls kubelet makes while a pod lives, and their answers. Leaves the pod running without containers. */
async function exercisePod(cri: CriClient, pod: Pod): Promise<void> {
  const [first, second] = pod.containers;
  const listed = await cri.listPodSandbox({ id: pod.id });
  assert.deepEqual(listed.map((p) => [p.id, p.state, p.runtime_handler]), [[pod.id, "SANDBOX_READY", pod.handler]]);
  const ctrs = await cri.listContainers({ pod_sandbox_id: pod.id });
  assert.deepEqual(ctrs.map((c) => c.id).sort(), [...pod.containers].sort());
  assert.ok(ctrs.every((c) => c.state === "CONTAINER_RUNNING"), JSON.stringify(ctrs.map((c) => c.state)));

  for (const id of pod.containers) {
    const s = (await cri.containerStatus(id)).status;
    assert.equal(s.state, "CONTAINER_RUNNING");
    assert.ok(s.started_at >= s.created_at && s.started_at > 0, `started_at ${s.started_at}`);
    assert.equal(s.finished_at, 0);
  }

  const ok = await cri.execSync(first, ["echo", "exec-ok"], 30);
  assert.equal(new TextDecoder().decode(ok.stdout), "exec-ok\n");
  assert.equal(new TextDecoder().decode(ok.stderr), "");
  assert.equal(ok.exit_code, 0);
  const bad = await cri.execSync(second, ["sh", "-c", "echo exec-err >&2; exit 3"], 30);
  assert.equal(bad.exit_code, 3);
  assert.equal(new TextDecoder().decode(bad.stderr), "exec-err\n");
  assert.equal(bad.stdout.length, 0);

  // The log is written by containerd's CRI plugin from what our shim copies out of the container.
  for (const name of CONTAINER_NAMES) {
    const file = `${pod.logDir}/${name}.log`;
    let lines: ReturnType<typeof parseCriLog> = [];
    await waitFor(async () => {
      lines = parseCriLog(await Deno.readTextFile(file).catch(() => ""));
      return lines.length > 0;
    }, 5_000);
    assert.deepEqual(lines.map((l) => [l.stream, l.tag, l.text]), [["stdout", "F", "hello-from-cri"]], file);
  }

  // Graceful stop: SIGTERM, which the container traps (exit 42); forced stop: timeout 0 means SIGKILL (137).
  await cri.stopContainer(first, 10);
  const stopped = (await cri.containerStatus(first)).status;
  assert.equal(stopped.state, "CONTAINER_EXITED");
  assert.equal(stopped.exit_code, 42);
  assert.equal(stopped.reason, "Error");
  assert.ok(stopped.finished_at >= stopped.started_at, `finished_at ${stopped.finished_at}`);
  await cri.stopContainer(second, 0);
  const killed = (await cri.containerStatus(second)).status;
  assert.equal(killed.state, "CONTAINER_EXITED");
  assert.equal(killed.exit_code, 137);

  for (const id of pod.containers) {
    await cri.removeContainer(id);
    await assert.rejects(cri.containerStatus(id), (e) => e instanceof CriError && e.code === NOT_FOUND);
  }
  assert.deepEqual(await cri.listContainers({ pod_sandbox_id: pod.id }), []);
}

/** StopPodSandbox and RemovePodSandbox, checking what CRI reports in between and after. */
async function removePod(cri: CriClient, pod: Pod): Promise<void> {
  await cri.stopPodSandbox(pod.id);
  assert.equal((await cri.podSandboxStatus(pod.id)).status.state, "SANDBOX_NOTREADY");
  await cri.removePodSandbox(pod.id);
  pod.removed = true;
  await assert.rejects(cri.podSandboxStatus(pod.id), (e) => e instanceof CriError && e.code === NOT_FOUND);
  assert.deepEqual(await cri.listPodSandbox({ id: pod.id }), []);
}

/** The server has exited, and the pods left no shim, mount, task or container behind. */
async function assertNothingLeft(lab: Lab, pods: Pod[], server: number, before: Set<number>, kind: ShimKind) {
  const gone = async () => {
    const argv = await readCmdline(server);
    return !argv || !(kind === "deno" ? (await lab.shimPids()).includes(server) : basename(argv[0]) === GO_SHIM);
  };
  assert.ok(await waitFor(gone, 10_000), `shim server ${server} still runs after the pods were removed`);
  const ours = (await lab.shimPids()).filter((p) => !before.has(p));
  assert.deepEqual(ours, [], "shims of ours left behind");
  const ids = pods.flatMap((p) => [p.id, ...p.containers]);
  const mounts = (await mountsBelow(lab.dir)).filter((m) => ids.some((id) => m.includes(id)));
  assert.deepEqual(mounts, [], "mounts left behind");
  const tasks = (await lab.ctr(["tasks", "ls"], { namespace: NS })).stdout;
  assert.ok(!/\sRUNNING\s*$/m.test(tasks), `running tasks in ${NS}:\n${tasks}`);
  assert.ok(!ids.some((id) => tasks.includes(id)), `tasks left in ${NS}:\n${tasks}`);
  const ctrs = (await lab.ctr(["containers", "ls", "-q"], { namespace: NS })).stdout;
  assert.ok(!ids.some((id) => ctrs.includes(id)), `containers left in ${NS}:\n${ctrs}`);
}

/** Best-effort removal of `pods` through CRI (for failed tests); falls back to killing the namespace's tasks. */
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

/** containerd releases whose client drops `WithRuntimePath` (verified in 1.6.20's container.go `NewTask`). */
function ignoresRuntimePath(version: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  return !!m && Number(m[1]) === 1 && Number(m[2]) === 6 && Number(m[3]) <= 20;
}

/** The whole life of one pod through `handler`, served by a shim of `kind` (or decided from `shim-binary-path`). */
async function podLifecycle(handler: string, kind: ShimKind | "by-runtime-path"): Promise<void> {
  const { lab, cri } = await setup();
  const created: Pod[] = [];
  try {
    const before = new Set(await lab.shimPids());
    const pod = await startPod(cri, lab, handler, `e2e-${handler}`, created);
    const binary = (await shimBinaryPath(lab, pod)).trim();
    if (kind === "by-runtime-path") {
      const version = (await cri.version()).runtime_version;
      kind = binary === DIST_SHIM_PATH ? "deno" : "go";
      assert.ok(
        kind === "deno" || ignoresRuntimePath(version),
        `containerd ${version} ran ${binary} although the handler's runtime_path is ${DIST_SHIM_PATH}`,
      );
    } else {
      assert.equal(binary, kind === "deno" ? DIST_SHIM_PATH : lab.goShimBinary);
    }
    const server = await assertOneServer(cri, lab, [pod], before, kind);
    await exercisePod(cri, pod);
    await removePod(cri, pod);
    await assertNothingLeft(lab, [pod], server, before, kind);
  } finally {
    await cleanup(cri, lab, created);
    cri.close();
  }
}

Deno.test(`CRI handler ${CRI_HANDLERS.deno} (runtime_type io.containerd.deno.v2): one shim server per pod`, () =>
  podLifecycle(CRI_HANDLERS.deno, "deno"));

Deno.test(`CRI handler ${CRI_HANDLERS.denoAbs} (runtime_type = the shim's absolute path): one server per pod`, () =>
  podLifecycle(CRI_HANDLERS.denoAbs, "deno"));

Deno.test(
  `CRI handler ${CRI_HANDLERS.denoPath} (runc type + runtime_path): our shim, or the Go shim where containerd ` +
    `drops runtime_path (≤ 1.6.20)`,
  () => podLifecycle(CRI_HANDLERS.denoPath, "by-runtime-path"),
);

const NODE_TEST =
  `CRI handler ${CRI_HANDLERS.denoNode} (grouping "node"): one server for two pods, outliving the first`;
Deno.test(NODE_TEST, async () => {
  const { lab, cri } = await setup();
  const created: Pod[] = [];
  try {
    const before = new Set(await lab.shimPids());
    const a = await startPod(cri, lab, CRI_HANDLERS.denoNode, "e2e-node-a", created);
    const b = await startPod(cri, lab, CRI_HANDLERS.denoNode, "e2e-node-b", created);
    const server = await assertOneServer(cri, lab, [a, b], before, "deno");
    await exercisePod(cri, a);
    await removePod(cri, a);
    // Pod b still has its sandbox on the node server, which must keep serving it.
    assert.deepEqual((await lab.shimPids()).filter((p) => !before.has(p)), [server]);
    assert.equal(await parentPid(await sandboxPid(cri, b.id)), server);
    await exercisePod(cri, b);
    await removePod(cri, b);
    await assertNothingLeft(lab, [a, b], server, before, "deno");
  } finally {
    await cleanup(cri, lab, created);
    cri.close();
  }
});

/** Lines the counter of the restart test prints, 10 ms apart: long enough to outlast a slow restart. */
const COUNTER_LINES = 1000;

Deno.test("CRI logs across a containerd restart: no line is lost, through our shim as through the Go shim", async () => {
  // While containerd is down nobody reads the containers' stdout fifos; the CRI plugin opens them again when it comes
  // back. Our shim dropped what was written in between (78 of these lines once); the Go shim keeps it in the pipe.
  const { lab } = await setup();
  let cri = await criClientFor(lab);
  const created: Pod[] = [];
  const script = `i=0; while [ $i -lt ${COUNTER_LINES} ]; do echo $i; i=$((i+1)); usleep 10000; done`;
  try {
    const counters: { handler: string; id: string; log: string }[] = [];
    for (const handler of [CRI_HANDLERS.deno, "runc"]) {
      const logDir = await Deno.makeTempDir({ dir: `${lab.dir}/logs`, prefix: `cri-restart-${handler}-` });
      const config = hostNetworkPod(`e2e-restart-${handler}`, logDir);
      const pod: Pod = { handler, id: "", config, logDir, containers: [] };
      created.push(pod);
      pod.id = await cri.runPodSandbox(config, handler);
      const id = await cri.createContainer(pod.id, container("counter", lab.image, ["sh", "-c", script]), config);
      pod.containers.push(id);
      await cri.startContainer(id);
      counters.push({ handler, id, log: `${logDir}/counter.log` });
    }
    const logged = async (log: string) => parseCriLog(await Deno.readTextFile(log).catch(() => "")).length;
    assert.ok(await waitFor(async () => (await logged(counters[0].log)) >= 30, 30_000), "the counter did not start");
    cri.close();
    await lab.restart();
    cri = await criClientFor(lab);
    for (const c of counters) {
      assert.ok(
        await waitFor(async () => (await cri.containerStatus(c.id)).status.state === "CONTAINER_EXITED", 60_000),
        `${c.handler}: the counter did not finish`,
      );
      // The CRI plugin writes the log as it reads the fifo; the last lines may come just after the exit.
      await waitFor(async () => (await logged(c.log)) >= COUNTER_LINES, 5_000);
      const numbers = parseCriLog(await Deno.readTextFile(c.log)).map((l) => Number(l.text));
      const missing = Array.from({ length: COUNTER_LINES }, (_, i) => i).filter((i) => !numbers.includes(i));
      assert.deepEqual(missing, [], `${c.handler}: lines missing from the CRI log`);
      assert.equal(numbers.length, COUNTER_LINES, `${c.handler}: lines repeated`);
    }
  } finally {
    await cleanup(cri, lab, created);
    cri.close();
  }
});
