/**
 * The long-lived shim server: binds the socket, becomes the child subreaper, serves the Task API over ttrpc and
 * publishes events, until Shutdown arrives with nothing left, or it has been unused for a while, or SIGTERM/SIGINT.
 *
 * "Nothing left" means no container, no Create in flight and no reservation (reserve.ts): the server starts holding
 * one for the container it was spawned for, and every `start` that reuses it reserves a place first. A reservation
 * expires after {@link RESERVATION_MS} without its Create, so a server whose `start` was killed before containerd
 * connected exits too. When it is unused (nothing left, whether after the last Delete without a Shutdown — containerd
 * 2.x sends none for a pod's further containers on Task API v3 — or after a reservation expired), it exits after
 * {@link IDLE_EXIT_MS}. Exiting starts by removing the socket file, synchronously with the decision, so no `start`
 * can reserve on a server that is going away, and the file is gone before a Shutdown is answered.
 *
 * It reports to the `start` process that spawned it with one line on stdout ("ready", "exists", or an error) and
 * then closes stdout; from then on it writes only to stderr, which is the bundle's `log` fifo containerd reads.
 *
 * @module
 */
import { log, setLogLevel } from "../log.ts";
import { TASK_SERVICE, TASK_SERVICE_V3 } from "../proto/mod.ts";
import { Server } from "../ttrpc/server.ts";
import { reaper } from "../sys/reaper.ts";
import { close, dup2, guardInspectorSignal, redirectStderrToFifo } from "../sys/process.ts";
import { check, cstr, libc } from "../sys/libc.ts";
import { O_CLOEXEC, O_WRONLY } from "../sys/abi.ts";
import { ownerUid, type PeerCredentials, unixListening } from "../sys/unix_socket.ts";
import { UnixListener } from "../sys/unix_stream.ts";
import { EADDRINUSE, isErrno } from "../sys/errno.ts";
import { RESERVATION_MS, TaskService } from "../task/service.ts";
import { invalidArgument, unavailable } from "../ttrpc/status.ts";
import { decodeReserveRequest, LIFECYCLE_SERVICE, RESERVE_METHOD } from "./reserve.ts";
import type { ShimArgs } from "./flags.ts";
import { HeapKeeper } from "./heap.ts";
import { Publisher } from "./publisher.ts";
import { VERSION } from "../version.ts";

/** Once nothing is left without a Shutdown, exit after this long unless a new container or reservation arrives. */
const IDLE_EXIT_MS = 5000;

/** A positive integer of milliseconds from the environment (tests shorten the timers), else `fallback`. */
function envMs(name: string, fallback: number): number {
  const v = Number(Deno.env.get(name));
  return Number.isInteger(v) && v > 0 ? v : fallback;
}

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

/** Listen backlog, as containerd's Go shim: bursts of connects must not see EAGAIN. */
const LISTEN_BACKLOG = 4096;

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
async function listen(path: string, address: string): Promise<UnixListener | undefined> {
  const opts = { backlog: LISTEN_BACKLOG, admit: peerPolicy(address) };
  try {
    return UnixListener.listen(path, opts);
  } catch (err) {
    if (!isErrno(err, EADDRINUSE)) throw err;
  }
  // Another server may own it (a concurrent start of the same group); only a dead socket is replaced.
  if (unixListening(path)) return undefined;
  await Deno.remove(path).catch(() => {});
  return UnixListener.listen(path, opts);
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
  try {
    listener = await listen(a.socket, a.address);
  } catch (err) {
    report(`error: listen ${a.socket}: ${(err as Error).message}`);
    Deno.exit(1);
  }
  if (!listener) {
    report("exists");
    Deno.exit(0);
  }
  await Deno.chmod(a.socket, 0o600);

  const ttrpcAddress = Deno.env.get("TTRPC_ADDRESS") || `${a.address}.ttrpc`;
  const publisher = new Publisher(ttrpcAddress);
  const heap = new HeapKeeper();
  const server = new Server();
  const idleExitMs = envMs("CONTAINERD_SHIM_DENO_IDLE_EXIT_MS", IDLE_EXIT_MS);
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let exiting = false;

  /**
   * Stops accepting, synchronously: the exiting flag, the socket file and the listener go in one turn of the event
   * loop, so no Reserve can be accepted after the decision and a new server can bind the path at once. (Removing the
   * file before closing the listener: closed first, a new server could bind the path and we would unlink its file.)
   */
  const stopAccepting = (reason: string): boolean => {
    if (exiting) return false;
    exiting = true;
    clearTimeout(idleTimer);
    log.info("shim server exiting", { reason, socket: a.socket });
    try {
      Deno.removeSync(a.socket);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) log.warn("cannot remove the socket", { error: err });
    }
    try {
      listener!.close();
    } catch {
      // already closed
    }
    return true;
  };

  const exit = async (reason: string, code = 0): Promise<never> => {
    if (!stopAccepting(reason)) return new Promise<never>(() => {});
    await publisher.flush(3000);
    await server.shutdown({ graceful: true, timeoutMs: 1000 }).catch(() => {});
    Deno.exit(code);
  };

  const service = new TaskService({
    reaper: reaper(),
    events: publisher,
    namespace: a.namespace,
    version: VERSION,
    reservationMs: envMs("CONTAINERD_SHIM_DENO_RESERVATION_MS", RESERVATION_MS),
    // The socket is gone when this returns (the Shutdown answer waits for it); the rest of the exit follows it.
    onShutdown: () => void exit("shutdown requested"),
    onContainerCount: (n) => {
      clearTimeout(idleTimer);
      idleTimer = undefined;
      if (n === 0 && !exiting) idleTimer = setTimeout(() => void exit("unused"), idleExitMs);
    },
    onProcessDeleted: () => heap.released(),
    onCall: () => heap.busy(),
  });
  const handlers = service.handlers();
  // A Create reaching a server that already decided to exit (over a connection opened before) would leave an
  // orphaned container behind: refuse it, containerd reports the error instead.
  const create = handlers.Create;
  handlers.Create = (payload, ctx) => {
    if (exiting) throw unavailable("shim server is exiting");
    return create(payload, ctx);
  };
  server.register(TASK_SERVICE, handlers);
  server.register(TASK_SERVICE_V3, handlers);
  server.register(LIFECYCLE_SERVICE, {
    [RESERVE_METHOD]: (payload) => {
      if (exiting) throw unavailable("shim server is exiting");
      let req: { namespace: string; id: string };
      try {
        req = decodeReserveRequest(payload);
      } catch (err) {
        throw invalidArgument(`malformed ReserveRequest: ${(err as Error).message}`);
      }
      if (!req.id) throw invalidArgument("reservation needs a container id");
      service.reserve(req.namespace || a.namespace, req.id);
      return new Uint8Array();
    },
  });
  // The container this server was spawned for: its Create is on the way.
  if (a.id) service.reserve(a.namespace, a.id);

  // SIGUSR1 would open Deno's inspector (root code execution for any local user): it never reaches Deno's handler
  // (src/sys/process.ts, guardInspectorSignal). Diagnostics, which
  // the Go shim gives on SIGUSR1 (a stack dump), are on SIGUSR2: what a stuck or growing shim holds, in containerd's log.
  guardInspectorSignal();
  Deno.addSignalListener("SIGUSR2", () => {
    // Reachable memory is what a growing shim holds: collect first (V8's --expose-gc, see SHIM_V8_FLAGS), so the
    // reading does not depend on when V8 or the heap keeper last ran (on a loaded machine that can be seconds late).
    (globalThis as { gc?: () => void }).gc?.();
    log.info("shim state", {
      containers: service.containers.size,
      ...Object.fromEntries(Object.entries(Deno.memoryUsage()).map(([k, v]) => [k, Math.round(v / 1024) + "KiB"])),
    });
  });
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => void exit(sig));
  }
  report("ready");
  log.debug("shim server serving", { socket: a.socket, pid: Deno.pid, namespace: a.namespace, id: a.id });
  await server.serve(listener);
  return await exit("listener closed");
}
