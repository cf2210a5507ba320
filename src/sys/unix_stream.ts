/**
 * Unix stream connections and listeners on raw fds, driven by the process-wide {@linkcode poller}: what the shim
 * serves ttrpc on and reaches containerd with, so that it needs no Deno net permission at all.
 *
 * Reads go one of two ways ({@linkcode ReadMode}). By default a connection is read on Deno's own I/O reactor
 * through {@linkcode ReactorReader} (the fd adopted by Node compatibility's stream handle: no thread hop, so a round
 * trip is as fast as on a `Deno.Conn`); where the runtime cannot do that, or when asked, it waits for readiness on
 * the {@linkcode poller} and reads synchronously into one scratch buffer shared by every connection. Either way an
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
import { ReactorReader } from "./reactor_reader.ts";
import {
  acceptUnix,
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
const scratch = new Uint8Array(new ArrayBuffer(READ_CHUNK));

/**
 * How a connection waits for its peer's bytes: `"reactor"` reads on Deno's event loop ({@linkcode ReactorReader};
 * falls back to the poller where the runtime cannot), `"poller"` waits on the epoll {@linkcode poller} (one
 * blocking-pool thread wake-up per wait: slower per round trip, and it needs no Node compatibility).
 */
export type ReadMode = "reactor" | "poller";

/** Options of {@linkcode UnixConn}. */
export interface UnixConnOptions {
  /** Default `"reactor"`. */
  reads?: ReadMode;
}

/** A connected unix stream socket (non-blocking fd). Closing it closes the fd. */
export class UnixConn {
  #fd: number;
  #closed = false;
  readonly #reactor: ReactorReader | undefined;

  /** Takes ownership of `fd`, which must be a non-blocking connected stream socket. */
  constructor(fd: number, opts: UnixConnOptions = {}) {
    this.#fd = fd;
    this.#reactor = (opts.reads ?? "reactor") === "reactor" ? ReactorReader.open(fd) : undefined;
  }

  /** Connects to the unix socket at `path` (`unix://` allowed). Rejects with SysError (ENOENT, ECONNREFUSED...). */
  static async connect(path: string, opts: UnixConnOptions = {}): Promise<UnixConn> {
    return new UnixConn(await connectUnix(path), opts);
  }

  /** The fd, or -1 once closed. */
  get fd(): number {
    return this.#closed ? -1 : this.#fd;
  }

  /** How this connection reads: `"reactor"` only if the runtime took the fd onto its event loop. */
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
      await waitFor(this.#fd, "read");
    }
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
  /** How accepted connections read (see {@linkcode ReadMode}); default `"reactor"`. */
  reads?: ReadMode;
}

/** A listening unix stream socket accepting {@linkcode UnixConn}s through the poller. */
export class UnixListener {
  #fd: number;
  #closed = false;
  readonly #admit: ((peer: PeerCredentials) => boolean) | undefined;
  readonly #reads: ReadMode | undefined;

  /** Takes ownership of a non-blocking listening fd. */
  constructor(fd: number, opts: Pick<UnixListenerOptions, "admit" | "reads"> = {}) {
    this.#fd = fd;
    this.#admit = opts.admit;
    this.#reads = opts.reads;
  }

  /** socket + bind + listen on `path`. Throws SysError (EADDRINUSE when the path exists...). */
  static listen(path: string, opts: UnixListenerOptions = {}): UnixListener {
    return new UnixListener(listenUnix(path, opts.backlog ?? 4096), opts);
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
      if (this.#admitted(fd)) return new UnixConn(fd, { reads: this.#reads });
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
