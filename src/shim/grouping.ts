/**
 * Which server a container joins. Like the Go shim by default: the first of the annotations
 * `io.containerd.runc.v2.group`, `io.kubernetes.cri.sandbox-id`, else the container id (one server per pod, or per
 * container outside Kubernetes). The shim config file can choose coarser groups (see config.ts).
 *
 * @module
 */
import type { StartInput } from "./start_input.ts";
import { loadConfig } from "./config.ts";

export const GROUP_ANNOTATION = "io.containerd.runc.v2.group";
export const SANDBOX_ANNOTATION = "io.kubernetes.cri.sandbox-id";

/** The grouping modes, from finest to coarsest. */
export type GroupingMode = "container" | "pod" | "namespace" | "node";

/** The group key for `mode`; node mode uses one constant key so every container maps to one socket. */
export function groupFor(mode: GroupingMode, annotations: Record<string, string>, id: string, ns: string): string {
  switch (mode) {
    case "container":
      return id;
    case "pod":
      return annotations[GROUP_ANNOTATION] || annotations[SANDBOX_ANNOTATION] || id;
    case "namespace":
      return `deno-shim-namespace-${ns}`;
    case "node":
      return "deno-shim-node";
  }
}

/** The group key for a container, honouring the configured mode. */
export async function groupKey(
  annotations: Record<string, string>,
  id: string,
  ns: string,
  input: StartInput,
): Promise<string> {
  const config = await loadConfig(input.configPath);
  return groupFor(config.grouping, annotations, id, ns);
}
