/**
 * Which server a container joins. Like the Go shim by default: the first of the annotations
 * `io.containerd.runc.v2.group`, `io.kubernetes.cri.sandbox-id`, else the container id (one server per pod, or per
 * container outside Kubernetes). The shim config file can choose coarser groups (see config.ts).
 *
 * @module
 */
import type { GroupingMode, ShimConfig } from "./config.ts";

export type { GroupingMode };

export const GROUP_ANNOTATION = "io.containerd.runc.v2.group";
export const SANDBOX_ANNOTATION = "io.kubernetes.cri.sandbox-id";

/**
 * Where a container's server is: the namespace and group that, with containerd's address, name its socket.
 * Per container and per pod this is exactly the Go shim's key (`<ns>/<group>`); a namespace's server uses a fixed
 * group in that namespace; the node's server uses no namespace at all, so every namespace finds the same socket.
 */
export function groupFor(
  mode: GroupingMode,
  annotations: Record<string, string>,
  id: string,
  ns: string,
): { namespace: string; group: string } {
  switch (mode) {
    case "container":
      return { namespace: ns, group: id };
    case "pod":
      return { namespace: ns, group: annotations[GROUP_ANNOTATION] || annotations[SANDBOX_ANNOTATION] || id };
    case "namespace":
      return { namespace: ns, group: "containerd-shim-deno-namespace" };
    case "node":
      return { namespace: "", group: "containerd-shim-deno-node" };
  }
}

/** The group key for a container, honouring the configured mode. */
export function groupKey(
  config: ShimConfig,
  annotations: Record<string, string>,
  id: string,
  ns: string,
): { namespace: string; group: string } {
  return groupFor(config.grouping, annotations, id, ns);
}
