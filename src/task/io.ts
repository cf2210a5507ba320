/**
 * A process's stdio, between the container and whatever containerd named: fifos (the default), `file://` paths,
 * `binary://` logging drivers, or nothing.
 *
 * The container writes into pipes that runc hands it (Deno.Command's own pipes, read on the event loop); the shim
 * copies them into the sinks. Two rules from containerd's bug history:
 * - the container must never block on stdout because its reader went away: a sink whose reader left (EPIPE) or
 *   never came (ENXIO) drops data and keeps draining; a slow but present reader gets back-pressure, not loss;
 * - everything written before exit reaches the sink before the exit is reported: `drained()` resolves when every
 *   copy loop has seen end-of-stream.
 *
 * @module
 */
import { log } from "../log.ts";
import type { Stdio } from "../runc/runc.ts";
import { ENOENT, ENXIO, EPIPE, SysError } from "../sys/errno.ts";
import { closeFd, openAppend, read, readAsync, write as writeFd, writeAll } from "../sys/fdio.ts";
import { mkfifo, openFifo } from "../sys/fifo.ts";
import { poller } from "../sys/poller.ts";
import type { Reaper } from "../sys/reaper.ts";

/** The stdio fields of a Create or Exec request. */
export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** Where output goes. */
interface Sink {
  write(chunk: Uint8Array): Promise<void>;
  /** The stream ended: its reader must see end-of-file (a fifo waits, bounded, for a reader that has not come yet). */
  end(): Promise<void>;
  close(): void;
}

/**
 * How long a fifo sink waits for its reader to open the fifo. containerd opens its read end in the background (Go's
 * fifo package opens a fifo asked for with O_NONBLOCK in a goroutine), so under load the shim can be first: an open
 * for writing then fails with ENXIO although the reader is on its way. The Go shim blocks in open(2) until the reader
 * comes; a reader that never comes (its client died before opening) must not hold the output forever, hence a bound.
 */
export const FIFO_READER_WAIT_MS = 30_000;

/** Sleeps `ms`, or less if `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * A fifo containerd reads. Opened write-only so a departed reader shows as EPIPE instead of a silent fill-up. A reader
 * that has not opened yet (ENXIO) is waited for, up to `readerWaitMs` after the sink was made: data is never dropped
 * for a reader that is merely late, and at end of stream the fifo is opened and closed so that the late reader sees
 * end-of-file instead of blocking in open(2) forever (what hung CRI's ExecSync under load: a silent stderr).
 */
export class FifoSink implements Sink {
  #fd = -1;
  #closed = false;
  #dropping = false;
  /** Set when the reader did not come in time, or the fifo cannot be opened at all: output is dropped from then on. */
  #noReader = false;
  readonly #deadline: number;
  readonly #abort = new AbortController();
  constructor(readonly path: string, readerWaitMs = FIFO_READER_WAIT_MS) {
    this.#deadline = Date.now() + readerWaitMs;
    this.#tryOpen();
  }

  #tryOpen(): boolean {
    try {
      this.#fd = openFifo(this.path, "w");
      return true;
    } catch (err) {
      if (!(err instanceof SysError && err.errno === ENXIO)) {
        log.warn("cannot open stdio fifo", { path: this.path, error: err });
        this.#noReader = true;
      }
      return false;
    }
  }

  /** Opens the fifo once its reader is there; false when it did not come within the bound or the sink was closed. */
  async #awaitReader(): Promise<boolean> {
    for (let delay = 1; !this.#closed && !this.#noReader; delay = Math.min(delay * 2, 50)) {
      if (this.#tryOpen()) return true;
      if (this.#noReader) break;
      const left = this.#deadline - Date.now();
      if (left <= 0) {
        log.warn("stdio fifo reader did not come; dropping output", { path: this.path });
        this.#noReader = true;
        break;
      }
      await pause(Math.min(delay, left), this.#abort.signal);
    }
    return false;
  }

  #drop(reason: string): void {
    if (!this.#dropping) log.debug("stdio reader gone; dropping output", { path: this.path, reason });
    this.#dropping = true;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#closed) return;
    if (this.#fd < 0 && !(await this.#awaitReader())) return this.#drop("no reader");
    let off = 0;
    while (off < chunk.length && !this.#closed) {
      let n: number;
      try {
        n = writeFd(this.#fd, off === 0 ? chunk : chunk.subarray(off));
      } catch (err) {
        if (err instanceof SysError && err.errno === EPIPE) return this.#drop("EPIPE");
        log.warn("stdio write failed; dropping output", { path: this.path, error: err });
        return;
      }
      if (n < 0) {
        try {
          await poller().wait(this.#fd, "write", this.#abort.signal);
        } catch {
          return; // closed while waiting
        }
        continue;
      }
      this.#dropping = false;
      off += n;
    }
  }

  async end(): Promise<void> {
    if (this.#fd < 0 && !this.#closed) await this.#awaitReader();
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
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

  write(chunk: Uint8Array): Promise<void> {
    if (this.#fd < 0) return Promise.resolve();
    try {
      // Whole chunks, so stdout and stderr lines do not interleave mid-chunk.
      for (let off = 0; off < chunk.length;) {
        const n = writeFd(this.#fd, off === 0 ? chunk : chunk.subarray(off));
        off += Math.max(n, 0);
      }
    } catch (err) {
      log.warn("log file write failed; dropping output", { path: this.path, error: err });
    }
    return Promise.resolve();
  }

  end(): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  close(): void {
    if (--this.#users > 0 || this.#fd < 0) return;
    closeFd(this.#fd);
    this.#fd = -1;
  }
}

/** Parses containerd's stdio URI forms: bare path (fifo), `fifo://`, `file://`, `binary://`. */
export function parseStdioUri(uri: string): { scheme: "fifo" | "file" | "binary"; path: string; args: string[] } {
  if (!uri.includes("://")) return { scheme: "fifo", path: uri, args: [] };
  const u = new URL(uri);
  const scheme = u.protocol.slice(0, -1);
  const path = decodeURIComponent(u.pathname);
  if (scheme === "fifo") return { scheme, path, args: [] };
  if (scheme === "file") return { scheme, path, args: [] };
  if (scheme === "binary") {
    // binary://path?arg1=v1&arg2 → args "arg1", "v1", "arg2" as containerd's Go shim builds them
    const args: string[] = [];
    for (const [k, v] of u.searchParams) {
      args.push(k);
      if (v !== "") args.push(v);
    }
    return { scheme, path, args };
  }
  throw new Error(`unsupported stdio scheme ${JSON.stringify(scheme)} in ${uri}`);
}

/** A `binary://` logging driver: our output goes to its fd 3 (stdout) and 4 (stderr); it signals ready on fd 5. */
class BinaryLogger {
  stdout!: FifoSink;
  stderr!: FifoSink;
  #child?: Deno.ChildProcess;
  private constructor(readonly dir: string) {}

  static async start(
    path: string,
    args: string[],
    env: Record<string, string>,
    spawn: Reaper["spawn"],
  ): Promise<BinaryLogger> {
    const dir = await Deno.makeTempDir({ prefix: "deno-shim-log-" });
    const logger = new BinaryLogger(dir);
    const out = `${dir}/stdout`, err = `${dir}/stderr`, ready = `${dir}/ready`;
    for (const f of [out, err, ready]) mkfifo(f, 0o600);
    // Our own read-write ends keep the driver's opens from blocking until it is up; the ready fifo is read by us.
    const holdOut = openFifo(out, "rw"), holdErr = openFifo(err, "rw"), readyFd = openFifo(ready, "r");
    try {
      logger.#child = spawn("/bin/sh", {
        args: ["-c", 'exec 3<"$1" 4<"$2" 5>"$3"; shift 3; exec "$@"', "sh", out, err, ready, path, ...args],
        env,
        stdin: "null",
        stdout: "null",
        stderr: "inherit",
      });
      const timeout = AbortSignal.timeout(10_000);
      await poller().wait(readyFd, "read", timeout).catch(() => {
        throw new Error(`logging binary ${path} did not signal readiness within 10s`);
      });
      logger.stdout = new FifoSink(out);
      logger.stderr = new FifoSink(err);
      return logger;
    } catch (e) {
      logger.close();
      throw e;
    } finally {
      closeFd(holdOut);
      closeFd(holdErr);
      closeFd(readyFd);
    }
  }

  close(): void {
    this.stdout?.close();
    this.stderr?.close();
    // The driver sees EOF on fds 3 and 4 and exits by itself; its exit is reaped like any child of ours.
    this.#child?.status.catch(() => {});
    Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
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

  private constructor(paths: StdioPaths) {
    this.paths = paths;
  }

  /** Opens the destinations named in `paths`. `env` is for binary loggers (CONTAINER_ID, CONTAINER_NAMESPACE). */
  static async open(paths: StdioPaths, env: Record<string, string>, spawn: Reaper["spawn"]): Promise<ProcessIO> {
    const io = new ProcessIO(paths);
    try {
      const out = paths.stdout ? parseStdioUri(paths.stdout) : undefined;
      const err = paths.stderr ? parseStdioUri(paths.stderr) : undefined;
      if (out?.scheme === "binary") {
        io.#logger = await BinaryLogger.start(out.path, out.args, env, spawn);
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
      io.close();
      throw e;
    }
  }

  /** How runc must set up the container's stdio for a non-terminal process. */
  runcStdio(): Stdio {
    return {
      stdin: this.#stdinFd >= 0 ? "piped" : "null",
      stdout: this.#stdout ? "piped" : "null",
      stderr: this.#stderr ? "piped" : "null",
    };
  }

  /** Starts copying between the container's pipes (runc's child stdio) and the sinks. */
  attachPipes(child: Deno.ChildProcess, stdio: Stdio): void {
    if (stdio.stdout === "piped" && this.#stdout) this.#copies.push(this.#pump(child.stdout, this.#stdout));
    if (stdio.stderr === "piped" && this.#stderr) this.#copies.push(this.#pump(child.stderr, this.#stderr));
    if (stdio.stdin === "piped") {
      const writer = child.stdin.getWriter();
      this.#copyStdin((b) => writer.write(b), () => writer.close().catch(() => {}));
    }
  }

  /** Starts copying between a pty master and the sinks (terminal processes: one stream, stdout). */
  attachConsole(masterFd: number): void {
    this.#consoleFd = masterFd;
    this.#closers.push(() => closeFd(masterFd));
    if (this.#stdout) this.#copies.push(this.#pumpFd(masterFd, this.#stdout));
    if (this.#stdinFd >= 0) {
      // A terminal has no half-close: EOF is ^D in the line discipline.
      this.#copyStdin(
        (b) => writeAll(masterFd, b, this.#stdinAbort.signal),
        () => writeAll(masterFd, new Uint8Array([4])).catch(() => {}),
      );
    }
  }

  /** The pty master, -1 for non-terminal processes. */
  get consoleFd(): number {
    return this.#consoleFd;
  }

  /** Copies one output stream to its sink; when the stream ends the sink is closed, so its reader sees EOF. */
  async #pump(stream: ReadableStream<Uint8Array>, sink: Sink): Promise<void> {
    try {
      for await (const chunk of stream) await sink.write(chunk);
    } catch (err) {
      log.debug("output copy ended", { error: err });
    } finally {
      await sink.end();
    }
  }

  async #pumpFd(fd: number, sink: Sink): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await readAsync(fd, buf);
        if (n <= 0) return;
        await sink.write(buf.slice(0, n));
      }
    } catch (err) {
      // EIO is how a pty master reports that the last slave fd closed.
      if (!(err instanceof SysError)) log.debug("console copy ended", { error: err });
    } finally {
      await sink.end();
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
          await deliver(buf.slice(0, n));
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

  /** Resolves when every output stream reached end-of-stream, or after `timeoutMs`. */
  async drained(timeoutMs: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = Promise.all(this.#copies).then(() => true);
    const late = new Promise<boolean>((r) => timer = setTimeout(() => r(false), timeoutMs));
    try {
      return await Promise.race([done, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Releases every fd, loop and driver of this process. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stdinAbort.abort();
    this.#stdinWake.abort();
    this.#releaseStdin();
    for (const c of this.#closers.splice(0)) c();
    this.#stdout?.close();
    if (this.#stderr !== this.#stdout) this.#stderr?.close();
    this.#logger?.close();
  }
}
