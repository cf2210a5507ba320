/**
 * The two shims under test and what the benchmark reads about their processes: which processes belong to which shim
 * in the lab, their memory (`smaps_rollup`), their CPU time and context switches (`schedstat` and `status` of every
 * thread), and a wall-clock timer around a command.
 *
 * @example
 * ```ts
 * import { useLab } from "../../tests/lab/mod.ts";
 * import { shimProcesses, cpuOf } from "./procs.ts";
 * const lab = await useLab({ dir: "/tmp/benchlab" });
 * for (const p of await shimProcesses(lab, "go")) console.log(p.pid, await cpuOf(p.pid));
 * ```
 * @module
 */
import { basename } from "node:path";
import { distDir, type Lab, memoryOf, type ProcessInfo } from "../../tests/lab/mod.ts";
import { findProcesses } from "../../tests/lab/proc.ts";

/** Which shim: the stock Go shim or ours. */
export type Side = "go" | "deno";
/** Both sides, Go first (the baseline). */
export const SIDES: readonly Side[] = ["go", "deno"];

/** What is fixed about a side. */
export interface SideInfo {
  label: string;
  runtime: string;
}

/** The runtime names containerd resolves: the Go shim from /usr/bin, ours from the lab's `dist/` (first on PATH). */
export const SIDE_INFO: Record<Side, SideInfo> = {
  go: { label: "Go shim (containerd-shim-runc-v2)", runtime: "io.containerd.runc.v2" },
  deno: { label: "containerd-shim-deno-v2", runtime: "io.containerd.deno.v2" },
};

/** The system's Go shim binary (a lab running a downloaded containerd has its own: `Lab.goShimBinary`). */
export const GO_SHIM_BINARY = "/usr/bin/containerd-shim-runc-v2";

/**
 * Whether the first chunk `child` writes to its piped stdout says "ready" (what the shim's server and the benches'
 * helper processes print once they serve). Releases the reader and stops reading stdout afterwards.
 */
export async function firstLineReady(child: Deno.ChildProcess): Promise<boolean> {
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return new TextDecoder().decode(value ?? new Uint8Array()).includes("ready");
}

/** True for our shim: a process that runs something from the build output (`dist/`), whatever its layout. */
function isOurs(argv: string[]): boolean {
  return argv.some((a) => a.startsWith(`${distDir}/`));
}

/** True for the stock Go shim. */
function isGoShim(argv: string[]): boolean {
  return basename(argv[0]) === "containerd-shim-runc-v2";
}

/** True when the process serves `lab`: its argv names the lab's socket, or containerd gave it the lab's TTRPC_ADDRESS. */
async function servesLab(lab: Lab, pid: number, argv: string[]): Promise<boolean> {
  if (argv.includes(lab.address)) return true;
  const env = await Deno.readTextFile(`/proc/${pid}/environ`).catch(() => "");
  return env.split("\0").includes(`TTRPC_ADDRESS=${lab.ttrpcAddress}`);
}

/**
 * Live shim processes of `side` serving `lab` (ours: anything running from `dist/`; Go: containerd-shim-runc-v2).
 * Matched here rather than by the lab's own helper so that a change of the build layout cannot make our processes
 * invisible (and their memory zero).
 */
export async function shimProcesses(lab: Lab, side: Side): Promise<ProcessInfo[]> {
  const candidates = await findProcesses(side === "deno" ? isOurs : isGoShim);
  const out: ProcessInfo[] = [];
  for (const c of candidates) if (await servesLab(lab, c.pid, c.argv)) out.push(c);
  return out;
}

/** Memory totals over a set of processes, in KiB. */
export interface MemoryTotals {
  processes: number;
  rssKiB: number;
  pssKiB: number;
  ussKiB: number;
  /** Private_Dirty: anonymous and written pages, what the process really costs (absent in older results). */
  privateDirtyKiB?: number;
  threads: number;
}

/** Sums `smaps_rollup` over `pids`; processes that vanished meanwhile are skipped (and not counted). */
export async function memoryTotals(pids: readonly number[]): Promise<MemoryTotals> {
  const t: MemoryTotals = { processes: 0, rssKiB: 0, pssKiB: 0, ussKiB: 0, privateDirtyKiB: 0, threads: 0 };
  for (const pid of pids) {
    const m = await memoryOf(pid);
    const dirty = await privateDirtyOf(pid);
    if (!m || dirty === null) continue;
    t.processes++;
    t.privateDirtyKiB! += dirty;
    t.rssKiB += m.rssKiB;
    t.pssKiB += m.pssKiB;
    t.ussKiB += m.ussKiB;
    t.threads += m.threads;
  }
  return t;
}

/** `Private_Dirty` of `pid` from `smaps_rollup`, KiB; null when the process is gone. */
export async function privateDirtyOf(pid: number): Promise<number | null> {
  try {
    const rollup = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`);
    return Number(rollup.match(/^Private_Dirty:\s+(\d+)/m)?.[1] ?? 0);
  } catch {
    return null;
  }
}

/** CPU use of one process so far, summed over its live threads. */
export interface CpuSample {
  /** Nanoseconds on CPU (first field of `/proc/<pid>/task/<tid>/schedstat`). */
  cpuNs: number;
  /** voluntary + nonvoluntary context switches. */
  switches: number;
}

/** CPU time and context switches of `pid` (all threads); null when it is gone. */
export async function cpuOf(pid: number): Promise<CpuSample | null> {
  const s: CpuSample = { cpuNs: 0, switches: 0 };
  try {
    for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
      try {
        const sched = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/schedstat`);
        s.cpuNs += Number(sched.split(" ")[0]);
        const status = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/status`);
        for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) s.switches += Number(m[1]);
      } catch { /* the thread exited between listing and reading */ }
    }
  } catch {
    return null;
  }
  return s;
}

/** Sums {@linkcode cpuOf} over `pids` (vanished processes count zero). */
export async function cpuTotals(pids: readonly number[]): Promise<Map<number, CpuSample>> {
  const out = new Map<number, CpuSample>();
  for (const pid of pids) {
    const s = await cpuOf(pid);
    if (s) out.set(pid, s);
  }
  return out;
}

/**
 * How many live processes run the same executable file as our shim (`dist/lib/containerd-shim-deno-runtime`, a hard
 * link to the system's deno): they all share its file pages, so this number moves our PSS (not our USS). The benchmark's own runner counts.
 */
export async function processesSharingExe(path: string): Promise<number> {
  const target = await Deno.stat(path);
  let n = 0;
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const st = await Deno.stat(`/proc/${e.name}/exe`);
      if (st.ino === target.ino && st.dev === target.dev) n++;
    } catch { /* kernel thread or gone */ }
  }
  return n;
}

/** Outcome of {@linkcode timed}. */
export interface Timed {
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode timed}. */
export interface TimedOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Capture stdout (default: it goes to /dev/null, which is what the throughput runs need). */
  captureStdout?: boolean;
  /** The child is killed after this long and an error thrown; default 120 s. */
  timeoutMs?: number;
}

/** Runs `cmd args` and measures the wall time from spawn to exit, in milliseconds. */
export async function timed(cmd: string, args: string[], opts: TimedOptions = {}): Promise<Timed> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const signal = AbortSignal.timeout(timeoutMs);
  const command = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    stdin: "null",
    stdout: opts.captureStdout ? "piped" : "null",
    stderr: "piped",
    signal,
  });
  const t0 = performance.now();
  const out = await command.output();
  const ms = performance.now() - t0;
  if (signal.aborted) throw new Error(`${cmd} ${args.join(" ")} did not finish within ${timeoutMs} ms`);
  const decoder = new TextDecoder();
  return {
    ms,
    code: out.code,
    stdout: opts.captureStdout ? decoder.decode(out.stdout) : "",
    stderr: decoder.decode(out.stderr),
  };
}

/** Like {@linkcode timed}, but a non-zero exit status is an error naming the command and its stderr. */
export async function mustTime(cmd: string, args: string[], opts: TimedOptions = {}): Promise<Timed> {
  const r = await timed(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}
