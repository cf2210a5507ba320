/**
 * A thin, typed client over the runc CLI, run through an injectable spawn function, by default src/sys/spawn.ts
 * (posix_spawn with pipes read through the shim's poller, and the exit status collected by pidfd or by the shim's
 * subreaper, which hands these pids over instead of reaping them itself).
 *
 * Every call awaits runc's exit status (no zombie runc), never blocks the event loop, and turns a failure into a
 * {@linkcode RuncError} carrying runc's own last error from the `--log` json file (only the part this call appended),
 * falling back to runc's stderr.
 *
 * `create`, `exec` and `restore` hand runc the stdio the caller asked for; the container process inherits it, so the
 * returned child's `stdin/stdout/stderr` pipe fds keep carrying the container's IO after runc itself has exited, and
 * belong to the caller from then on.
 *
 * Deno has no PdeathSignal: unlike the Go shim's runc children (SIGKILL on parent death), a runc call in flight when
 * the shim dies keeps running to completion. runc calls are short-lived, so this is accepted, not worked around.
 *
 * @example
 * ```ts
 * import { readPidFile, Runc } from "./runc.ts";
 * const runc = new Runc({ root: "/run/containerd/runc/default", log: "/run/b/log.json" });
 * const child = await runc.create("c1", {
 *   bundle: "/run/b", pidFile: "/run/b/init.pid",
 *   stdio: { stdin: "null", stdout: "piped", stderr: "piped" },
 * });
 * const pid = await readPidFile("/run/b/init.pid");
 * await runc.start("c1");
 * // child.stdout: our read end of the container's stdout (a non-blocking fd the caller now owns)
 * ```
 * @module
 */

import { log, logEnabled } from "../log.ts";
import { SysError } from "../sys/errno.ts";
import { closeFd, read, waitFor, writeAll } from "../sys/fdio.ts";
import { scratchBuffer } from "../sys/memory.ts";
import { type Child, type ChildStatus, spawn as spawnChild, type SpawnOptions } from "../sys/spawn.ts";
import { isUnknownCommand, RuncError } from "./errors.ts";
import { lastErrorMessage, lastLogErrorSince, logSize } from "./log.ts";

/** Spawns a child (src/sys/spawn.ts by default; tests inject their own). */
export type Spawn = (cmd: string, options: SpawnOptions) => Child;

export type { Child };

/** How runc (and hence the container process) gets each stdio stream. */
export type StdioMode = "piped" | "null";

/** The stdio handed to runc `create`/`exec`/`restore` and inherited by the container process. */
export interface Stdio {
  stdin: StdioMode;
  stdout: StdioMode;
  stderr: StdioMode;
  /** Capacity of the stdout/stderr pipes (see src/sys/spawn.ts); the kernel's default when absent. */
  pipeCapacity?: number;
  /** Owner of the container's ends of the pipes (Options.io_uid/io_gid; see src/sys/spawn.ts). */
  pipeOwner?: { uid: number; gid: number };
}

/** How a `Runc` runs runc: the global flags of every call. */
export interface RuncConfig {
  /** runc binary, default "runc" (Options.binary_name). */
  binary?: string;
  /** `--root`, e.g. /run/containerd/runc/<ns>. */
  root: string;
  /** `--log <path>`, always with `--log-format json`; errors are read back from it. */
  log?: string;
  /** `--systemd-cgroup`. */
  systemdCgroup?: boolean;
  /** `--debug`. */
  debug?: boolean;
  /** Default: src/sys/spawn.ts's `spawn`. */
  spawn?: Spawn;
  /**
   * Working directory of every runc call: the container's bundle, as the Go shim's runc (and any `binary_name`
   * wrapper reading `./config.json`) gets it. Default: the caller's own.
   */
  cwd?: string;
}

/** Options every call accepts. */
export interface CallOptions {
  /** Aborting kills the runc process (the call then fails with a RuncError). */
  signal?: AbortSignal;
}

/**
 * `runc create` options. There is no `detach`: `runc create` always returns once the init waits on its exec fifo,
 * and runc 1.1.5 rejects `--detach` for create ("flag provided but not defined").
 */
export interface CreateOptions extends CallOptions {
  bundle: string;
  pidFile: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  stdio: Stdio;
}

/** `runc exec` options. */
export interface ExecOptions extends CallOptions {
  pidFile: string;
  consoleSocket?: string;
  /** `--detach` (default true): runc exits once the process runs, leaving it to the subreaper. */
  detach?: boolean;
  stdio: Stdio;
  /** Directory for the private process.json handed to `--process` (default: the system temp dir). */
  processDir?: string;
}

/** CRIU `--manage-cgroups-mode`; "" means runc's default. */
export type CgroupsMode = "" | "soft" | "full" | "strict";

/** Flags shared by checkpoint and restore, named like `containerd.runc.v1.CheckpointOptions` in protobufjs. */
export interface CriuOptions {
  /** `--tcp-established`. */
  openTcp?: boolean | null;
  /** `--ext-unix-sk`. */
  externalUnixSockets?: boolean | null;
  /** `--shell-job`. */
  terminal?: boolean | null;
  /** `--file-locks`. */
  fileLocks?: boolean | null;
  /** `--empty-ns`, once per namespace. */
  emptyNamespaces?: string[] | null;
  /** `--manage-cgroups-mode`. */
  cgroupsMode?: CgroupsMode | string | null;
}

/** `runc checkpoint` options: every `CheckpointOptions` field (protobufjs camelCase names). */
export interface CheckpointOptions extends CriuOptions, CallOptions {
  /** Stop the container after the dump; false adds `--leave-running`. */
  exit?: boolean | null;
  /** `--image-path`. */
  imagePath?: string | null;
  /** `--work-path`. */
  workPath?: string | null;
  /** `--parent-path` (pre-dump images). */
  parentPath?: string | null;
}

/** `runc restore` options. */
export interface RestoreOptions extends CriuOptions, CallOptions {
  bundle: string;
  imagePath: string;
  workPath?: string | null;
  pidFile: string;
  consoleSocket?: string;
  /** `--detach` (default true). */
  detach?: boolean;
  noPivot?: boolean;
  noSubreaper?: boolean;
  stdio: Stdio;
}

/** `runc state` statuses. */
export type RuncStatus = "created" | "running" | "pausing" | "paused" | "stopped";

/** `runc state` output. */
export interface RuncState {
  ociVersion?: string;
  id: string;
  /** Init pid; 0 once stopped. */
  pid: number;
  status: RuncStatus;
  bundle: string;
  rootfs: string;
  /** RFC 3339 timestamp. */
  created: string;
  owner?: string;
  annotations?: Record<string, string>;
}

/** `runc --version` output. */
export interface RuncVersion {
  runc: string;
  commit: string;
  spec: string;
}

/** `runc features` output (opencontainers runtime-spec features; experimental, so loosely typed). */
export interface RuncFeatures {
  ociVersionMin?: string;
  ociVersionMax?: string;
  hooks?: string[];
  mountOptions?: string[];
  linux?: Record<string, unknown>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/** An OCI `process` object (runtime-spec `specs.Process`), passed to runc as JSON untouched. */
export interface OciProcess {
  args?: string[];
  cwd?: string;
  env?: string[];
  terminal?: boolean;
  user?: { uid: number; gid: number; additionalGids?: number[]; umask?: number };
  [key: string]: unknown;
}

/** OCI `LinuxResources` (runtime-spec), passed to `runc update` as JSON untouched. */
export type LinuxResources = Record<string, unknown>;

const defaultSpawn: Spawn = spawnChild;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** How long a failed create/exec/restore may spend draining runc's stderr pipe for its message. */
const STDERR_DRAIN_MS = 100;
const STDERR_DRAIN_BYTES = 64 * 1024;

/** runc resolves some paths after chdir-ing into the bundle, so relative paths are made absolute first (as Go does). */
function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/** Whether `dir` still exists (checked only after a spawn failed). */
function bundleExists(dir: string): boolean {
  try {
    return Deno.statSync(dir).isDirectory;
  } catch {
    return false;
  }
}

/** A container id that starts with "-" would be parsed by runc as a flag. */
function checkId(id: string): void {
  if (id === "" || id.startsWith("-")) throw new TypeError(`invalid container id ${JSON.stringify(id)}`);
}

function criuArgs(o: CriuOptions): string[] {
  const out: string[] = [];
  if (o.openTcp) out.push("--tcp-established");
  if (o.externalUnixSockets) out.push("--ext-unix-sk");
  if (o.terminal) out.push("--shell-job");
  if (o.fileLocks) out.push("--file-locks");
  if (o.cgroupsMode) out.push("--manage-cgroups-mode", o.cgroupsMode);
  for (const ns of o.emptyNamespaces ?? []) out.push("--empty-ns", ns);
  return out;
}

/** One read buffer for every runc call's output: each read is copied out before anything else can run. */
const scratch = scratchBuffer(64 * 1024);

/** Concatenates `chunks` (no copy for a single one). */
function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) all.set(c, (at += c.length) - c.length);
  return all;
}

/** Reads the pipe `fd` to its end, then closes it. A read error ends the output there (it is only runc's text). */
async function readToEnd(fd: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const n = read(fd, scratch);
      if (n === 0) break;
      if (n > 0) {
        chunks.push(scratch.slice(0, n));
        size += n;
      } else await waitFor(fd, "read");
    }
  } catch (err) {
    log.debug("runc output read failed", { error: err });
  } finally {
    closeFd(fd);
  }
  return concat(chunks, size);
}

/** Reads up to `limit` bytes of the pipe `fd` for at most `ms` (runc's error text on stderr). Never throws. */
async function drainBriefly(fd: number, ms: number, limit: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const timeout = AbortSignal.timeout(ms);
  try {
    while (size < limit) {
      const n = read(fd, scratch);
      if (n === 0) break;
      if (n > 0) {
        chunks.push(scratch.slice(0, n));
        size += n;
      } else await waitFor(fd, "read", timeout);
    }
  } catch {
    // timed out or the pipe failed: whatever was read is all there is
  }
  return decoder.decode(concat(chunks, size));
}

/** Closes every pipe fd of a child whose runc call failed, so none outlives the error. */
function releaseStdio(child: Child): void {
  for (const fd of [child.stdin, child.stdout, child.stderr]) {
    if (fd >= 0) closeFd(fd);
  }
}

/** Kills runc (SIGTERM, as Deno.Command's `signal` option did) when `signal` aborts; returns the unsubscribe. */
function killOnAbort(child: Child, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => {};
  const onAbort = () => child.kill();
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}

/**
 * Reads the pid runc wrote with `--pid-file`. runc writes it atomically, but the read is retried briefly on an empty,
 * partial or missing file rather than trusting that.
 */
export async function readPidFile(path: string, opts: { attempts?: number; delayMs?: number } = {}): Promise<number> {
  const attempts = opts.attempts ?? 20;
  const delayMs = opts.delayMs ?? 5;
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, delayMs));
    try {
      // Synchronous, as every small bundle file the server reads on a request's path (see log.ts, logSize).
      const text = Deno.readTextFileSync(path).trim();
      if (/^[1-9][0-9]*$/.test(text)) return Number(text);
      last = new Error(`invalid pid ${JSON.stringify(text)}`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      last = err;
    }
  }
  throw new Error(`read pid file ${path}: ${last instanceof Error ? last.message : String(last)}`, { cause: last });
}

/** A runc client bound to one `--root` (and usually one container's `--log`). */
export class Runc {
  readonly binary: string;
  readonly root: string;
  readonly log: string | undefined;
  readonly cwd: string | undefined;
  readonly #global: string[];
  readonly #spawn: Spawn;

  constructor(cfg: RuncConfig) {
    this.binary = cfg.binary || "runc";
    this.root = cfg.root;
    this.log = cfg.log;
    this.cwd = cfg.cwd;
    this.#spawn = cfg.spawn ?? defaultSpawn;
    const g = ["--root", cfg.root];
    if (cfg.debug) g.push("--debug");
    if (cfg.log) g.push("--log", cfg.log, "--log-format", "json");
    if (cfg.systemdCgroup) g.push("--systemd-cgroup");
    this.#global = g;
  }

  /** `runc create`: returns once runc exited 0; the child's piped streams are the container init's stdio. */
  async create(id: string, opts: CreateOptions): Promise<Child> {
    checkId(id);
    const args = ["create", "--bundle", absolute(opts.bundle), "--pid-file", absolute(opts.pidFile)];
    if (opts.consoleSocket) args.push("--console-socket", absolute(opts.consoleSocket));
    if (opts.noPivot) args.push("--no-pivot");
    if (opts.noNewKeyring) args.push("--no-new-keyring");
    args.push(id);
    return await this.#runWithStdio("create", args, opts.stdio, opts.signal);
  }

  /** `runc start`: lets a created container's init exec the user process. */
  async start(id: string, opts: CallOptions = {}): Promise<void> {
    checkId(id);
    await this.#run("start", ["start", id], opts);
  }

  /** `runc state`, parsed. */
  async state(id: string, opts: CallOptions = {}): Promise<RuncState> {
    checkId(id);
    return await this.#json<RuncState>("state", ["state", id], opts);
  }

  /** `runc kill [--all] <id> <signal>`. */
  async kill(id: string, signal: number, opts: CallOptions & { all?: boolean } = {}): Promise<void> {
    checkId(id);
    if (!Number.isInteger(signal) || signal <= 0) throw new TypeError(`invalid signal ${signal}`);
    const args = ["kill"];
    if (opts.all) args.push("--all");
    args.push(id, String(signal));
    await this.#run("kill", args, opts);
  }

  /** `runc delete [--force]`. */
  async delete(id: string, opts: CallOptions & { force?: boolean } = {}): Promise<void> {
    checkId(id);
    await this.#run("delete", opts.force ? ["delete", "--force", id] : ["delete", id], opts);
  }

  /** `runc pause` (cgroup freezer). */
  async pause(id: string, opts: CallOptions = {}): Promise<void> {
    checkId(id);
    await this.#run("pause", ["pause", id], opts);
  }

  /** `runc resume`. */
  async resume(id: string, opts: CallOptions = {}): Promise<void> {
    checkId(id);
    await this.#run("resume", ["resume", id], opts);
  }

  /** `runc ps --format json`: host pids of every process in the container's cgroup. */
  async ps(id: string, opts: CallOptions = {}): Promise<number[]> {
    checkId(id);
    // runc prints `null` for an empty cgroup (stopped container)
    return (await this.#json<number[] | null>("ps", ["ps", "--format", "json", id], opts)) ?? [];
  }

  /**
   * `runc exec --process <private json> [--detach] --pid-file …`: like create, returns once runc exited 0 with the
   * child whose piped streams are the new process's stdio. The process file is removed before returning.
   */
  async exec(id: string, process: OciProcess, opts: ExecOptions): Promise<Child> {
    checkId(id);
    // Synchronous file operations: three hops to Deno's blocking pool and back cost more than the work (see log.ts).
    const file = Deno.makeTempFileSync({ dir: opts.processDir, prefix: "runc-process-", suffix: ".json" });
    try {
      Deno.writeTextFileSync(file, JSON.stringify(process));
      const args = ["exec", "--process", file];
      if (opts.detach ?? true) args.push("--detach");
      args.push("--pid-file", absolute(opts.pidFile));
      if (opts.consoleSocket) args.push("--console-socket", absolute(opts.consoleSocket));
      args.push(id);
      return await this.#runWithStdio("exec", args, opts.stdio, opts.signal);
    } finally {
      try {
        Deno.removeSync(file);
      } catch {
        // already gone
      }
    }
  }

  /** `runc update --resources - <id>` with the LinuxResources JSON on stdin. */
  async update(id: string, resources: LinuxResources, opts: CallOptions = {}): Promise<void> {
    checkId(id);
    await this.#run("update", ["update", "--resources", "-", id], { ...opts, input: JSON.stringify(resources) });
  }

  /** `runc checkpoint`, mapping every CheckpointOptions field; without `exit` the container is left running. */
  async checkpoint(id: string, opts: CheckpointOptions = {}): Promise<void> {
    checkId(id);
    const args = ["checkpoint"];
    if (opts.imagePath) args.push("--image-path", absolute(opts.imagePath));
    if (opts.workPath) args.push("--work-path", absolute(opts.workPath));
    if (opts.parentPath) args.push("--parent-path", opts.parentPath); // runc resolves it relative to the image path
    args.push(...criuArgs(opts));
    if (!opts.exit) args.push("--leave-running");
    args.push(id);
    await this.#run("checkpoint", args, opts);
  }

  /** `runc restore --detach`: like create, returns the child whose piped streams are the restored init's stdio. */
  async restore(id: string, opts: RestoreOptions): Promise<Child> {
    checkId(id);
    const args = ["restore", "--bundle", absolute(opts.bundle), "--image-path", absolute(opts.imagePath)];
    if (opts.workPath) args.push("--work-path", absolute(opts.workPath));
    args.push(...criuArgs(opts));
    if (opts.detach ?? true) args.push("--detach");
    args.push("--pid-file", absolute(opts.pidFile));
    if (opts.consoleSocket) args.push("--console-socket", absolute(opts.consoleSocket));
    if (opts.noPivot) args.push("--no-pivot");
    if (opts.noSubreaper) args.push("--no-subreaper");
    args.push(id);
    return await this.#runWithStdio("restore", args, opts.stdio, opts.signal);
  }

  /** `runc features` (runc ≥ 1.1), parsed; null when this runc has no `features` command. */
  async features(opts: CallOptions = {}): Promise<RuncFeatures | null> {
    try {
      return await this.#json<RuncFeatures>("features", ["features"], opts);
    } catch (err) {
      if (isUnknownCommand(err)) return null;
      throw err;
    }
  }

  /** `runc --version`, parsed ("runc version X", "commit: Y", "spec: Z"). */
  async version(opts: CallOptions = {}): Promise<RuncVersion> {
    const text = decoder.decode(await this.#run("version", ["--version"], opts));
    const v: RuncVersion = { runc: "", commit: "", spec: "" };
    for (const line of text.split("\n").map((l) => l.trim())) {
      if (line.startsWith("runc version ")) v.runc = line.slice("runc version ".length);
      else if (line.startsWith("commit: ")) v.commit = line.slice("commit: ".length);
      else if (line.startsWith("spec: ")) v.spec = line.slice("spec: ".length);
    }
    return v;
  }

  async #json<T>(command: string, args: string[], opts: CallOptions): Promise<T> {
    const out = await this.#run(command, args, opts);
    try {
      return JSON.parse(decoder.decode(out)) as T;
    } catch (err) {
      throw new RuncError({
        command,
        args: [...this.#global, ...args],
        code: 0,
        signal: null,
        runtimeMessage: `unparsable output: ${(err as Error).message}`,
        cause: err,
      });
    }
  }

  /** Spawns runc or throws a RuncError saying why it could not start. */
  #start(command: string, args: string[], options: SpawnOptions): Child {
    const full = [...this.#global, ...args];
    try {
      try {
        return this.#spawn(this.binary, { ...options, args: full, cwd: this.cwd });
      } catch (err) {
        // A bundle already removed (cleanup after containerd gave up on it) must not stop `delete --force`/`kill`:
        // the same call from our own directory then. Every path handed to runc is absolute.
        if (!this.cwd || !(err instanceof SysError && err.syscall === "chdir") || bundleExists(this.cwd)) throw err;
        return this.#spawn(this.binary, { ...options, args: full });
      }
    } catch (err) {
      const why = err instanceof SysError && err.syscall === "posix_spawn"
        ? err.message.slice(err.message.lastIndexOf(": ") + 2) // "No such file or directory (ENOENT)"
        : err instanceof Error
        ? err.message
        : String(err);
      throw new RuncError({
        command,
        args: full,
        code: null,
        signal: null,
        runtimeMessage: `spawn ${this.binary}: ${why}`,
        cause: err,
      });
    }
  }

  /** runc's last error appended to the log since `offset`, or "" (no log, nothing logged, or unreadable). */
  async #logged(offset: number): Promise<string> {
    if (!this.log) return "";
    try {
      return await lastLogErrorSince(this.log, offset);
    } catch (err) {
      log.warn("runc: cannot read log", { path: this.log, error: err });
      return "";
    }
  }

  #failure(command: string, args: string[], status: ChildStatus, message: string): RuncError {
    return new RuncError({
      command,
      args: [...this.#global, ...args],
      code: status.signal ? null : status.code,
      signal: status.signal,
      runtimeMessage: message,
    });
  }

  /** Runs a call that owns runc's stdio: optional stdin input, stdout returned, stderr kept for errors. */
  async #run(command: string, args: string[], opts: CallOptions & { input?: string }): Promise<Uint8Array> {
    const offset = this.log ? logSize(this.log) : 0;
    const t0 = performance.now();
    const child = this.#start(command, args, {
      stdin: opts.input === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    });
    const unsubscribe = killOnAbort(child, opts.signal);
    let feeding: Promise<void> = Promise.resolve();
    if (opts.input !== undefined) {
      // runc may exit without reading stdin (e.g. unknown container): a broken pipe is not the error to report
      feeding = writeAll(child.stdin, encoder.encode(opts.input)).catch(() => {}).finally(() => closeFd(child.stdin));
    }
    const out = readToEnd(child.stdout);
    const err = readToEnd(child.stderr);
    let status: ChildStatus;
    try {
      status = await child.status;
    } finally {
      unsubscribe();
    }
    const [stdout, stderr] = await Promise.all([out, err, feeding]);
    this.#trace(command, args, t0, status.code);
    if (!status.success) {
      const message = await this.#logged(offset) || lastErrorMessage(decoder.decode(stderr));
      throw this.#failure(command, args, status, message);
    }
    return stdout;
  }

  /** Runs create/exec/restore: runc's stdio belongs to the container process and is handed to the caller. */
  async #runWithStdio(command: string, args: string[], stdio: Stdio, signal?: AbortSignal): Promise<Child> {
    const offset = this.log ? await logSize(this.log) : 0;
    const t0 = performance.now();
    const child = this.#start(command, args, { ...stdio });
    const unsubscribe = killOnAbort(child, signal);
    let status: ChildStatus;
    try {
      status = await child.status;
    } catch (err) {
      releaseStdio(child);
      throw err;
    } finally {
      unsubscribe();
    }
    this.#trace(command, args, t0, status.code);
    if (status.success) return child;
    let message = await this.#logged(offset);
    // runc also prints its error on stderr; when that is a pipe and the log said nothing, a short read stands in
    if (!message && child.stderr >= 0) {
      message = lastErrorMessage(await drainBriefly(child.stderr, STDERR_DRAIN_MS, STDERR_DRAIN_BYTES));
    }
    releaseStdio(child);
    throw this.#failure(command, args, status, message);
  }

  #trace(command: string, args: string[], t0: number, code: number): void {
    if (logEnabled("debug")) {
      log.debug(`runc ${command}`, { args: args.join(" "), code, ms: Math.round(performance.now() - t0) });
    }
  }
}
