/**
 * The runtime's floor (issue 11) as numbers the targets use: what Deno allows for each target, in the same unit as
 * the target (ours / Go), from the floor samples of the same run.
 *
 * | target | the floor allows |
 * |---|---|
 * | lifecycle, node grouping (server already running): `start` and `delete` are Deno processes | (Go + 2·(D − G)) / Go |
 * | lifecycle, per pod (default): the same plus a server boot | (Go + 3·(D − G)) / Go |
 * | `start` when the group's server runs, `delete` | ours ≤ 1.10 × D |
 * | `start` that boots a server (per pod) | ours ≤ 2.2 × D |
 * | a per-pod server's private dirty memory | ≤ 1.2 × an idle Deno listener's |
 *
 * D is the median exec → exit of an empty `deno run` with the shim's flags, G the median of the Go shim's `-v`, and Go
 * the Go shim's median of the target itself. The lifecycle targets allow 0.05 above their floor.
 *
 * @example
 * ```ts
 * import { lifecycleFloor } from "./floor.ts";
 * lifecycleFloor(200, { d: 70, g: 20 }, 3); // (200 + 3·50) / 200 = 1.75
 * ```
 * @module
 */
import type { ShimBenchResults } from "./results.ts";
import { summarize } from "./stats.ts";

/** Medians of the floor samples, ms. */
export interface FloorMedians {
  /** An empty `deno run` with the shim's flags. */
  d: number;
  /** The Go shim's `-v`. */
  g: number;
}

/** How far above its floor a lifecycle target may be (ratio points). */
export const LIFECYCLE_FLOOR_MARGIN = 0.05;
/** `start` with a running server, and `delete`: at most this many times D. */
export const SUBCOMMAND_D_LIMIT = 1.10;
/** A per-pod `start` that boots a server: at most this many times D. */
export const BOOT_D_LIMIT = 2.2;
/** A per-pod server's private dirty memory: at most this many times the idle listener's. */
export const LISTENER_LIMIT = 1.2;

/** The floor medians of a run, or null when the floor was not measured. */
export function floorMedians(r: ShimBenchResults): FloorMedians | null {
  const f = r.floor;
  if (!f || f.emptyDeno.length === 0 || f.goVersion.length === 0) return null;
  return { d: summarize(f.emptyDeno).median, g: summarize(f.goVersion).median };
}

/**
 * The floor for `start` and `delete`: D from the start phase's own iterations when it has them (same load as the
 * subcommands), else the floor phase's.
 */
export function subcommandFloor(r: ShimBenchResults): FloorMedians | null {
  const f = floorMedians(r);
  const own = r.start?.emptyDeno;
  if (own && own.length) return { d: summarize(own).median, g: f?.g ?? NaN };
  return f;
}

/**
 * The floor for `start` with a server running: D′, D timed right after one of our servers answered its first call
 * (where that `start` is timed, results.ts), when the run has it; null otherwise.
 */
export function afterBootFloor(r: ShimBenchResults): FloorMedians | null {
  const own = r.start?.emptyDenoAfterBoot;
  if (!own?.length) return null;
  return { d: summarize(own).median, g: floorMedians(r)?.g ?? NaN };
}

/**
 * What the floor allows for a lifecycle whose Go median is `goMs` when ours runs `denoProcesses` Deno processes the Go
 * shim runs as Go processes (2 in node grouping: `start` and `delete`; 3 per pod: plus the server's boot), as ours / Go.
 */
export function lifecycleFloor(goMs: number, f: FloorMedians, denoProcesses: number): number {
  return (goMs + denoProcesses * (f.d - f.g)) / goMs;
}

/** A limit of `times` × D expressed as ours / Go for a target whose Go median is `goMs`. */
export function dLimitVsGo(goMs: number, f: FloorMedians, times: number): number {
  return times * f.d / goMs;
}
