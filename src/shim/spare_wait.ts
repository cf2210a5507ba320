/**
 * The server's side of spares (spare.ts has the protocol and `start`'s side): once its group is done, the server
 * listens on its spare socket until a `start` hands it a new group or its time is up.
 *
 * @module
 */
import { log } from "../log.ts";
import { after } from "../timer.ts";
import { cstr, libc } from "../sys/libc.ts";
import { existingPoller, poller } from "../sys/poller.ts";
import { receiveWithFds } from "../sys/fd_passing.ts";
import {
  acceptUnix,
  adoptListening,
  listenReplacingDead,
  type PeerCredentials,
  peerCredentials,
} from "../sys/unix_socket.ts";
import { decodeHandoff, type Handoff, HANDOFF_TIMEOUT_MS, MAX_HANDOFF_BYTES } from "./spare.ts";

/** A new group, taken over from `start`. */
export interface Adopted {
  handoff: Handoff;
  /** The group's listening socket (non-blocking, close-on-exec). */
  listenFd: number;
}

/** Few `start`s ever queue here: one is taken, the others are reset and spawn their own server. */
const SPARE_BACKLOG = 16;

const encoder = new TextEncoder();

/** Writes one answer line; a `start` that went away meanwhile is not an error here. */
function answer(conn: number, line: string): void {
  const bytes = encoder.encode(line.replaceAll("\n", " ") + "\n");
  if (libc().write(conn, bytes, BigInt(bytes.length)) !== bytes.length) {
    log.warn("spare: cannot answer start", { answer: line });
  }
}

/** Reads the handoff from an accepted connection and takes the socket, or answers why not. */
async function takeHandoff(conn: number): Promise<Adopted | undefined> {
  const deadline = new AbortController();
  const timer = after(
    HANDOFF_TIMEOUT_MS,
    () => deadline.abort(new Error(`no handoff within ${HANDOFF_TIMEOUT_MS} ms`)),
  );
  let fds: number[] = [];
  try {
    const msg = await receiveWithFds(
      conn,
      MAX_HANDOFF_BYTES,
      2,
      () => poller().wait(conn, "read", deadline.signal),
    );
    fds = msg.fds;
    if (msg.truncated || fds.length !== 1) throw new Error(`expected one listening socket, got ${fds.length}`);
    const handoff = decodeHandoff(msg.data);
    adoptListening(fds[0]);
    answer(conn, "ok");
    return { handoff, listenFd: fds[0] };
  } catch (err) {
    for (const fd of fds) libc().close(fd);
    const reason = (err as Error).message;
    log.warn("spare: refused a handoff", { error: reason });
    answer(conn, `no ${reason}`);
    return undefined;
  } finally {
    timer.cancel();
    existingPoller()?.forget(conn);
    libc().close(conn);
  }
}

/**
 * Waits as a spare on `path` for up to `ms` (or until `stop` aborts) and returns the group a `start` handed over, or
 * undefined: time up, stopped, a live spare already holds the path, or the one handoff that came was refused. The
 * spare socket is gone when this returns.
 */
export async function waitAsSpare(
  path: string,
  ms: number,
  admit: (peer: PeerCredentials) => boolean,
  stop?: AbortSignal,
): Promise<Adopted | undefined> {
  let fd: number | undefined;
  try {
    fd = listenReplacingDead(path, SPARE_BACKLOG);
    if (fd !== undefined) Deno.chmodSync(path, 0o600);
  } catch (err) {
    log.warn("spare: cannot listen", { path, error: err });
    if (fd !== undefined) libc().close(fd);
    return undefined;
  }
  if (fd === undefined) {
    log.debug("spare: another spare waits already", { path });
    return undefined;
  }
  const listening = fd;
  // The file goes first, then the listener: closed first, another spare could bind the path and we would remove its
  // file. Connections still in the backlog are reset, which tells their `start` we never saw them.
  const stopListening = () => {
    if (fd === undefined) return;
    existingPoller()?.forget(fd);
    libc().unlink(cstr(path));
    libc().close(fd);
    fd = undefined;
  };
  const timeout = new AbortController();
  const timer = after(ms, () => timeout.abort());
  const signal = stop ? AbortSignal.any([stop, timeout.signal]) : timeout.signal;
  log.debug("spare: waiting", { path, ms });
  try {
    for (;;) {
      try {
        await poller().wait(listening, "read", signal);
      } catch {
        return undefined; // time up, or stopped
      }
      let conn: number;
      try {
        conn = acceptUnix(listening);
      } catch (err) {
        log.warn("spare: accept failed", { error: err });
        return undefined;
      }
      if (conn < 0) continue;
      let peer: PeerCredentials;
      try {
        peer = peerCredentials(conn);
      } catch {
        libc().close(conn);
        continue;
      }
      if (!admit(peer)) {
        libc().close(conn);
        continue;
      }
      // One handoff only: nobody else may find this spare once it took a connection.
      stopListening();
      timer.cancel();
      return await takeHandoff(conn);
    }
  } finally {
    timer.cancel();
    stopListening();
  }
}
