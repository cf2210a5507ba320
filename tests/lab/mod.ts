/**
 * The lab: a private containerd instance (host-lab.md §3) that tests, the demo and the benchmarks run real
 * containers through, with our shim (`io.containerd.deno.v2`, resolved to `<repo>/dist/containerd-shim-deno-v2` via
 * containerd's PATH) next to the stock Go shim (`io.containerd.runc.v2`) of the same containerd release.
 *
 * Which containerd (containerd.ts): `opts.containerd`, else `$SHIM_LAB_CONTAINERD`: `1.6` (the system's package,
 * Debian 12's 1.6.20; the default), `2` (Debian sid's containerd ≥ 2, downloaded once with a private apt
 * configuration and extracted under the lab directory, never installed) or `1.7` (trixie's, for manual runs). Each
 * series has its own lab directory, sockets, config shape (version 2, or 3 for 2.x) and `ctr`; on its PATH, `dist/`
 * comes first and then the series' own `containerd-shim-runc-v2`. runc is always the system's.
 *
 * {@linkcode useLab} is idempotent and cheap when the lab is already up (the daemon outlives the process that started
 * it, so a test run pays the start once); {@linkcode stopLab} tears it down (host-lab.md §3.3). Both serialize on a
 * lock file in the lab directory, so concurrent test processes do not race.
 *
 * Where: `opts.dir`, else `$SHIM_LAB_DIR` (suffixed `-2` / `-1.7` for those series), else `<repo>/.lab`
 * (`<repo>/.lab-2`, `<repo>/.lab-1.7`). Log level: `opts.logLevel`, else
 * `$SHIM_LAB_LOG_LEVEL`, else `info`. Needs root, containerd, runc, GNU tar, gzip and busybox-static; Deno needs
 * `--allow-all` (reading `/proc`).
 *
 * @example
 * ```ts
 * import { useLab } from "./tests/lab/mod.ts";
 * const lab = await useLab();
 * const r = await lab.ctr(["run", "--rm", "--runtime", "io.containerd.runc.v2", lab.image, "x", "echo", "hello"]);
 * console.log(r.code, r.stdout); // 0 "hello\n"
 * ```
 * @module
 */
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SPARE_PROCESS_NAME } from "../../src/shim/spare.ts";
import { bundleLibDir } from "../../src/shim/bundle_layout.ts";
import { labConfig, type LabLogLevel, type LabPaths, labPaths } from "./config.ts";
import {
  type ContainerdBinaries,
  ContainerdNotCachedError,
  ensureContainerd,
  type LabSeries,
  labSeries,
  suiteOf,
} from "./containerd.ts";
import { buildImageArchives, BUSYBOX_IMAGE, imageArchivePaths, PAUSE_IMAGE } from "./image.ts";
import {
  type CommandResult,
  findProcesses,
  type ProcessInfo,
  readCmdline,
  runCommand,
  sleep,
  terminate,
  unmountBelow,
  waitFor,
} from "./proc.ts";

export type { LabLogLevel } from "./config.ts";
export { type LabSeries, labSeries, parseSeries } from "./containerd.ts";
export { BUSYBOX_IMAGE, PAUSE_IMAGE } from "./image.ts";
export type { CommandResult, MemoryInfo, ProcessInfo } from "./proc.ts";
export { memoryOf } from "./proc.ts";

/** Where and how the lab runs. */
export interface LabOptions {
  /** Lab directory; default `$SHIM_LAB_DIR`, else `<repo>/.lab`. */
  dir?: string;
  /** containerd's log level; default `$SHIM_LAB_LOG_LEVEL`, else `info`. */
  logLevel?: LabLogLevel;
  /** Which containerd; default `$SHIM_LAB_CONTAINERD` ({@linkcode labSeries}), else `1.6`. */
  containerd?: LabSeries;
}

/** Options of {@linkcode Lab.ctr}. */
export interface CtrOptions {
  /** containerd namespace; default `default`. */
  namespace?: string;
  /** Bytes (or text) written to ctr's stdin, which is then closed. Without it stdin is /dev/null. */
  stdin?: string | Uint8Array;
  /** ctr is SIGKILLed and a `CommandTimeoutError` thrown after this long; default 60 s. */
  timeoutMs?: number;
  /** Extra environment for ctr. */
  env?: Record<string, string>;
}

/** A running lab. */
export interface Lab {
  /** The lab directory (absolute). */
  dir: string;
  /** containerd's gRPC socket. */
  address: string;
  /** containerd's ttrpc socket (what shims publish events to). */
  ttrpcAddress: string;
  /** The busybox image, imported into namespace `default` (others: {@linkcode Lab.ensureImage}). */
  image: string;
  /** Absolute path of `<repo>/dist/containerd-shim-deno-v2` (it may not be built yet). */
  shimBinary: string;
  /** containerd's log level. */
  logLevel: LabLogLevel;
  /** Which containerd runs: its series and its version as `containerd --version` reports it. */
  containerd: { series: LabSeries; version: string };
  /** Absolute path of the `ctr` that matches this containerd (what {@linkcode Lab.ctr} runs). */
  ctrBinary: string;
  /** Absolute path of this containerd's daemon binary (a shim's `-publish-binary`). */
  containerdBinary: string;
  /** Absolute path of the Go shim of the same release, which `io.containerd.runc.v2` resolves to. */
  goShimBinary: string;
  /** Runs `ctr -a <address> -n <namespace> ...args` to completion. */
  ctr(args: string[], opts?: CtrOptions): Promise<CommandResult>;
  /** Starts a long-running ctr (e.g. `events`); stdout and stderr are piped, and the caller must kill it. */
  spawnCtr(args: string[], opts?: { namespace?: string }): Deno.ChildProcess;
  /** Imports the busybox archive into `namespace` unless it is there already. */
  ensureImage(namespace: string): Promise<void>;
  /** Imports busybox and the pause image (the CRI plugin's sandbox image) into namespace `k8s.io`. */
  ensurePauseImage(): Promise<void>;
  /** Stops containerd (SIGTERM, wait) and starts it again with the same config. Shims keep running. */
  restart(): Promise<void>;
  /** Stops containerd only (tasks and shims stay). */
  stopDaemon(): Promise<void>;
  /** Starts containerd (no-op when it is running) and waits until it answers. */
  startDaemon(): Promise<void>;
  /** SIGKILLs and force-deletes every task, then removes every container, in namespace `ns`. */
  cleanupNamespace(ns: string): Promise<void>;
  /**
   * Live processes of our shim (the launcher, or `dist/lib/deno` running the bundle, or the compiled binary) that
   * belong to this lab: their argv or their `TTRPC_ADDRESS` names this lab's sockets. Spares (servers waiting for a
   * new group, {@linkcode isSpare}) only with `spares`.
   */
  shimPids(opts?: { spares?: boolean }): Promise<number[]>;
  /** containerd's log since the running daemon was started. */
  log(): Promise<string>;
}

/** The repository root (this file is `<repo>/tests/lab/mod.ts`). */
export const repoRoot: string = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
/** `<repo>/dist`, put first on containerd's PATH. */
export const distDir: string = join(repoRoot, "dist");
const SHIM_NAME = "containerd-shim-deno-v2";
const DIST_LIB = join(distDir, "lib");
const READY_TIMEOUT_MS = 20_000;
/** The log is rotated (to `.old`) at start when it has grown past this. */
const LOG_ROTATE_BYTES = 64 << 20;

/** The series `opts` selects. */
function seriesOf(opts: LabOptions): LabSeries {
  return opts.containerd ?? labSeries();
}

/** The lab directory of `series` when none is given: `$SHIM_LAB_DIR` or `<repo>/.lab`, suffixed for 2 and 1.7. */
function defaultLabDir(series: LabSeries): string {
  const base = Deno.env.get("SHIM_LAB_DIR") || join(repoRoot, ".lab");
  return resolve(series === "1.6" ? base : `${base.replace(/\/+$/, "")}-${series}`);
}

/** The lab directory `opts` selects (absolute). */
export function labDir(opts: LabOptions = {}): string {
  return opts.dir ? resolve(opts.dir) : defaultLabDir(seriesOf(opts));
}

/**
 * Where the downloaded containerd of `series` is cached: `$SHIM_LAB_CONTAINERD_CACHE/<series>`, else
 * `<default lab dir of the series>/containerd` (shared by labs in other directories, e.g. temporary ones).
 */
export function containerdCacheDir(series: LabSeries): string {
  const base = Deno.env.get("SHIM_LAB_CONTAINERD_CACHE");
  return base ? join(resolve(base), series) : join(defaultLabDir(series), "containerd");
}

/** What {@linkcode labContainerd} found, per series and cache directory, for the life of this process. */
const found = new Map<string, ContainerdBinaries>();

/** The containerd binaries of `series` (downloading them on first use unless `download` is false). */
export async function labContainerd(series: LabSeries, download = true): Promise<ContainerdBinaries> {
  const cache = containerdCacheDir(series);
  const key = `${series}\0${cache}`;
  const known = found.get(key);
  if (known) return known;
  const bins = await ensureContainerd(series, cache, { download });
  found.set(key, bins);
  return bins;
}

/** How a report names a containerd: `containerd 2.1.9+unknown (sid)`. */
export function describeContainerd(c: { series: LabSeries; version: string }): string {
  const source = suiteOf(c.series);
  return `containerd ${c.version} (${source === "system" ? "system package" : `Debian ${source}`})`;
}

function labLogLevel(opts: LabOptions): LabLogLevel {
  const level = opts.logLevel ?? Deno.env.get("SHIM_LAB_LOG_LEVEL") ?? "info";
  if (level !== "debug" && level !== "info") throw new Error(`SHIM_LAB_LOG_LEVEL must be debug or info, not ${level}`);
  return level;
}

function lines(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** Runs `fn` holding the lab's exclusive lock (flock on `<lab>/lab.lock`). */
async function withLock<T>(p: LabPaths, fn: () => Promise<T>): Promise<T> {
  await Deno.mkdir(p.dir, { recursive: true });
  const file = await Deno.open(p.lockFile, { create: true, write: true });
  try {
    await file.lock(true);
    return await fn();
  } finally {
    file.close(); // closing the descriptor releases the lock
  }
}

/** One lab: its paths and the containerd it runs. */
interface LabCtx {
  p: LabPaths;
  bins: ContainerdBinaries;
}

function ctrArgs(p: LabPaths, args: string[], namespace = "default"): string[] {
  return ["-a", p.address, "-n", namespace, ...args];
}

function ctrAt(c: LabCtx, args: string[], opts: CtrOptions = {}): Promise<CommandResult> {
  return runCommand(c.bins.ctr, ctrArgs(c.p, args, opts.namespace), opts);
}

/** The directories that must lead containerd's PATH: our dist/, then the series' own Go shim (if not the system's). */
function pathPrefix(bins: ContainerdBinaries): string[] {
  return bins.binDir ? [distDir, bins.binDir] : [distDir];
}

/** True for the argv of the containerd this lab started. */
function isDaemonArgv(p: LabPaths, argv: string[]): boolean {
  return basename(argv[0]) === "containerd" && argv[1] === "--config" && argv[2] === p.config;
}

/** PID of this lab's containerd, or null when it is not running (pid file checked against the cmdline). */
async function daemonPid(p: LabPaths): Promise<number | null> {
  const pid = Number((await Deno.readTextFile(p.pidFile).catch(() => "")).trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const argv = await readCmdline(pid);
  return argv && isDaemonArgv(p, argv) ? pid : null;
}

/** True while `pid` exists and is not a zombie (from `/proc/<pid>/stat`, which stays readable during an exec). */
async function isLive(pid: number): Promise<boolean> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => null);
  return stat !== null && stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
}

/** The PATH a process runs with, from `/proc/<pid>/environ`. */
async function processPath(pid: number): Promise<string | null> {
  const env = await Deno.readTextFile(`/proc/${pid}/environ`).catch(() => "");
  return env.split("\0").find((e) => e.startsWith("PATH="))?.slice(5) ?? null;
}

async function answers(c: LabCtx): Promise<boolean> {
  if (!await exists(c.p.address)) return false;
  const r = await ctrAt(c, ["version"], { timeoutMs: 5_000 }).catch(() => null);
  return r?.code === 0;
}

async function logTail(p: LabPaths, n = 30): Promise<string> {
  const text = await Deno.readTextFile(p.logFile).catch(() => "");
  return text.split("\n").slice(-n - 1).join("\n");
}

async function startDaemonAt(c: LabCtx): Promise<void> {
  const p = c.p;
  if (await daemonPid(p) !== null) return;
  await stopDaemonAt(p); // a stray instance without a pid file
  for (const d of ["root", "state", "opt", "logs", "cni/bin", "cni/net.d"]) {
    await Deno.mkdir(join(p.dir, d), { recursive: true });
  }
  const logSize = (await Deno.stat(p.logFile).catch(() => null))?.size ?? 0;
  if (logSize > LOG_ROTATE_BYTES) await Deno.rename(p.logFile, `${p.logFile}.old`);
  // Sockets of a dead instance make containerd fail with "address already in use".
  for (const s of [p.address, p.ttrpcAddress, p.debugAddress]) await Deno.remove(s).catch(() => {});
  const offset = (await Deno.stat(p.logFile).catch(() => null))?.size ?? 0;
  await Deno.writeTextFile(p.logOffsetFile, `${offset}\n`);

  // A plain `cmd &` so that $! is containerd's own PID; `detached` puts it in a new session without a terminal, so
  // it outlives this process and a Ctrl-C in the terminal that ran the tests.
  // Our dist/ first (io.containerd.deno.v2 → dist/containerd-shim-deno-v2), then the series' own directory
  // (io.containerd.runc.v2 → the Go shim of the same release); the sbin directories too, since runc lives in
  // /usr/sbin and a caller's PATH (e.g. a non-root user's) may lack them.
  const standard = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
  const inherited = (Deno.env.get("PATH") ?? "").split(":").filter(Boolean);
  const lead = pathPrefix(c.bins);
  const path = [
    ...lead,
    ...inherited.filter((d) => !lead.includes(d)),
    ...standard.filter((d) => !inherited.includes(d)),
  ]
    .join(":");
  // Descriptors above 2 are closed first: a caller's inherited ones (e.g. the lock of `flock /tmp/shim-e2e.lock …`,
  // which flock(1) leaves open in its command) would otherwise live as long as the daemon and its shims, holding the
  // lock long after the command that took it ended. bash, because dash cannot redirect descriptors above 9.
  const script =
    'for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null; fi; done; ' +
    '"$3" --config "$1" >>"$2" 2>&1 </dev/null & echo $!';
  const out = await new Deno.Command("bash", {
    args: ["-c", script, "bash", p.config, p.logFile, c.bins.containerd],
    env: { PATH: path },
    detached: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const pid = Number(new TextDecoder().decode(out.stdout).trim());
  if (!out.success || !pid) {
    throw new Error(`could not start containerd: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  await Deno.writeTextFile(p.pidFile, `${pid}\n`);

  let died = false;
  const ready = await waitFor(async () => {
    // Until the background child has exec'd containerd, its cmdline is still bash's (and reads empty during the
    // exec): only a gone or zombie process has died.
    if (!await isLive(pid)) return died = true;
    if (await daemonPid(p) === null) return false;
    return await answers(c);
  }, READY_TIMEOUT_MS);
  if (ready && !died) return;
  if (!died) await terminate(pid, (argv) => isDaemonArgv(p, argv), 5_000);
  throw new Error(
    `${describeContainerd(c.bins)} ${died ? "exited during start" : `did not answer within ${READY_TIMEOUT_MS} ms`}; ` +
      `last lines of ${p.logFile}:\n${await logTail(p)}`,
  );
}

/**
 * Stops this lab's containerd: the one in the pid file, and any other process running containerd with this lab's
 * config (one whose pid file was lost, e.g. when the lab directory was deleted under it; it would hold the sockets).
 */
async function stopDaemonAt(p: LabPaths): Promise<void> {
  const pids = new Set((await findProcesses((argv) => isDaemonArgv(p, argv))).map((d) => d.pid));
  const recorded = await daemonPid(p);
  if (recorded !== null) pids.add(recorded);
  for (const pid of pids) {
    if (!await terminate(pid, (argv) => isDaemonArgv(p, argv), 10_000)) {
      throw new Error(`containerd (pid ${pid}) did not exit after SIGTERM and SIGKILL`);
    }
  }
  await Deno.remove(p.pidFile).catch(() => {});
}

/**
 * True when our shim process `pid` waits as a spare (src/shim/spare.ts): it serves nothing, and exits by itself when
 * its time is up (or with the lab). Counting servers, tests leave spares out; a spare that takes a new group is a
 * server again.
 */
export async function isSpare(pid: number): Promise<boolean> {
  return (await Deno.readTextFile(`/proc/${pid}/comm`).catch(() => "")).trim() === SPARE_PROCESS_NAME;
}

/**
 * True when `argv` is our shim: the launcher script, its deno runtime running the bundle (main.js, or the own bundle
 * of `start` or `delete`), or a compiled binary.
 */
function isDenoShimArgv(argv: string[]): boolean {
  return basename(argv[0]) === SHIM_NAME || argv.some((a) => bundleLibDir(a) === DIST_LIB) ||
    argv.some((a) => basename(a) === SHIM_NAME);
}

/** True when `argv` is any containerd shim (ours or e.g. `containerd-shim-runc-v2`). */
function isAnyShimArgv(argv: string[]): boolean {
  return isDenoShimArgv(argv) || basename(argv[0]).startsWith("containerd-shim-");
}

async function mentionsLab(p: LabPaths, pid: number, argv: string[]): Promise<boolean> {
  const ours = (a: string) => a === p.address || a === p.ttrpcAddress || a.endsWith(`=${p.address}`);
  if (argv.some(ours)) return true;
  // A re-spawned server may not repeat -address on its command line; containerd always sets TTRPC_ADDRESS.
  const env = await Deno.readTextFile(`/proc/${pid}/environ`).catch(() => "");
  return env.split("\0").includes(`TTRPC_ADDRESS=${p.ttrpcAddress}`);
}

/** Shim processes of the lab at `p`: only ours (`deno`), or every shim (`any`, including the Go shim). */
async function labShims(p: LabPaths, which: "deno" | "any"): Promise<ProcessInfo[]> {
  const candidates = await findProcesses(which === "deno" ? isDenoShimArgv : isAnyShimArgv);
  const out: ProcessInfo[] = [];
  for (const c of candidates) if (await mentionsLab(p, c.pid, c.argv)) out.push(c);
  return out;
}

/** Shim processes belonging to `lab`: ours only (default), or any shim including the Go shim. */
export async function labShimProcesses(lab: Lab, which: "deno" | "any" = "deno"): Promise<ProcessInfo[]> {
  return await labShims(labPaths(lab.dir), which);
}

async function cleanupNamespaceAt(p: LabCtx, ns: string): Promise<void> {
  const tasks = lines((await ctrAt(p, ["tasks", "ls", "-q"], { namespace: ns })).stdout);
  for (const t of tasks) await ctrAt(p, ["tasks", "kill", "-s", "SIGKILL", t], { namespace: ns });
  if (tasks.length > 0) {
    // `tasks rm -f` right after the kill may race the exit; wait until nothing is RUNNING (≈0.3 s at most usually).
    await waitFor(
      async () => {
        const ls = (await ctrAt(p, ["tasks", "ls"], { namespace: ns })).stdout;
        return !/\s(RUNNING|PAUSED|PAUSING|CREATED)\s*$/m.test(ls);
      },
      3_000,
      50,
    );
    for (const t of tasks) await ctrAt(p, ["tasks", "rm", "-f", t], { namespace: ns });
  }
  const containers = lines((await ctrAt(p, ["containers", "ls", "-q"], { namespace: ns })).stdout);
  if (containers.length > 0) await ctrAt(p, ["containers", "rm", ...containers], { namespace: ns });
}

async function importImage(p: LabCtx, ns: string, archive: string, ref: string): Promise<void> {
  const have = lines((await ctrAt(p, ["images", "ls", "-q"], { namespace: ns })).stdout);
  if (have.includes(ref)) return;
  const r = await ctrAt(p, ["images", "import", archive], { namespace: ns, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`ctr -n ${ns} images import ${archive} failed: ${r.stderr.trim()}`);
}

/** Builds the image archives when one of them is missing. */
async function ensureArchives(dir: string): Promise<void> {
  const a = imageArchivePaths(dir);
  if (!await exists(a.busybox) || !await exists(a.pause)) await buildImageArchives(dir);
}

class LabInstance implements Lab {
  readonly dir: string;
  readonly address: string;
  readonly ttrpcAddress: string;
  readonly image = BUSYBOX_IMAGE;
  readonly shimBinary = join(distDir, SHIM_NAME);
  readonly containerd: { series: LabSeries; version: string };
  readonly ctrBinary: string;
  readonly containerdBinary: string;
  readonly goShimBinary: string;
  readonly #paths: LabPaths;
  readonly #ctx: LabCtx;
  /** Namespaces known to hold the image; forgotten at restart in case the lab was purged meanwhile. */
  readonly #imported = new Set<string>();

  constructor(ctx: LabCtx, readonly logLevel: LabLogLevel) {
    const paths = ctx.p;
    this.#ctx = ctx;
    this.#paths = paths;
    this.containerd = { series: ctx.bins.series, version: ctx.bins.version };
    this.ctrBinary = ctx.bins.ctr;
    this.containerdBinary = ctx.bins.containerd;
    this.goShimBinary = ctx.bins.goShim;
    this.dir = paths.dir;
    this.address = paths.address;
    this.ttrpcAddress = paths.ttrpcAddress;
  }

  ctr(args: string[], opts?: CtrOptions): Promise<CommandResult> {
    return ctrAt(this.#ctx, args, opts);
  }

  spawnCtr(args: string[], opts: { namespace?: string } = {}): Deno.ChildProcess {
    return new Deno.Command(this.ctrBinary, {
      args: ctrArgs(this.#paths, args, opts.namespace),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  }

  async ensureImage(namespace: string): Promise<void> {
    if (this.#imported.has(namespace)) return;
    await ensureArchives(this.dir);
    await importImage(this.#ctx, namespace, imageArchivePaths(this.dir).busybox, BUSYBOX_IMAGE);
    this.#imported.add(namespace);
  }

  async ensurePauseImage(): Promise<void> {
    await this.ensureImage("k8s.io");
    await importImage(this.#ctx, "k8s.io", imageArchivePaths(this.dir).pause, PAUSE_IMAGE);
  }

  async restart(): Promise<void> {
    await withLock(this.#paths, async () => {
      await stopDaemonAt(this.#paths);
      await startDaemonAt(this.#ctx);
    });
    this.#imported.clear();
  }

  async stopDaemon(): Promise<void> {
    await withLock(this.#paths, () => stopDaemonAt(this.#paths));
  }

  async startDaemon(): Promise<void> {
    await withLock(this.#paths, () => startDaemonAt(this.#ctx));
  }

  cleanupNamespace(ns: string): Promise<void> {
    return cleanupNamespaceAt(this.#ctx, ns);
  }

  async shimPids(opts: { spares?: boolean } = {}): Promise<number[]> {
    const pids = (await labShims(this.#paths, "deno")).map((s) => s.pid);
    if (opts.spares) return pids;
    const serving: number[] = [];
    for (const pid of pids) if (!await isSpare(pid)) serving.push(pid);
    return serving;
  }

  async log(): Promise<string> {
    const offset = Number((await Deno.readTextFile(this.#paths.logOffsetFile).catch(() => "0")).trim()) || 0;
    const bytes = await Deno.readFile(this.#paths.logFile).catch(() => new Uint8Array());
    return new TextDecoder().decode(bytes.subarray(offset <= bytes.length ? offset : 0));
  }
}

/** Labs this process has announced (one `lab: containerd …` line per lab directory). */
const announced = new Set<string>();

/**
 * Brings the lab up, or reuses the running one: the daemon named in the pid file is kept when its cmdline, its
 * config, its binary and its PATH (our `dist/` first, then the series' Go shim) are what this checkout wants and it
 * answers; otherwise it is (re)started. Downloads the series' containerd on first use (2 and 1.7). Builds the image
 * archives when missing and imports busybox into namespace `default`. Says once per process, on stderr, which
 * containerd it runs: `lab: containerd 2.1.9+unknown (Debian sid) at <dir>`.
 */
export async function useLab(opts: LabOptions = {}): Promise<Lab> {
  const series = seriesOf(opts);
  const p = labPaths(labDir(opts));
  const level = labLogLevel(opts);
  const bins = await labContainerd(series);
  const ctx: LabCtx = { p, bins };
  const lab = await withLock(p, async () => {
    await ensureArchives(p.dir);
    const config = labConfig(p.dir, level, series);
    const configChanged = await Deno.readTextFile(p.config).catch(() => null) !== config;
    const pid = await daemonPid(p);
    if (pid !== null) {
      const lead = pathPrefix(bins);
      const ownPath = (await processPath(pid))?.split(":").slice(0, lead.length).join(":") === lead.join(":");
      const ownBinary = (await readCmdline(pid))?.[0] === bins.containerd;
      if (configChanged || !ownPath || !ownBinary || !await answers(ctx)) await stopDaemonAt(p);
    }
    if (configChanged) await Deno.writeTextFile(p.config, config);
    await startDaemonAt(ctx);
    const lab = new LabInstance(ctx, level);
    await lab.ensureImage("default");
    return lab;
  });
  if (!announced.has(p.dir)) {
    announced.add(p.dir);
    console.error(`lab: ${describeContainerd(bins)} at ${p.dir}`);
  }
  return lab;
}

/**
 * Tears the lab of the selected series down (`opts.containerd`, else `$SHIM_LAB_CONTAINERD`; host-lab.md §3.3): every task killed and deleted and every container removed in every
 * namespace, containerd stopped, leftover shims of this lab terminated, leftover mounts below the lab unmounted, CNI
 * bridges named by the lab's CNI config deleted. With `purge`, containerd's root and state (images, snapshots) go too;
 * the image archives and logs stay. Never touches `/run/containerd`. A lab that is not running is fine.
 */
export async function stopLab(opts: LabOptions & { purge?: boolean } = {}): Promise<void> {
  const p = labPaths(labDir(opts));
  if (!await exists(p.dir)) return;
  // Never downloads: a series that was never downloaded never ran, so only processes and mounts can be left.
  const bins = await labContainerd(seriesOf(opts), false).catch((e) => {
    if (e instanceof ContainerdNotCachedError) return null;
    throw e;
  });
  await withLock(p, async () => {
    const ctx = bins && { p, bins };
    if (ctx && await answers(ctx)) {
      for (const ns of lines((await ctrAt(ctx, ["namespaces", "ls", "-q"])).stdout)) await cleanupNamespaceAt(ctx, ns);
    }
    await stopDaemonAt(p);
    // Shims outlive containerd; left over when it was killed first or a shim misbehaved. The Go shim removes its
    // socket on SIGTERM.
    const shims = await labShims(p, "any");
    await Promise.all(shims.map((s) => terminate(s.pid, (argv) => argv.join("\0") === s.argv.join("\0"), 3_000)));
    await unmountBelow(p.dir);
    await deleteCniBridges(p);
    if (opts.purge) {
      for (const d of ["root", "state", "build", "cni/ipam", "registry-data"]) {
        await Deno.remove(join(p.dir, d), { recursive: true }).catch((e) => {
          if (!(e instanceof Deno.errors.NotFound)) throw new Error(`purge ${join(p.dir, d)}: ${e.message}`);
        });
      }
    }
  });
}

/** Deletes the bridges that the lab's CNI conflists create (they exist only after a CNI pod ran). */
async function deleteCniBridges(p: LabPaths): Promise<void> {
  const confDir = join(p.dir, "cni/net.d");
  const bridges = new Set<string>();
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(confDir)) if (/\.(conflist|conf|json)$/.test(e.name)) names.push(e.name);
  } catch { /* no CNI config directory: no bridges */ }
  for (const name of names) {
    try {
      const conf = JSON.parse(await Deno.readTextFile(join(confDir, name)));
      for (const plugin of conf.plugins ?? [conf]) {
        if (plugin.type === "bridge") bridges.add(plugin.bridge ?? "cni0");
      }
    } catch { /* not a CNI config we understand: nothing of ours to delete */ }
  }
  for (const b of bridges) {
    if (await exists(`/sys/class/net/${b}`)) await runCommand("ip", ["link", "del", b], { timeoutMs: 10_000 });
  }
}

/** Waits until `check` holds, for tests: re-exported so test files need only this module. */
export { sleep, waitFor };

if (import.meta.main) {
  // `[SHIM_LAB_CONTAINERD=2] deno run -A tests/lab/mod.ts up|stop [--purge]`: drive the lab by hand.
  const [cmd, ...rest] = Deno.args;
  if (cmd === "up") {
    const lab = await useLab();
    console.log(
      `lab up (${describeContainerd(lab.containerd)}): ${lab.ctrBinary} -a ${lab.address} ...  ` +
        `(log: ${lab.dir}/logs/containerd.log)`,
    );
  } else if (cmd === "stop") {
    await stopLab({ purge: rest.includes("--purge") });
    console.log(`lab stopped (containerd ${labSeries()}, ${labDir()})`);
  } else {
    console.error("usage: [SHIM_LAB_CONTAINERD=1.6|2|1.7] deno run -A tests/lab/mod.ts up | stop [--purge]");
    Deno.exit(2);
  }
}
