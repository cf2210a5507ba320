/**
 * The shim's own configuration file (JSON), found at, in order: the path CRI hands over in its generic runtime
 * options (`config_path`), `$CONTAINERD_SHIM_DENO_CONFIG`, `/etc/containerd/containerd-shim-deno.json`.
 * A missing file means defaults; a malformed one is an error (a silently ignored config is worse).
 *
 * ```json
 * { "grouping": "pod", "startOutput": "plain", "taskApiVersion": "auto", "spareSeconds": 10,
 *   "execDeleteEvents": false }
 * ```
 * @module
 */

import { entryExists } from "./entry.ts";

/** The grouping modes, from finest to coarsest. */
export type GroupingMode = "container" | "pod" | "namespace" | "node";

/** Settings and their defaults. */
export interface ShimConfig {
  /** One server per container, per pod (default, like the Go shim), per namespace, or per node. */
  grouping: GroupingMode;
  /**
   * How `start` answers containerd 1.7/2.x: "plain" (`unix://…`, every version) or "json"
   * (`{"version":N,"address":…,"protocol":"ttrpc"}`, 1.7+). containerd 2.3+ gets a BootstrapResult either way.
   */
  startOutput: "plain" | "json";
  /**
   * The Task API version reported: "auto" (default: 3 to containerd 2.x, 2 to 1.6 and 1.7, see start.ts), 2, or 3
   * (to every containerd; 1.7 refuses it). With 3, containerd 2.x sends a pod's further containers to the sandbox's
   * server without running `start` or `delete` for them.
   */
  taskApiVersion: "auto" | 2 | 3;
  /**
   * How long a server whose containers are all gone waits as a spare for the next group's `start` (spare.ts), in
   * seconds; 0 turns spares off. Default {@link DEFAULT_SPARE_SECONDS}.
   */
  spareSeconds: number;
  /**
   * Publish TaskDelete when an exec is deleted (containerd's runtime-v2 docs: SHOULD). Default false, as the Go shim:
   * nothing in containerd or Kubernetes reads it, and each one is a Forward round trip with containerd per exec (a
   * Kubernetes exec probe runs one every period) that overlapped the client's next call (bench/analysis.md, session
   * 15). A task's TaskDelete is always published.
   */
  execDeleteEvents: boolean;
}

/** The default `spareSeconds`. */
export const DEFAULT_SPARE_SECONDS = 10;
/** The largest `spareSeconds` accepted: a spare is for churn, not a daemon. */
const MAX_SPARE_SECONDS = 3600;

export const DEFAULT_CONFIG_PATH = "/etc/containerd/containerd-shim-deno.json";
const MODES: readonly GroupingMode[] = ["container", "pod", "namespace", "node"];

/** Validates a parsed config object. */
export function parseConfig(raw: unknown, source: string): ShimConfig {
  const config: ShimConfig = {
    grouping: "pod",
    startOutput: "plain",
    taskApiVersion: "auto",
    spareSeconds: DEFAULT_SPARE_SECONDS,
    execDeleteEvents: false,
  };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(`${source}: the shim config must be a JSON object`);
  }
  for (const [k, v] of Object.entries(raw)) {
    if (k === "grouping") {
      if (!MODES.includes(v as GroupingMode)) {
        throw new Error(`${source}: grouping must be one of ${MODES.join(", ")}, not ${JSON.stringify(v)}`);
      }
      config.grouping = v as GroupingMode;
    } else if (k === "startOutput") {
      if (v !== "plain" && v !== "json") throw new Error(`${source}: startOutput must be "plain" or "json"`);
      config.startOutput = v;
    } else if (k === "taskApiVersion") {
      if (v !== 2 && v !== 3 && v !== "auto") throw new Error(`${source}: taskApiVersion must be "auto", 2 or 3`);
      config.taskApiVersion = v;
    } else if (k === "spareSeconds") {
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > MAX_SPARE_SECONDS) {
        throw new Error(`${source}: spareSeconds must be a number of seconds from 0 to ${MAX_SPARE_SECONDS}`);
      }
      config.spareSeconds = v;
    } else if (k === "execDeleteEvents") {
      if (typeof v !== "boolean") throw new Error(`${source}: execDeleteEvents must be true or false`);
      config.execDeleteEvents = v;
    } else throw new Error(`${source}: unknown setting ${JSON.stringify(k)}`);
  }
  return config;
}

/** Loads the config from the first place that names one (synchronously: it is read by short-lived commands). */
export function loadConfig(explicitPath?: string): ShimConfig {
  const path = explicitPath || Deno.env.get("CONTAINERD_SHIM_DENO_CONFIG") || DEFAULT_CONFIG_PATH;
  // The host-wide file is usually absent: looked up without a thrown NotFound (entry.ts).
  if (!explicitPath && !entryExists(path)) return parseConfig({}, path);
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound && !explicitPath) return parseConfig({}, path);
    throw new Error(`cannot read shim config ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: invalid JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, path);
}
