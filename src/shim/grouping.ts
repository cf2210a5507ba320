/**
 * Which server a container joins. Like the Go shim by default: the first of the annotations
 * `io.containerd.runc.v2.group`, `io.kubernetes.cri.sandbox-id`, else the container id (one server per pod, or per
 * container outside Kubernetes). The shim config file can choose coarser groups (see config.ts).
 *
 * @module
 */
import { buildId } from "./build_id.ts";
import type { GroupingMode, ShimConfig } from "./config.ts";

export type { GroupingMode };

export const GROUP_ANNOTATION = "io.containerd.runc.v2.group";
export const SANDBOX_ANNOTATION = "io.kubernetes.cri.sandbox-id";

/**
 * Where a container's server is: the namespace and group that, with containerd's address, name its socket.
 * Per container and per pod this is exactly the Go shim's key (`<ns>/<group>`); a namespace's server uses a fixed
 * group in that namespace; the node's server uses no namespace at all, so every namespace finds the same socket.
 *
 * The coarse groups also carry `build` (see build_id.ts): such a server lives as long as any container in the
 * namespace or on the node, so it would run old code forever after an upgrade. With the build in its name, a new
 * build's `start` finds no server and starts its own; the old server keeps its containers, and exits after the last.
 * Per pod and per container the name stays the Go shim's (a pod's server ends with the pod).
 */
export function groupFor(
  mode: GroupingMode,
  annotations: Record<string, string>,
  id: string,
  ns: string,
  build = "",
): { namespace: string; group: string } {
  const suffix = build ? `-${build}` : "";
  switch (mode) {
    case "container":
      return { namespace: ns, group: id };
    case "pod":
      return { namespace: ns, group: annotations[GROUP_ANNOTATION] || annotations[SANDBOX_ANNOTATION] || id };
    case "namespace":
      return { namespace: ns, group: `containerd-shim-deno-namespace${suffix}` };
    case "node":
      return { namespace: "", group: `containerd-shim-deno-node${suffix}` };
  }
}

/** The group key for a container, honouring the configured mode and, for the coarse modes, the running build. */
export async function groupKey(
  config: ShimConfig,
  annotations: Record<string, string>,
  id: string,
  ns: string,
): Promise<{ namespace: string; group: string }> {
  const coarse = config.grouping === "node" || config.grouping === "namespace";
  return groupFor(config.grouping, annotations, id, ns, coarse ? await buildId() : "");
}
