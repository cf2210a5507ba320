/**
 * What a benchmark run records: raw samples per shim (summaries are derived when the report is written, so the JSON
 * in `bench/results/` can be re-rendered), memory and idle readings, and the machine they were taken on.
 *
 * @module
 */
import type { BenchConfig } from "./config.ts";
import type { MemoryTotals, Side } from "./procs.ts";

/** Raw samples of an interleaved A/B measurement; `go[i]` and `deno[i]` ran back to back. */
export type AbSamples = Record<Side, number[]>;

/** The `start` subcommand run by hand (host-lab.md §8.4 "isolated"), milliseconds. */
export interface StartSamples {
  /** exec → exit of a `start` that had to spawn the group's server. */
  newServer: AbSamples;
  /** exec of that `start` → first Task RPC answered by the new server (what containerd waits for before Create). */
  firstRpc: AbSamples;
  /** exec → exit of a second `start` of the same group, whose server already runs. */
  existing: AbSamples;
  /**
   * exec → exit of `delete` in the same bundle once the server is gone (what containerd runs after every task; no runc
   * state is left by then). Absent in results from before it was measured.
   */
  delete?: AbSamples;
  /**
   * D (floor.ts) timed in the same iterations, right before each pair: `start` and `delete` are judged against these,
   * which saw the same load, rather than against the floor phase's.
   */
  emptyDeno?: number[];
  /**
   * L: dist's launcher running an empty script (D plus the bundle flavour's `/bin/sh` step), timed right after D in
   * the same iterations. Absent for a compiled shim and in results from before it was measured.
   */
  emptyLauncher?: number[];
  /**
   * D′: D timed right after one of our servers answered its first call, where the "server already runs" `start` is
   * timed. A Deno process started just after another one booted takes longer here whatever it runs (an empty script:
   * 73.6 against 62.1 ms after 300 ms of quiet, bench/analysis.md, session 17), so that `start` is judged against D in
   * the same place. Absent in results from before it was measured.
   */
  emptyDenoAfterBoot?: number[];
}

/**
 * What the Deno runtime allows (issue 11), measured in the same run as the shims: no Deno process of ours can be
 * faster than an empty `deno run`, nor a Deno server smaller than an idle Deno process that only listens.
 */
export interface FloorSamples {
  /** D: exec → exit of an empty script run by dist's deno with the shim's own flags, ms. */
  emptyDeno: number[];
  /** G: exec → exit of the Go shim's `-v`, ms. */
  goVersion: number[];
  /** An idle Deno process (dist's deno, the shim's flags) listening on a unix socket, after a settle time. */
  listener?: ProcessMemory;
  /** The command lines used, for the report. */
  emptyCommand?: string;
}

/** Memory of one process from `smaps_rollup`, KiB. */
export interface ProcessMemory {
  rssKiB: number;
  pssKiB: number;
  ussKiB: number;
  privateDirtyKiB: number;
}

/** The Task RPCs timed straight over ttrpc by the `rpc` phase. */
export const RPC_METHODS = ["Create", "Start", "Exec", "State", "Kill", "Delete"] as const;
/** One of {@linkcode RPC_METHODS}. */
export type RpcMethod = typeof RPC_METHODS[number];

/**
 * The stdout paths measured: `fifo` container → shim → FIFO → ctr → /dev/null; `file-devnull` container → shim →
 * `file:///dev/null`; `file-tmpfs` container → shim → `file://` on a tmpfs (a regular file, removed after each run).
 */
export type ThroughputPath = "fifo" | "file-devnull" | "file-tmpfs";

/** Throughput of one stdout path, MiB/s per run (MiB written divided by `ctr run --rm` wall time). */
export interface ThroughputSamples {
  path: ThroughputPath;
  mib: number;
  mibPerS: AbSamples;
  /** Why a side has no samples on this path (its first run failed; the rest were skipped). */
  errors?: Partial<Record<Side, string>>;
}

/** The shim configurations whose memory is compared. */
export type MemoryMode = "go" | "pod" | "node";

/** One memory reading: every shim process of one configuration, with `containers` sleep containers running. */
export interface MemoryPoint {
  mode: MemoryMode;
  containers: number;
  totals: MemoryTotals;
  /** Live processes sharing the deno executable's pages at that moment (moves our PSS, not our USS). */
  denoSharers: number;
}

/** Idle cost of the shim processes of one configuration over a quiet interval. */
export interface IdleReading {
  mode: MemoryMode;
  containers: number;
  processes: number;
  seconds: number;
  /** CPU time of all shim threads over the interval, ms. */
  cpuMs: number;
  /** Context switches of all shim threads per second. */
  switchesPerS: number;
  /**
   * Seconds between the last container start and the beginning of the interval. The first window (the target's)
   * starts after the memory settle time; a second one follows it, past the servers' start-up transients.
   */
  startedAfterS?: number;
}

/** Load average (1, 5, 15 min) at a moment of the run. */
export interface LoadSample {
  at: string;
  phase: string;
  load: [number, number, number];
}

/** The machine and software the run used. */
export interface HostInfo {
  date: string;
  kernel: string;
  cpu: string;
  cpus: number;
  memoryGiB: number;
  /** Which containerd ran, e.g. `containerd 2.1.9+unknown (Debian sid)` (older results: the bare version). */
  containerd: string;
  /** The lab's containerd series (`1.6`, `2`, `1.7`); absent in results from before it was recorded. */
  containerdSeries?: string;
  runc: string;
  goShim: string;
  denoShim: string;
  deno: string;
  /** `dist/BUILD-INFO.json` revision of the shim under test. */
  build: string;
  labLogLevel: string;
}

/** Everything `deno task bench:shim` measured. */
export interface ShimBenchResults {
  host: HostInfo;
  config: BenchConfig;
  startedAt: string;
  finishedAt: string;
  load: LoadSample[];
  lifecycle?: AbSamples;
  /** The lifecycle with spares off for ours: every pod boots a server (informational), ms. */
  lifecycleBoot?: AbSamples;
  start?: StartSamples;
  exec?: AbSamples;
  /** CRI CreateContainer+StartContainer+StopContainer+RemoveContainer in a running pod, ms. */
  cri?: AbSamples;
  /**
   * The same on containerd 2.x (the figure the CRI target is judged on: with Task API v3 containerd runs neither our
   * `start` nor our `delete` for a container of a running pod), and which containerd that was. A run on 1.6 or 1.7
   * brings up a 2.x lab beside its own for this phase.
   */
  cri2x?: AbSamples & { containerd: string };
  /** Lifecycle in node grouping, with one container of the group kept running (as on a real node), ms. */
  lifecycleNode?: AbSamples;
  /** The runtime's floor: D, G and an idle listener's memory. */
  floor?: FloorSamples;
  /** Each Task RPC's round trip straight over ttrpc (no containerd), ms. */
  rpc?: Partial<Record<RpcMethod, AbSamples>>;
  throughput?: ThroughputSamples[];
  memory?: MemoryPoint[];
  idle?: IdleReading[];
  /** Things that went wrong but did not stop the run (leftover processes, failed sanity checks). */
  warnings: string[];
}

/** One reading of the soak: the shim server's memory after `execs` execs. */
export interface SoakPoint {
  execs: number;
  rssKiB: number;
  pssKiB: number;
  ussKiB: number;
  fds: number;
}

/** The soak of one shim. */
export interface SoakSide {
  side: Side;
  points: SoakPoint[];
  /** Wall time of the measured execs, s. */
  seconds: number;
  failures: number;
}

/** Everything `deno task bench:soak` measured. */
export interface SoakResults {
  date: string;
  execs: number;
  warmup: number;
  concurrency: number;
  sides: SoakSide[];
  /** RSS growth of a bare deno process spawning as many short children, KiB: the runtime's own share. */
  bareDenoSpawnGrowthKiB: number | null;
  load: [number, number, number];
}
