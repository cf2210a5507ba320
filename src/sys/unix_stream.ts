/**
 * Unix stream connections and listeners on raw fds, driven by the process-wide {@linkcode poller}: what the shim
 * serves ttrpc on and reaches containerd with, so that it needs no Deno net permission at all.
 *
 * Reads go one of two ways ({@linkcode ReadMode}): on Deno's own I/O reactor through {@linkcode ReactorReader} (the
 * fd adopted by Node compatibility's stream handle: no thread hop, so a round trip is as fast as on a `Deno.Conn`),
 * or by waiting for readiness on the {@linkcode poller} and reading synchronously into one scratch buffer shared by
 * every connection. By default a connection stays on the poller; the reactor is opt-in (`reads: "reactor"`, or
 * `"auto"`: move once the process has been idle for a second, so that booting Node compatibility costs nobody a
 * round trip), because Node compatibility costs memory in every process (see {@linkcode ReadMode}). Either way an
 * idle connection holds no read buffer of its own, and each read hands out exactly the bytes read, in an array the
 * caller owns. Writes are always synchronous non-blocking `write(2)` calls on the JS thread, waiting on the poller
 * only when the socket buffer is full. The shapes match `src/ttrpc/conn.ts` (this module does not import it: the
 * FFI layer knows nothing of ttrpc).
 *
 * @example
 * ```ts
 * import { UnixListener } from "./unix_stream.ts";
 * const listener = UnixListener.listen("/tmp/s.sock", { backlog: 4096, admit: (peer) => peer.uid === 0 });
 * const conn = await listener.accept();
 * const chunk = await conn.read(); // null at end of file
 * if (chunk) await conn.write(chunk);
 * conn.close();
 * listener.close();
 * ```
 * @module
 */

import { EBADF, isErrno } from "./errno.ts";
import { closeFd, paceIo, read, waitFor, write } from "./fdio.ts";
import { existingPoller } from "./poller.ts";
import { scratchBuffer } from "./memory.ts";
import { after } from "../timer.ts";
import { ReactorReader, reactorReadsAvailable, reactorReadsReady } from "./reactor_reader.ts";
import {
  acceptUnix,
  adoptListening,
  connectUnix,
  listenUnix,
  type PeerCredentials,
  peerCredentials,
  shutdownWrite,
} from "./unix_socket.ts";

/** The largest chunk one read hands out (and the size of the shared scratch buffer). */
export const READ_CHUNK = 64 * 1024;

// Shared by every connection: it is filled and copied out synchronously, so no two reads can interleave on it.
// An explicit ArrayBuffer keeps it off V8's moving heap.
const scratch = scratchBuffer(READ_CHUNK);

/**
 * How a connection waits for its peer's bytes:
 * - `"reactor"`: on Deno's event loop ({@linkcode ReactorReader}), from the start; boots Node compatibility at once
 *   if nothing did yet (20–80 ms of main-thread time and ~2 MiB, once per process). Falls back to the poller where
 *   the runtime cannot adopt the fd.
 * - `"poller"` (the default): on the epoll {@linkcode poller}: one blocking-pool thread wake-up per wait (~50 µs more
 *   per round trip), and no Node compatibility.
 * - `"auto"`: on the reactor if Node compatibility is already booted; otherwise on the poller until
 *   the process's auto connections have seen no I/O for {@linkcode setReactorAfterIdleMs} (1 s by default) while
 *   one of them waits: then Node compatibility boots, in that idle moment, once per process, and every waiting
 *   auto connection moves to the reactor (the others on their next read). A short-lived process, or a burst of
 *   calls right after start-up, never pays the boot; a server that lives on gets reactor round trips.
 *
 * The reactor modes are opt-in because Node compatibility costs every process ~1.1–1.4 MiB. (They were first kept off
 * for stalls under load in tests/ttrpc_fuzz_test.ts, which turned out to be that test's watchdog: bench/analysis.md,
 * session 9.)
 */
export type ReadMode = "auto" | "reactor" | "poller";

/** Default of {@linkcode setReactorAfterIdleMs}. */
export const REACTOR_AFTER_IDLE_MS = 1000;

/** Options of {@linkcode UnixConn}. */
export interface UnixConnOptions {
  /** Default `"poller"` (see {@linkcode ReadMode}: the reactor costs Node compatibility's memory). */
  reads?: ReadMode;
}

// "auto" connections of this process, before Node compatibility is booted: the fds waiting on the poller, and one
// idle timer for all of them.
let afterIdleMs = REACTOR_AFTER_IDLE_MS;
const autoWaiting = new Set<{ fd: number }>(); // one token per wait: an fd number can be reused meanwhile
let lastAutoActivity = performance.now();
let idleTimerArmed = false;
/** Set when the runtime could not boot reactor reads: auto connections stay on the poller. */
let autoGaveUp = false;

/**
 * How long the process's `"auto"` connections must see no I/O, with one of them waiting, before Node compatibility
 * boots and they move to the reactor (default {@linkcode REACTOR_AFTER_IDLE_MS}). For the whole process.
 */
export function setReactorAfterIdleMs(ms: number): void {
  if (!(ms >= 0)) throw new RangeError(`idle time must be a non-negative number of ms, got ${ms}`);
  afterIdleMs = ms;
}

// The idle timer is one of src/timer.ts's (not a setTimeout, whose first use loads Deno's timers module, ~20 ms the
// server's first call would pay); it keeps nothing alive.
function armIdleTimer(): void {
  if (idleTimerArmed || autoWaiting.size === 0) return;
  idleTimerArmed = true;
  after(lastAutoActivity + afterIdleMs - performance.now(), onIdle);
}

function onIdle(): void {
  idleTimerArmed = false;
  if (autoWaiting.size === 0 || autoGaveUp) return;
  if (performance.now() - lastAutoActivity < afterIdleMs) return armIdleTimer();
  if (!reactorReadsAvailable()) autoGaveUp = true; // else Node compatibility is booted now
  // Either way the waiting connections look again: they move to the reactor, or learn to stay on the poller.
  for (const { fd } of [...autoWaiting]) existingPoller()?.wake(fd, "read");
}

/** A connected unix stream socket (non-blocking fd). Closing it closes the fd. */
export class UnixConn {
  #fd: number;
  #closed = false;
  #reactor: ReactorReader | undefined;
  #auto: boolean;

  /** Takes ownership of `fd`, which must be a non-blocking connected stream socket. */
  constructor(fd: number, opts: UnixConnOptions = {}) {
    this.#fd = fd;
    const mode = opts.reads ?? "poller";
    this.#auto = mode === "auto";
    if (mode === "reactor" || (mode === "auto" && reactorReadsReady())) this.#adopt();
  }

  /** Connects to the unix socket at `path` (`unix://` allowed). Rejects with SysError (ENOENT, ECONNREFUSED...). */
  static async connect(path: string, opts: UnixConnOptions = {}): Promise<UnixConn> {
    return new UnixConn(await connectUnix(path), opts);
  }

  /** The fd, or -1 once closed. */
  get fd(): number {
    return this.#closed ? -1 : this.#fd;
  }

  /** How this connection reads now: `"reactor"` once the runtime took the fd onto its event loop. */
  get reads(): ReadMode {
    return this.#reactor ? "reactor" : "poller";
  }

  /** Bytes already read from the socket that no {@linkcode read} has taken yet (always 0 with poller reads). */
  get queuedBytes(): number {
    return this.#reactor?.queuedBytes ?? 0;
  }

  /** Who is at the other end (SO_PEERCRED). Throws SysError. */
  peer(): PeerCredentials {
    return peerCredentials(this.#fd);
  }

  /**
   * The next bytes from the peer (at most {@linkcode READ_CHUNK}), in a new array owned by the caller; null at end
   * of file. Rejects with SysError (ECONNRESET...), and once the connection is closed (SysError EBADF, BadResource).
   */
  read(): Promise<Uint8Array | null> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.#auto && reactorReadsReady()) this.#adopt(); // another connection booted Node compatibility
    return this.#reactor ? this.#reactor.read() : this.#pollRead();
  }

  async #pollRead(): Promise<Uint8Array | null> {
    for (;;) {
      const turn = paceIo();
      if (turn) await turn;
      if (this.#closed) throw closedError();
      const n = read(this.#fd, scratch);
      if (n > 0) return scratch.slice(0, n);
      if (n === 0) return null;
      if (!this.#auto) await waitFor(this.#fd, "read");
      else if (await this.#waitOrMove()) return this.#reactor!.read();
    }
  }

  /** Takes the fd onto the reactor (booting Node compatibility if needed); stays on the poller if it cannot. */
  #adopt(): void {
    this.#auto = false;
    this.#reactor = ReactorReader.open(this.#fd);
  }

  /** Waits for readability on the poller; true when the connection moved to the reactor instead (all was idle). */
  async #waitOrMove(): Promise<boolean> {
    if (!autoGaveUp) {
      const token = { fd: this.#fd };
      autoWaiting.add(token);
      lastAutoActivity = performance.now();
      armIdleTimer();
      try {
        await waitFor(this.#fd, "read");
      } finally {
        autoWaiting.delete(token);
        lastAutoActivity = performance.now();
      }
    }
    if (this.#closed || !(autoGaveUp || reactorReadsReady())) return false;
    if (autoGaveUp) this.#auto = false;
    else this.#adopt();
    return this.#reactor !== undefined;
  }

  /** Writes some of `p` (at least one byte), waiting for room as needed. Rejects with SysError (EPIPE...). */
  async write(p: Uint8Array): Promise<number> {
    for (;;) {
      if (this.#closed) throw closedError();
      const n = write(this.#fd, p);
      if (n >= 0) return n;
      await waitFor(this.#fd, "write");
    }
  }

  /** Half-closes: the peer reads end of file, and this side can still read its answers. */
  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      shutdownWrite(this.#fd);
    } catch (e) {
      return Promise.reject(e);
    }
    return Promise.resolve();
  }

  /** Closes the fd; pending reads and writes reject. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#reactor) return closeFd(this.#fd);
    // Writes may wait on the poller: fail them and drop the fd from epoll before its number can be reused.
    existingPoller()?.forget(this.#fd);
    this.#reactor.close(); // closes the fd
  }
}

/** Options of {@linkcode UnixListener.listen}. */
export interface UnixListenerOptions {
  /** listen(2) backlog; the kernel caps it at net.core.somaxconn. Default 4096, as containerd's Go shim. */
  backlog?: number;
  /**
   * Decides, per accepted connection, from the peer's credentials, whether it may stay. A refused connection is
   * closed at once, before anything is read from or written to it.
   */
  admit?: (peer: PeerCredentials) => boolean;
  /** How accepted connections read (see {@linkcode ReadMode}); default `"poller"`. */
  reads?: ReadMode;
}

/** A listening unix stream socket accepting {@linkcode UnixConn}s through the poller. */
export class UnixListener {
  #fd: number;
  #closed = false;
  readonly #admit: ((peer: PeerCredentials) => boolean) | undefined;
  readonly #connOpts: UnixConnOptions;

  /** Takes ownership of a non-blocking listening fd. */
  constructor(fd: number, opts: Omit<UnixListenerOptions, "backlog"> = {}) {
    this.#fd = fd;
    this.#admit = opts.admit;
    this.#connOpts = { reads: opts.reads };
  }

  /** socket + bind + listen on `path`. Throws SysError (EADDRINUSE when the path exists...). */
  static listen(path: string, opts: UnixListenerOptions = {}): UnixListener {
    return new UnixListener(listenUnix(path, opts.backlog ?? 4096), opts);
  }

  /** Takes over a listening socket inherited as `fd` (unix_socket.ts, adoptListening). Throws when it is not one. */
  static adopt(fd: number, opts: Omit<UnixListenerOptions, "backlog"> = {}): UnixListener {
    adoptListening(fd);
    return new UnixListener(fd, opts);
  }

  /** The listening fd, or -1 once closed. */
  get fd(): number {
    return this.#closed ? -1 : this.#fd;
  }

  /**
   * The next admitted connection. Rejects with `Deno.errors.BadResource` once the listener is closed, and with
   * SysError for accept failures worth a back-off (EMFILE, ENFILE, ENOMEM).
   */
  async accept(): Promise<UnixConn> {
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("listener closed");
      const fd = acceptUnix(this.#fd);
      if (fd < 0) {
        try {
          await waitFor(this.#fd, "read");
        } catch (e) {
          if (this.#closed || isErrno(e, EBADF)) throw new Deno.errors.BadResource("listener closed");
          throw e;
        }
        continue;
      }
      if (this.#admitted(fd)) return new UnixConn(fd, this.#connOpts);
      closeFd(fd);
    }
  }

  #admitted(fd: number): boolean {
    if (!this.#admit) return true;
    let peer: PeerCredentials;
    try {
      peer = peerCredentials(fd);
    } catch {
      return false; // cannot tell who it is: refuse
    }
    return this.#admit(peer);
  }

  /** Stops listening (the socket file stays); a pending accept rejects with BadResource. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.#fd);
  }
}

function closedError(): Deno.errors.BadResource {
  return new Deno.errors.BadResource("connection closed");
}
