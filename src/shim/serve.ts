/**
 * The long-lived shim server: takes its listening socket, becomes the child subreaper, serves the Task API over ttrpc
 * and publishes events, until Shutdown arrives with nothing left, or it has been unused for a while, or SIGTERM/SIGINT.
 *
 * `start` binds the group's socket itself and hands it over as fd `-socket-fd` (as containerd's Go shim does), then
 * exits without waiting: containerd's connection waits in the listen backlog until this server accepts, so the
 * server's boot overlaps with `start`'s exit and containerd's dial, and a server that fails to boot takes the
 * listener with it (containerd's dial is refused, and the next `start` replaces the dead socket).
 *
 * Started by hand (benchmarks, debugging) without `-socket-fd`, the server binds `-socket` itself and reports on
 * stdout, one line, "ready" (or "exists" when a live server owns the path, or an error), before it loads what serving
 * needs. From then on it writes only to stderr, which is the bundle's `log` fifo containerd reads.
 *
 * @module
 */
import { log, setLogLevel } from "../log.ts";
import { close, dup2, redirectStderrToFifo } from "../sys/process.ts";
import { check, cstr, libc, ownerUid } from "../sys/libc.ts";
import { O_CLOEXEC, O_WRONLY } from "../sys/abi.ts";
import { listenReplacingDead, type PeerCredentials } from "../sys/unix_socket.ts";
import { UnixListener } from "../sys/unix_stream.ts";
import type { ShimArgs } from "./flags.ts";
import { LISTEN_BACKLOG } from "./address.ts";

/** Tells `start` how it went, then lets go of the pipe (fd 1 becomes /dev/null) so no later write can reach it. */
function report(line: string): void {
  try {
    Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
  } catch {
    // started by hand without a reader: nothing to tell
  }
  try {
    const fd = check(libc().open(cstr("/dev/null"), O_WRONLY | O_CLOEXEC, 0), "open", "/dev/null");
    dup2(fd, 1);
    close(fd);
  } catch (err) {
    log.warn("cannot detach stdout", { error: err });
  }
}

/**
 * Who may talk to the server (the Go shim's `UnixSocketRequireSameUser`, widened to containerd's owner): root, and
 * the uid owning containerd's socket (`-address`; a rootless containerd runs as its user). Anyone else is refused.
 */
function peerPolicy(address: string): (peer: PeerCredentials) => boolean {
  let owner = 0;
  try {
    owner = ownerUid(address.replace(/^unix:\/\//, ""));
  } catch (err) {
    log.warn("cannot stat containerd's socket; only root may connect", { address, error: err });
  }
  return (peer) => {
    if (peer.uid === 0 || peer.uid === owner) return true;
    log.warn("refused a connection from a foreign user", { pid: peer.pid, uid: peer.uid, gid: peer.gid });
    return false;
  };
}

/** Binds the server socket through libc (no Deno net permission); undefined when a live server already owns it. */
function listen(path: string, address: string): UnixListener | undefined {
  const fd = listenReplacingDead(path, LISTEN_BACKLOG);
  return fd === undefined ? undefined : new UnixListener(fd, { admit: peerPolicy(address) });
}

/** Runs the server until it decides to exit; never returns. */
export async function serve(a: ShimArgs): Promise<never> {
  setLogLevel(a.debug ? "debug" : "info");
  if (!a.socket) {
    report("error: the server needs -socket");
    Deno.exit(1);
  }
  try {
    redirectStderrToFifo("log");
  } catch (err) {
    // containerd creates the fifo before start; started by hand there may be none.
    log.debug("no log fifo in the bundle; logging to inherited stderr", { error: err });
  }

  // The first container's bundle is the cwd containerd gave us; it is removed when that container goes, and a
  // grouped server outlives it (spawning runc from a deleted cwd fails). Every path the server uses is absolute.
  Deno.chdir("/");

  let listener: UnixListener | undefined;
  if (a.socketFd >= 0) {
    try {
      listener = UnixListener.adopt(a.socketFd, { admit: peerPolicy(a.address) });
    } catch (err) {
      log.error("cannot take the listening socket from start", { fd: a.socketFd, error: err });
      Deno.exit(1);
    }
  } else {
    try {
      listener = listen(a.socket, a.address);
    } catch (err) {
      report(`error: listen ${a.socket}: ${(err as Error).message}`);
      Deno.exit(1);
    }
    if (!listener) {
      report("exists");
      Deno.exit(0);
    }
    Deno.chmodSync(a.socket, 0o600);
    report("ready");
  }
  // Everything else: loaded now (a computed specifier, so the bundle does not preload it either).
  let run: typeof import("./serve_run.ts").run;
  try {
    ({ run } = await import("./serve_run.ts"));
  } catch (err) {
    log.error("cannot load the shim server", { error: err });
    Deno.exit(1);
  }
  return await run(a, listener, peerPolicy(a.address));
}
