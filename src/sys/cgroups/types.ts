/**
 * The cgroup handle's public shape, shared by the v1 and v2 implementations and by the OOM watcher.
 *
 * @module
 */

/** Type URL of the `StatsResponse.stats` Any: containerd's cgroups v1 or v2 metrics message. */
export type MetricsTypeUrl = "io.containerd.cgroups.v1.Metrics" | "io.containerd.cgroups.v2.Metrics";

/** An encoded metrics message, ready to go into `google.protobuf.Any` as `{ type_url: typeUrl, value }`. */
export interface CgroupMetrics {
  typeUrl: MetricsTypeUrl;
  value: Uint8Array;
}

/** A container's cgroup: a cheap object holding paths; every call reads the kernel's files afresh. */
export interface Cgroup {
  /** 1 for the per-controller hierarchies, 2 for the unified hierarchy. */
  readonly version: 1 | 2;
  /**
   * The cgroup's path inside its hierarchy as `/proc/<pid>/cgroup` spells it, e.g. `/default/c1` (v1: the memory
   * controller's path, or the first controller's when there is no memory controller).
   */
  readonly path: string;
  /** Absolute directory holding the memory controller's files (`memory.oom_control`, `memory.events`), if any. */
  readonly memoryDir: string | null;
  /**
   * The statistics as containerd's Go shim reports them. Missing controllers and files are skipped. Throws
   * {@linkcode CgroupNotFoundError} when the cgroup no longer exists (the container was deleted).
   */
  metrics(): CgroupMetrics;
  /**
   * How many processes of the cgroup the kernel's OOM killer killed so far (v1 `memory.oom_control`, v2
   * `memory.events`); 0 when that is unknown (no memory controller, cgroup gone, kernel without the counter).
   */
  oomKillCount(): number;
  /** Whether the cgroup still exists. */
  exists(): boolean;
}

/** The cgroup is gone (or was never there). The Task service answers NotFound "cgroup does not exist: not found". */
export class CgroupNotFoundError extends Error {
  /** The cgroup's path inside its hierarchy. */
  readonly cgroupPath: string;

  constructor(cgroupPath: string) {
    super("cgroup does not exist");
    this.name = "CgroupNotFoundError";
    this.cgroupPath = cgroupPath;
  }
}

/** Host facts a handle reads; tests point them at fixtures. */
export interface CgroupOptions {
  /** Hugepage sizes as named in hugetlb files ("2MB"); default: the host's (`/sys/kernel/mm/hugepages`). */
  hugePageSizes?: readonly string[];
  /** v1 blkio device names come from this file; default `/proc/partitions`. */
  partitionsFile?: string;
  /**
   * Files found missing are not tried again for this long (default 60 s): most never
   * appear (no swap accounting, no hugetlb), but enabling a v2 controller later makes its files appear.
   */
  missingFileRetryMs?: number;
}
