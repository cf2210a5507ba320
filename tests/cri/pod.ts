/**
 * Building blocks for CRI scenarios: pod and container configs shaped like kubelet's (host network, so no CNI is
 * needed), the pids containerd's CRI plugin reports in verbose status, and the CRI container log format.
 *
 * @example
 * ```ts
 * import { CriClient } from "./client.ts";
 * import { hostNetworkPod, sandboxPid } from "./pod.ts";
 * const cri = new CriClient("/path/to/containerd.sock");
 * const config = hostNetworkPod("web", "/tmp/pod-logs");
 * const id = await cri.runPodSandbox(config, "deno");
 * console.log(await sandboxPid(cri, id)); // pid of the pause process
 * ```
 * @module
 */
import type { ContainerConfig, CriClient, PodSandboxConfig } from "./client.ts";

/** A pod in the host's network namespace (`NamespaceMode` NODE): runs without any CNI configuration. */
export function hostNetworkPod(name: string, logDirectory: string, namespace = "cri-e2e"): PodSandboxConfig {
  return {
    metadata: { name, uid: crypto.randomUUID(), namespace, attempt: 0 },
    log_directory: logDirectory,
    labels: { "app.kubernetes.io/name": name },
    linux: { security_context: { namespace_options: { network: "NODE" } } },
  };
}

/** A container running `command` from `image`, logging to `<name>.log` in the pod's log directory. */
export function container(name: string, image: string, command: string[]): ContainerConfig {
  return { metadata: { name, attempt: 0 }, image: { image }, command, log_path: `${name}.log` };
}

/** The `info` JSON that containerd's CRI plugin adds to a verbose status. */
function verboseInfo(info: Record<string, string>, what: string): { pid?: number } {
  const text = info.info;
  if (!text) throw new Error(`verbose ${what} status has no "info" entry`);
  return JSON.parse(text);
}

/** Pid of the pod's sandbox (pause) process, from containerd's verbose PodSandboxStatus. */
export async function sandboxPid(cri: CriClient, podId: string): Promise<number> {
  const pid = verboseInfo((await cri.podSandboxStatus(podId, true)).info, "pod sandbox").pid;
  if (!pid) throw new Error(`pod ${podId} has no pid`);
  return pid;
}

/** Pid of a container's init process, from containerd's verbose ContainerStatus. */
export async function containerPid(cri: CriClient, containerId: string): Promise<number> {
  const pid = verboseInfo((await cri.containerStatus(containerId, true)).info, "container").pid;
  if (!pid) throw new Error(`container ${containerId} has no pid`);
  return pid;
}

/** One line of a CRI container log: `<RFC 3339 time> <stdout|stderr> <F|P> <text>`. */
export interface CriLogLine {
  time: string;
  stream: "stdout" | "stderr";
  /** F = full line, P = partial (the line continues in the next entry). */
  tag: "F" | "P";
  text: string;
}

/** Parses a CRI log file's text; lines not in the format throw (the shim must not corrupt the stream). */
export function parseCriLog(text: string): CriLogLine[] {
  return text.split("\n").filter((l) => l !== "").map((line) => {
    const m = /^(\S+) (stdout|stderr) (F|P) (.*)$/.exec(line);
    if (!m || Number.isNaN(Date.parse(m[1]))) throw new Error(`not a CRI log line: ${JSON.stringify(line)}`);
    return { time: m[1], stream: m[2] as CriLogLine["stream"], tag: m[3] as CriLogLine["tag"], text: m[4] };
  });
}
