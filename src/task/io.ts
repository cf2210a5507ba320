/**
 * A process's stdio, between the container and whatever containerd named: fifos (the default), `file://` paths,
 * `binary://` logging drivers, or nothing.
 *
 * The container writes into pipes that runc hands it (made by src/sys/spawn.ts; our ends are non-blocking fds read
 * through the poller); the shim copies them into the sinks with plain read(2)/write(2) on the JS thread. Every copy
 * loop reads into one buffer shared by all of them: a chunk leaves it synchronously (a file or fifo write), and only a
 * fifo that is full copies what it could not take yet, so a container's streams hold no buffer of their own.
 * (splice(2) would skip even that copy, but it refuses files opened O_APPEND, which `file://` must be, and a fifo sink
 * already runs well above the Go shim's throughput.) Two rules from containerd's bug history:
 * - the container must never block on stdout because its reader went away: a sink whose reader left (EPIPE) keeps
 *   up to AWAY_OUTPUT_MAX for the next reader (containerd restarting, a CRI log reader reconnecting, `ctr task
 *   attach`), drops what is beyond that, and keeps draining; a slow but present reader gets back-pressure, not loss,
 *   and so does a late one, for up to READER_WAIT_MS, after which a reader that never came (ENXIO) is treated as gone;
 * - everything written before exit reaches the sink before the exit is reported: `drained()` resolves when every
 *   copy loop has seen end-of-stream.
 *
 * @module
 */
import { log } from "../log.ts";
import type { Child, Stdio } from "../runc/runc.ts";
import { ENOENT, ENXIO, EPIPE, errnoMessage, SysError } from "../sys/errno.ts";
import { O_CLOEXEC, SIGKILL, SIGTERM } from "../sys/abi.ts";
import {
  closeFd,
  openAppend,
  paceIo,
  pipe,
  read,
  readAsync,
  waitFor,
  write as writeFd,
  writeAll,
} from "../sys/fdio.ts";
import { setNonblocking } from "../sys/libc.ts";
import { openFifo } from "../sys/fifo.ts";
import { poller } from "../sys/poller.ts";
import { spawn, type SpawnOptions } from "../sys/spawn.ts";
import { scratchBuffer } from "../sys/memory.ts";
import { sleep, within } from "../timer.ts";

/** Spawns a child process (src/sys/spawn.ts's `spawn`; injectable for tests). */
export type SpawnFn = (cmd: string, options: SpawnOptions) => Child;

/**
 * The read buffer of every output copy loop (see the module documentation), and the capacity of the container's
 * output pipes: 256 KiB chunks instead of the kernel's default 64 KiB pipes doubled the copy rate of a `dd bs=1M`
 * (≈ 0.8 → 1.6 GiB/s in-process, like `dd | cat`); larger gained nothing more. Pages are touched only as data comes.
 */
const CHUNK = 256 * 1024;
const shared = scratchBuffer(CHUNK);

/** The stdio fields of a Create or Exec request. */
export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** Where output goes. */
interface Sink {
  /**
   * Writes `chunk`, which is only valid until this returns: undefined when it was all taken (or dropped) at once,
   * else a promise for the rest, which the sink copied first.
   */
  write(chunk: Uint8Array): Promise<void> | undefined;
  /**
   * The stream ended. A fifo sink still holding output for a reader that went away keeps its fd (and keeps trying)
   * until the output is delivered or `final` (the process's IO is released at Delete).
   */
  close(final?: boolean): void;
  /** The most a copy loop reads for one write: a fifo takes 64 KiB at a time, more would only be kept and waited on. */
  readonly chunk: number;
}

/** How long a fifo sink waits for its reader to arrive (containerd opens its end in a goroutine, see FifoSink). */
const READER_WAIT_MS = 10_000;
/** What a fifo sink keeps while its reader has not arrived yet: one pipe's capacity, so the flush always fits. */
const EARLY_OUTPUT_MAX = 64 * 1024;
/**
 * What a fifo sink keeps for the next reader after its reader went away (EPIPE). The Go shim holds a read end of its
 * own, so the kernel keeps one pipe's worth (64 KiB) for the next reader and then blocks the container until one
 * comes; we keep this much and never block.
 */
const AWAY_OUTPUT_MAX = 256 * 1024;
/** How often a sink holding output for a departed reader looks for a new one: from the first to the last, doubling. */
const AWAY_RETRY_MS = [10, 1000] as const;

/**
 * A fifo containerd reads. Opened write-only so a departed reader shows as EPIPE instead of a silent fill-up.
 *
 * containerd opens its read end with containerd/fifo's O_NONBLOCK mode, which does the real (blocking) open(2) in a
 * goroutine: on a loaded machine that can come after our open, which then fails with ENXIO. Dropping the output and
 * never opening the fifo would leave that goroutine blocked forever waiting for a writer, and containerd waiting on it
 * (a CRI ExecSync of `echo` hung until its timeout this way). So an ENXIO at construction means "not arrived yet": the
 * sink retries for up to READER_WAIT_MS and keeps up to one pipe's worth of output meanwhile; once the reader is there
 * it writes that, and closes if the stream already ended, so the reader sees EOF. More output than that waits for the
 * reader (back-pressure, as the Go shim's blocking open gives): `ctr run` of `seq 1 20000` lost ~10 KB in CI when its
 * reader came late and the overflow was dropped. Only a reader that never comes (the wait runs out) loses output.
 *
 * A reader that leaves (EPIPE: containerd restarting, the foreground `ctr` killed) may be followed by another on the
 * same fifo, whose pipe our write fd still holds. Until then the sink keeps up to AWAY_OUTPUT_MAX of output in order
 * (`#kept`), drops what comes beyond it (one gap, logged), looks for the next reader at growing intervals and at every
 * new write, and hands it the kept output first. The container never waits for this.
 */
class FifoSink implements Sink {
  readonly chunk = 64 * 1024;
  #fd = -1;
  /** The stream ended: no more writes come. */
  #closed = false;
  /** The fd is closed (the reader sees EOF); nothing more goes out. */
  #released = false;
  #dropping = false;
  readonly #abort = new AbortController();
  /** While the reader has not arrived: output kept for it (undefined once connected or given up). */
  #early: Uint8Array[] | undefined;
  #earlySize = 0;
  /** Settles when the wait for the reader ends: true when it arrived (and the kept output went out), false if not. */
  readonly #arrival = Promise.withResolvers<boolean>();
  /** Output kept for the next reader after one went away (EPIPE), oldest first; see the class documentation. */
  #kept: Uint8Array[] = [];
  #keptSize = 0;
  /** Bytes dropped since the reader went away because #kept was full (reported once the next reader comes). */
  #lost = 0;
  /** The loop looking for the next reader while #kept holds output. */
  #retrying = false;
  /** Writing into a pipe handed over (a logging driver's), not a fifo another reader could open again. */
  readonly #pipe: boolean;
  /** `fd`: a write end opened already (a logging driver's pipe), else the fifo at `path` is opened here. */
  constructor(readonly path: string, fd = -1) {
    this.#pipe = fd >= 0;
    if (fd >= 0) this.#fd = fd;
    else if (!this.#tryOpen()) {
      this.#early = [];
      this.#awaitReader();
    }
  }

  async #awaitReader(): Promise<void> {
    const deadline = Date.now() + READER_WAIT_MS;
    for (let delay = 1; Date.now() < deadline; delay = Math.min(delay * 2, 50)) {
      await sleep(delay); // unref'd, as before; not a Deno timer (src/timer.ts)
      if (this.#released) break; // the IO was released at Delete: no reader is owed anything now
      if (!this.#tryOpen()) continue;
      const early = this.#early ?? [];
      this.#early = undefined;
      for (const chunk of early) {
        if (this.#writeNow(chunk, 0) < chunk.length) log.debug("stdio fifo full at connect", { path: this.path });
      }
      this.#arrival.resolve(true);
      if (this.#closed && !this.#kept.length) this.#release();
      return;
    }
    if (this.#early?.length) this.#drop("no reader");
    this.#early = undefined;
    this.#arrival.resolve(false);
  }

  #tryOpen(): boolean {
    try {
      this.#fd = openFifo(this.path, "w");
      return true;
    } catch (err) {
      if (!(err instanceof SysError && err.errno === ENXIO)) {
        log.warn("cannot open stdio fifo", { path: this.path, error: err });
      }
      return false;
    }
  }

  #drop(reason: string): void {
    if (!this.#dropping) log.debug("stdio reader gone; dropping output", { path: this.path, reason });
    this.#dropping = true;
  }

  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#closed) return;
    if (this.#early) {
      // The reader has not arrived yet: keep a pipe's worth for it; beyond that, wait for it.
      if (this.#earlySize + chunk.length <= EARLY_OUTPUT_MAX) {
        this.#early.push(chunk.slice());
        this.#earlySize += chunk.length;
        return;
      }
      return this.#writeOnArrival(chunk.slice());
    }
    if (this.#fd < 0 && !this.#tryOpen()) {
      this.#drop("no reader");
      return;
    }
    if (this.#kept.length) {
      // A reader went away: what was kept for the next one goes first, then this chunk, in order.
      const flushed = this.#flushKept();
      if (flushed !== "done") {
        this.#keep(chunk, flushed === "full");
        return flushed === "full" ? this.#flushLater() : undefined;
      }
    }
    const off = this.#writeNow(chunk, 0);
    // A full fifo (a slow reader): keep the rest, which the caller's buffer cannot hold, and wait for room.
    return off < chunk.length ? this.#writeLater(chunk.slice(off)) : undefined;
  }

  /** Writes what the fifo takes now; returns how far it got (the chunk's length when done or dropped). */
  #writeNow(chunk: Uint8Array, off: number): number {
    while (off < chunk.length) {
      let n: number;
      try {
        n = writeFd(this.#fd, off === 0 ? chunk : chunk.subarray(off));
      } catch (err) {
        if (!(err instanceof SysError && err.errno === EPIPE)) {
          log.warn("stdio write failed; dropping output", { path: this.path, error: err });
        } else if (this.#pipe) this.#drop("EPIPE"); // a driver's pipe: nobody else can ever read it
        else this.#keep(chunk.subarray(off), false);
        return chunk.length;
      }
      if (n < 0) return off;
      this.#dropping = false;
      off += n;
    }
    return chunk.length;
  }

  /**
   * Keeps (a copy of) `chunk` for the next reader, within AWAY_OUTPUT_MAX unless `always` (a present but full reader:
   * the caller waits for it, so this is bounded by back-pressure); starts looking for that reader.
   */
  #keep(chunk: Uint8Array, always: boolean): void {
    if (!this.#kept.length && !always) log.debug("stdio reader gone; keeping output for the next", { path: this.path });
    if (always || this.#keptSize + chunk.length <= AWAY_OUTPUT_MAX) {
      this.#kept.push(chunk.slice());
      this.#keptSize += chunk.length;
    } else {
      if (!this.#lost) log.warn("stdio reader gone too long; dropping output", { path: this.path });
      this.#lost += chunk.length;
    }
    if (!this.#retrying) this.#retryKept();
  }

  /**
   * Writes the kept output, oldest first, as far as the fifo takes it: "done" when all went out, "full" when a reader
   * is there but its pipe is full, "away" when there is still none (or the fd failed).
   */
  #flushKept(): "done" | "full" | "away" {
    while (this.#kept.length) {
      const head = this.#kept[0];
      let n: number;
      try {
        n = writeFd(this.#fd, head);
      } catch (err) {
        if (!(err instanceof SysError && err.errno === EPIPE)) {
          log.warn("stdio write failed; dropping output", { path: this.path, error: err });
          this.#kept = [];
          this.#keptSize = 0;
          return "done";
        }
        return "away";
      }
      if (n < 0) return "full";
      if (this.#lost) {
        log.warn("stdio reader back; output was lost meanwhile", { path: this.path, bytes: this.#lost });
        this.#lost = 0;
      }
      this.#keptSize -= n;
      if (n < head.length) this.#kept[0] = head.subarray(n);
      else this.#kept.shift();
    }
    return "done";
  }

  /** Back-pressure for a present reader that is full: resolves once the kept output is out (or away again). */
  async #flushLater(): Promise<void> {
    while (!this.#released) {
      try {
        await poller().wait(this.#fd, "write", this.#abort.signal);
      } catch {
        return; // released while waiting
      }
      if (this.#flushKept() !== "full") return;
    }
  }

  /** Looks for the next reader while output is kept for it (AWAY_RETRY_MS); releases a closed sink once delivered. */
  async #retryKept(): Promise<void> {
    this.#retrying = true;
    try {
      for (let delay: number = AWAY_RETRY_MS[0]; this.#kept.length && !this.#released;) {
        await sleep(delay); // unref'd (src/timer.ts): a running container's pipes keep the server alive, not this
        if (this.#released || !this.#kept.length) break;
        const flushed = this.#flushKept();
        if (flushed === "full") await this.#flushLater();
        else if (flushed === "away") delay = Math.min(delay * 2, AWAY_RETRY_MS[1]);
      }
    } finally {
      this.#retrying = false;
    }
    if (this.#closed && !this.#kept.length) this.#release();
  }

  /** Writes `chunk` once the reader has arrived and taken what was kept for it; drops it if the reader never comes. */
  async #writeOnArrival(chunk: Uint8Array): Promise<void> {
    if (!await this.#arrival.promise) {
      this.#drop("reader not arrived");
      return;
    }
    await this.write(chunk); // connected now (or closed meanwhile, which write() knows)
  }

  async #writeLater(rest: Uint8Array): Promise<void> {
    let off = 0;
    while (off < rest.length && !this.#released) {
      try {
        await poller().wait(this.#fd, "write", this.#abort.signal);
      } catch {
        return; // closed while waiting
      }
      off = this.#writeNow(rest, off);
    }
  }

  close(final = false): void {
    if (this.#released) return;
    this.#closed = true;
    if (final) {
      if (this.#kept.length || this.#lost) {
        log.warn("stdio reader never came back; output dropped", {
          path: this.path,
          bytes: this.#keptSize + this.#lost,
        });
      }
      this.#kept = [];
      this.#keptSize = 0;
      this.#release();
      return;
    }
    // Still waiting for the first reader: #awaitReader delivers what was kept and closes once it is there; output kept
    // for the next reader after one left: #retryKept does the same.
    if (!this.#early && !this.#kept.length) this.#release();
  }

  #release(): void {
    this.#released = true;
    this.#abort.abort();
    if (this.#fd >= 0) closeFd(this.#fd);
    this.#fd = -1;
  }
}

/**
 * A `file://` destination shared by stdout and stderr, appended to through a raw fd with plain write(2): a regular
 * file (or /dev/null) takes a chunk into the page cache in microseconds, twice as fast as going through Deno's
 * blocking pool for every chunk. The parent directory is created when missing, as containerd's Go shim does.
 */
class FileSink implements Sink {
  readonly chunk = CHUNK;
  #users = 0;
  #fd: number;
  private constructor(readonly path: string, fd: number) {
    this.#fd = fd;
  }

  static async open(path: string): Promise<FileSink> {
    try {
      return new FileSink(path, openAppend(path));
    } catch (err) {
      if (!(err instanceof SysError && err.errno === ENOENT)) throw err;
    }
    const dir = path.slice(0, path.lastIndexOf("/"));
    if (dir) await Deno.mkdir(dir, { recursive: true });
    return new FileSink(path, openAppend(path));
  }

  use(): this {
    this.#users++;
    return this;
  }

  write(chunk: Uint8Array): undefined {
    if (this.#fd < 0) return;
    try {
      // Whole chunks, so stdout and stderr lines do not interleave mid-chunk.
      for (let off = 0; off < chunk.length;) {
        const n = writeFd(this.#fd, off === 0 ? chunk : chunk.subarray(off));
        off += Math.max(n, 0);
      }
    } catch (err) {
      log.warn("log file write failed; dropping output", { path: this.path, error: err });
    }
  }

  close(): void {
    if (--this.#users > 0 || this.#fd < 0) return;
    closeFd(this.#fd);
    this.#fd = -1;
  }
}

/** A parsed stdio URI. For `binary://`: the driver's arguments and extra environment (`env.NAME=value`). */
export interface StdioUri {
  scheme: "fifo" | "file" | "binary";
  path: string;
  args: string[];
  env: Record<string, string>;
}

/** Parses containerd's stdio URI forms: bare path (fifo), `fifo://`, `file://`, `binary://`. */
export function parseStdioUri(uri: string): StdioUri {
  if (!uri.includes("://")) return { scheme: "fifo", path: uri, args: [], env: {} };
  const u = new URL(uri);
  const scheme = u.protocol.slice(0, -1);
  const path = decodeURIComponent(u.pathname);
  if (scheme === "fifo" || scheme === "file") return { scheme, path, args: [], env: {} };
  if (scheme === "binary") {
    // As containerd's shims build the driver's command line: each query key once, followed by its first value, even
    // an empty one (`?id=1&dir` → "id", "1", "dir", ""); keys `env.NAME` set NAME in its environment instead
    // (containerd 2.1+). Go walks a map, so its order is random; ours is the URI's.
    const args: string[] = [];
    const env: Record<string, string> = {};
    const seen = new Set<string>();
    for (const [k, v] of u.searchParams) {
      if (seen.has(k)) continue;
      seen.add(k);
      if (k.startsWith("env.")) env[k.slice(4)] = v;
      else args.push(k, v);
    }
    return { scheme, path, args, env };
  }
  throw new Error(`unsupported stdio scheme ${JSON.stringify(scheme)} in ${uri}`);
}

/** How long a logging driver gets: to signal readiness, to exit after end of input, and after SIGTERM. */
export interface LoggerTimes {
  readyMs: number;
  graceMs: number;
  termMs: number;
}

/**
 * The Go shim waits for readiness without a bound and gives a driver 12 s after SIGTERM (binaryIOProcTermTimeout);
 * it sends SIGTERM as soon as the input is closed, where we first give the driver a moment to finish by itself.
 */
const LOGGER_TIMES: LoggerTimes = { readyMs: 10_000, graceMs: 1_000, termMs: 12_000 };

/**
 * A `binary://` logging driver, started as containerd's Go shim does: the container's output reaches it through
 * pipes as fd 3 (stdout) and fd 4 (stderr), it writes a byte to (or closes) fd 5 when it is ready, and it gets
 * CONTAINER_ID and CONTAINER_NAMESPACE in its environment. At the end the pipes close (end of input), and the driver
 * gets LOGGER_TIMES.graceMs to exit, then SIGTERM, then SIGKILL after termMs; close() resolves once it is gone.
 */
class BinaryLogger {
  private constructor(
    readonly path: string,
    readonly stdout: FifoSink,
    readonly stderr: FifoSink,
    readonly child: Child,
    readonly times: LoggerTimes,
  ) {}

  static async start(
    uri: StdioUri,
    env: Record<string, string>,
    spawnFn: SpawnFn,
    times: LoggerTimes,
  ): Promise<BinaryLogger> {
    const opened: number[] = [];
    const pipeFds = () => {
      const fds = pipe(O_CLOEXEC); // both ends blocking: the driver's stay so, ours become non-blocking
      opened.push(...fds);
      return fds;
    };
    let child: Child | undefined;
    try {
      const [outR, outW] = pipeFds(), [errR, errW] = pipeFds(), [readyR, readyW] = pipeFds();
      for (const fd of [outW, errW, readyR]) setNonblocking(fd);
      try {
        child = spawnFn(uri.path, {
          args: uri.args,
          env: { ...uri.env, ...env },
          stdin: "null",
          stdout: "null",
          // Not our fd 2 (containerd's log fifo, non-blocking, and gone while containerd restarts: a driver writing
          // there then would die of SIGPIPE); the Go shim gives it /dev/null, we forward its lines to our log.
          stderr: "piped",
          extraFds: [outR, errR, readyW],
        });
      } catch (err) {
        // The Go shim's words: "failed to start binary process: fork/exec /x: no such file or directory".
        const why = err instanceof SysError ? errnoMessage(err.errno).toLowerCase() : String(err);
        throw new Error(`failed to start binary process: fork/exec ${uri.path}: ${why}`);
      }
      void forwardLines(child.stderr, (line) => log.warn("logging binary stderr", { path: uri.path, line }));
      for (const fd of [outR, errR, readyW]) closeFd(fd);
      opened.splice(0, opened.length, outW, errW, readyR);
      // Ready: a byte, or end of file (the driver closed fd 5, or exited).
      const ready = await waitFor(readyR, "read", AbortSignal.timeout(times.readyMs)).then(() => true, () => false);
      if (!ready) throw new Error(`logging binary ${uri.path} did not signal readiness within ${times.readyMs} ms`);
      closeFd(readyR);
      opened.length = 0;
      const sinks = [new FifoSink(`${uri.path} (fd 3)`, outW), new FifoSink(`${uri.path} (fd 4)`, errW)] as const;
      return new BinaryLogger(uri.path, ...sinks, child, times);
    } catch (e) {
      for (const fd of opened) closeFd(fd);
      if (child) {
        child.kill(SIGKILL);
        await child.status.catch(() => {});
      }
      throw e;
    }
  }

  /** Ends the driver's input and waits until it exited (see the class documentation). */
  async close(): Promise<void> {
    this.stdout.close(true);
    this.stderr.close(true);
    if (await within(this.child.status, this.times.graceMs)) return;
    this.child.kill(SIGTERM);
    if (await within(this.child.status, this.times.termMs)) return;
    log.warn("logging binary did not exit after SIGTERM; killing it", { path: this.path, pid: this.child.pid });
    this.child.kill(SIGKILL);
    await this.child.status.catch(() => {});
  }
}

/**
 * Reads `fd` (non-blocking) to its end, handing each line (at most 4 KiB of it) to `emit`, then closes it. Never
 * rejects.
 */
async function forwardLines(fd: number, emit: (line: string) => void): Promise<void> {
  const buf = new Uint8Array(4096);
  const decoder = new TextDecoder();
  let pending = "";
  const flush = (all: boolean) => {
    for (let nl; (nl = pending.indexOf("\n")) >= 0;) {
      emit(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
    if (all || pending.length >= buf.length) {
      if (pending) emit(pending.slice(0, buf.length));
      pending = "";
    }
  };
  try {
    for (let n; (n = await readAsync(fd, buf)) > 0;) {
      pending += decoder.decode(buf.subarray(0, n), { stream: true });
      flush(false);
    }
  } catch {
    // closed under us, or EIO: what was read is still emitted
  } finally {
    flush(true);
    closeFd(fd);
  }
}

/** What ProcessIO.open needs besides the paths. */
export interface IOOptions {
  /** For binary loggers (CONTAINER_ID, CONTAINER_NAMESPACE). */
  env?: Record<string, string>;
  /** Spawns logging drivers (injectable for tests). */
  spawn?: SpawnFn;
  /** A logging driver's time limits (shorter in tests). */
  loggerTimes?: LoggerTimes;
  /** Owner of the container's ends of its stdio pipes (Options.io_uid/io_gid). */
  pipeOwner?: { uid: number; gid: number };
}

/** The stdio of one process, from setup before runc runs to close at Delete. */
export class ProcessIO {
  readonly paths: StdioPaths;
  #stdout?: Sink;
  #stderr?: Sink;
  #logger?: BinaryLogger;
  #stdinFd = -1;
  /** Aborted by close(): the stdin copy stops at once. */
  #stdinAbort = new AbortController();
  /** Aborted by CloseIO: wakes the stdin copy so it can drain and finish. */
  #stdinWake = new AbortController();
  #stdinClosing = false;
  #copies: Promise<void>[] = [];
  #closers: (() => void)[] = [];
  #consoleFd = -1;
  #closed = false;
  #loggerExit?: Promise<void>;
  #pipeOwner?: { uid: number; gid: number };

  private constructor(paths: StdioPaths) {
    this.paths = paths;
  }

  /** Opens the destinations named in `paths`. */
  static async open(paths: StdioPaths, options: IOOptions = {}): Promise<ProcessIO> {
    const io = new ProcessIO(paths);
    io.#pipeOwner = options.pipeOwner;
    try {
      const out = paths.stdout ? parseStdioUri(paths.stdout) : undefined;
      const err = paths.stderr ? parseStdioUri(paths.stderr) : undefined;
      if (out?.scheme === "binary") {
        io.#logger = await BinaryLogger.start(
          out,
          options.env ?? {},
          options.spawn ?? spawn,
          options.loggerTimes ?? LOGGER_TIMES,
        );
        io.#stdout = io.#logger.stdout;
        io.#stderr = io.#logger.stderr;
      } else if (out?.scheme === "file") {
        const file = await FileSink.open(out.path);
        io.#stdout = file.use();
        if (!err || (err.scheme === "file" && err.path === out.path)) io.#stderr = file.use();
      } else if (out) io.#stdout = new FifoSink(out.path);
      if (err && !io.#stderr) {
        if (err.scheme === "file") io.#stderr = (await FileSink.open(err.path)).use();
        else if (err.scheme === "fifo") io.#stderr = new FifoSink(err.path);
        else throw new Error(`stderr must use the same binary logger as stdout: ${paths.stderr}`);
      }
      if (paths.stdin) {
        // Read-write: never blocks, and EOF comes only from CloseIO (containerd's semantics for stdin fifos).
        io.#stdinFd = openFifo(parseStdioUri(paths.stdin).path, "rw");
      }
      return io;
    } catch (e) {
      await io.close();
      throw e;
    }
  }

  /** How runc must set up the container's stdio for a non-terminal process. */
  runcStdio(): Stdio {
    return {
      stdin: this.#stdinFd >= 0 ? "piped" : "null",
      stdout: this.#stdout ? "piped" : "null",
      stderr: this.#stderr ? "piped" : "null",
      pipeCapacity: CHUNK,
      pipeOwner: this.#pipeOwner,
    };
  }

  /**
   * Starts copying between the container's pipes (our ends of runc's child stdio) and the sinks. Takes ownership of
   * the child's pipe fds: those `stdio` does not use are closed at once, the others when their copy ends.
   */
  attachPipes(child: Pick<Child, "stdin" | "stdout" | "stderr">, stdio: Stdio): void {
    const use = (fd: number, mode: string, wanted: boolean): number => {
      if (fd < 0) return -1;
      if (mode === "piped" && wanted) return fd;
      closeFd(fd);
      return -1;
    };
    const out = use(child.stdout, stdio.stdout, !!this.#stdout);
    const err = use(child.stderr, stdio.stderr, !!this.#stderr);
    const stdin = use(child.stdin, stdio.stdin, this.#stdinFd >= 0);
    if (out >= 0) this.#copies.push(this.#pump(out, this.#stdout!, true));
    if (err >= 0) this.#copies.push(this.#pump(err, this.#stderr!, true));
    if (stdin >= 0) {
      this.#copyStdin(
        (b) => writeAll(stdin, b, this.#stdinAbort.signal),
        () => closeFd(stdin),
      );
    }
  }

  /** Starts copying between a pty master and the sinks (terminal processes: one stream, stdout). */
  attachConsole(masterFd: number): void {
    this.#consoleFd = masterFd;
    this.#closers.push(() => closeFd(masterFd));
    if (this.#stdout) this.#copies.push(this.#pump(masterFd, this.#stdout, false));
    if (this.#stdinFd >= 0) {
      // A terminal has no half-close: EOF is ^D in the line discipline.
      this.#copyStdin(
        (b) => writeAll(masterFd, b, this.#stdinAbort.signal),
        () => {
          // After close() the master is closed (its fd number may already belong to something else): no ^D then.
          if (!this.#stdinAbort.signal.aborted) writeAll(masterFd, new Uint8Array([4])).catch(() => {});
        },
      );
    }
  }

  /** The pty master, -1 for non-terminal processes. */
  get consoleFd(): number {
    return this.#consoleFd;
  }

  /**
   * Copies the output fd `fd` to its sink until end of file; then the sink is closed, so its reader sees EOF, and
   * `fd` too when `owned` (a pty master is closed with the IO instead). close() stops the copy.
   */
  async #pump(fd: number, sink: Sink, owned: boolean): Promise<void> {
    const closed = this.#stdinAbort.signal;
    const buf = sink.chunk < shared.length ? shared.subarray(0, sink.chunk) : shared;
    try {
      // Plain sync calls per chunk, no promise unless something would block or the time slice is used up.
      while (!closed.aborted) {
        const pace = paceIo();
        if (pace) await pace;
        const n = read(fd, buf);
        if (n > 0) {
          const rest = sink.write(buf.subarray(0, n));
          if (rest) await rest;
        } else if (n === 0) return;
        else await waitFor(fd, "read", closed);
      }
    } catch (err) {
      // EIO is how a pty master reports that the last slave fd closed; an abort is close().
      if (!(err instanceof SysError) && !closed.aborted) log.debug("output copy ended", { error: err });
    } finally {
      if (owned) closeFd(fd);
      sink.close();
    }
  }

  /**
   * Copies the stdin fifo into the process until CloseIO. The fifo is read without blocking; only when it is empty
   * does the loop wait, and after CloseIO it stops at the first empty read instead: what the client wrote before
   * closing is delivered, then the process sees EOF (`eof`).
   */
  #copyStdin(deliver: (b: Uint8Array) => Promise<void>, eof: () => void): void {
    const fd = this.#stdinFd;
    const closed = this.#stdinAbort.signal;
    (async () => {
      const buf = new Uint8Array(32 * 1024);
      for (;;) {
        const n = read(fd, buf);
        if (n > 0) {
          await deliver(buf.subarray(0, n));
          continue;
        }
        if (n === 0 || this.#stdinClosing || closed.aborted) break;
        await poller().wait(fd, "read", this.#stdinWake.signal).catch(() => {});
      }
    })().catch((err) => {
      if (!closed.aborted) log.debug("stdin copy ended", { error: err });
    }).finally(() => {
      eof();
      this.#releaseStdin();
    });
  }

  #releaseStdin(): void {
    if (this.#stdinFd < 0) return;
    closeFd(this.#stdinFd);
    this.#stdinFd = -1;
  }

  /** CloseIO(stdin): deliver what is already in the fifo, then the process sees EOF on stdin. */
  closeStdin(): void {
    this.#stdinClosing = true;
    this.#stdinWake.abort();
  }

  /** Resolves true when every output stream reached end-of-stream, false after `timeoutMs`. */
  drained(timeoutMs: number): Promise<boolean> {
    // The timer is unref'd: the copies' reads keep the server alive while this matters (src/timer.ts).
    return within(Promise.all(this.#copies), timeoutMs);
  }

  /** Releases every fd, loop and driver of this process; resolves once a logging driver exited. Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return this.#loggerExit ?? Promise.resolve();
    this.#closed = true;
    this.#stdinAbort.abort();
    this.#stdinWake.abort();
    this.#releaseStdin();
    for (const c of this.#closers.splice(0)) c();
    this.#stdout?.close(true);
    if (this.#stderr !== this.#stdout) this.#stderr?.close(true);
    this.#loggerExit = this.#logger?.close();
    return this.#loggerExit ?? Promise.resolve();
  }
}
