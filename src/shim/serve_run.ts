/**
 * The serving part of the shim server (serve.ts takes the listening socket first, then loads this): the Task
 * service, the ttrpc server, event publishing and the exit rules.
 *
 * A server is done with its group when Shutdown arrives with nothing left, or it has been unused for a while, or on
 * SIGTERM/SIGINT. "Nothing left" means no container, no Create in flight and no reservation (reserve.ts): the server
 * starts holding one for the container it was spawned for, and every `start` that reuses it reserves a place first,
 * through a file that the server reads when it decides (reserve_file.ts) or over the socket. A
 * reservation expires after {@link RESERVATION_MS} without its Create, so a server whose `start` was killed before
 * containerd connected is done too. When it is unused (nothing left, whether after the last Delete without a Shutdown
 * — containerd 2.x sends none for a pod's further containers on Task API v3 — or after a reservation expired), it is
 * done after {@link IDLE_EXIT_MS}. Being done starts by removing the socket file, synchronously with the decision, so
 * no `start` can reserve on a server that is going away, and the file is gone before a Shutdown is answered.
 *
 * Then the server exits, or, when `start` asked for it (`-spare`) and no signal ended the group, it waits as a spare
 * for the next group a `start` hands it (spare.ts), serving one group after another in the same process.
 *
 * @module
 */
import { log, setLogLevel } from "../log.ts";
import { TASK_SERVICE, TASK_SERVICE_V3 } from "../proto/mod.ts";
import { Server } from "../ttrpc/server.ts";
import { reaper } from "../sys/reaper.ts";
import { UnixListener } from "../sys/unix_stream.ts";
import { poller } from "../sys/poller.ts";
import type { PeerCredentials } from "../sys/unix_socket.ts";
import { guardInspectorSignal, processName, redirectStderrToFifo, setProcessName } from "../sys/process.ts";
import { SPARE_MAX_REUSES, SPARE_PROCESS_NAME } from "./spare.ts";
import { after, type Timer } from "../timer.ts";
import { libc } from "../sys/libc.ts";
import { watchCompletion } from "../sys/nudge.ts";
import { RESERVATION_MS, TaskService } from "../task/service.ts";
import { invalidArgument, unavailable } from "../ttrpc/status.ts";
import { decodeReserveRequest, encodeReserveRequest, LIFECYCLE_SERVICE, RESERVE_METHOD } from "./reserve.ts";
import type { ShimArgs } from "./flags.ts";
import { groupFiles, GroupLease } from "./reserve_file.ts";
import { stateDir } from "./state_dir.ts";
import { HeapKeeper } from "./heap.ts";
import { Publisher } from "./publisher.ts";
import { VERSION } from "../version.ts";

/** Once nothing is left without a Shutdown, exit after this long unless a new container or reservation arrives. */
export const IDLE_EXIT_MS = 5000;

/** How long an exiting server waits for its connections' last answers, and then for its queued events. */
const EXIT_DRAIN_MS = 1000;
const EXIT_FLUSH_MS = 3000;

/**
 * How long the JS thread waits for I/O itself at the end of a turn before waiting through Deno's blocking pool
 * (src/sys/poller.ts, "Lingering"): Exec over ttrpc took 0.80× the time with it, State 0.87× (A/B, 30 pairs,
 * bench/analysis.md, session 14).
 */
const SERVER_LINGER_MS = 1;

/** A positive integer of milliseconds from the environment (tests shorten the timers), else `fallback`. */
function envMs(name: string, fallback: number): number {
  const v = Number(Deno.env.get(name));
  return Number.isInteger(v) && v > 0 ? v : fallback;
}

/** Names the process (what `ps` shows) and returns its previous name; a failure costs only the name. */
function renameProcess(name: string): string | undefined {
  try {
    const previous = processName();
    setProcessName(name);
    return previous;
  } catch (err) {
    log.debug("cannot rename the process", { name, error: err });
    return undefined;
  }
}

/** What one group's serving needs from the process around it. */
interface GroupContext {
  publisher: Publisher;
  heap: HeapKeeper;
  idleExitMs: number;
  reservationMs: number;
}

/** One group being served: its Task service, and how it ends. */
interface Group {
  service: TaskService;
  /** Stops the group (for `reason`); resolves once its connections are closed and its events are out. */
  retire(reason: string): Promise<void>;
  /** Settles when the group retired, for whatever reason (Shutdown, unused, the listener gone, a signal). */
  readonly retired: Promise<string>;
}

/**
 * Serves one group on `listener`: the Task service for `a.namespace`/`a.id` and the reservation service, until
 * Shutdown with nothing left, idleness, or {@link Group.retire}.
 */
function serveGroup(a: ShimArgs, listener: UnixListener, ctx: GroupContext): Group {
  const socket = a.socket;
  const server = new Server();
  let idleTimer: Timer | undefined;
  let exiting = false;
  let retiredWith: (reason: string) => void = () => {};
  const retired = new Promise<string>((resolve) => retiredWith = resolve);

  /**
   * Stops accepting, synchronously: the exiting flag, the socket file and the listener go in one turn of the event
   * loop, so no Reserve can be accepted after the decision and a new server can bind the path at once. (Removing the
   * file before closing the listener: closed first, a new server could bind the path and we would unlink its file.)
   */
  const stopAccepting = (reason: string): boolean => {
    if (exiting) return false;
    exiting = true;
    idleTimer?.cancel();
    log.info("shim server done with its group", { reason, socket });
    try {
      Deno.removeSync(socket);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) log.warn("cannot remove the socket", { error: err });
    }
    try {
      listener.close();
    } catch {
      // already closed
    }
    lease.release(); // no `start` reserves through files from here on (in `settle`, under the stripe lock)
    return true;
  };

  const retire = async (reason: string): Promise<void> => {
    if (!stopAccepting(reason)) return void await retired;
    await drain(reason);
  };

  /**
   * Retires the group if nothing is left, counting the reservations `start`s made through files since the last look
   * (reserve_file.ts): decided under the group's stripe lock, so that no `start` reserves between the look and the
   * live file's removal. Resolves once decided (a Shutdown's answer waits for the socket to be gone).
   */
  const retireIfUnused = async (reason: string): Promise<void> => {
    if (exiting) return;
    if (!lease.live) { // no `start` could reserve through files (the lease is released at once if still opening)
      if (service.occupancy === 0) void retire(reason);
      return;
    }
    const stopped = await lease.settle((pending) => {
      for (const p of pending) service.reserve(p.namespace, p.id, p.remainingMs);
      return !exiting && service.occupancy === 0 && stopAccepting(reason);
    });
    if (stopped) void drain(reason);
    else if (stopped === undefined) {
      log.warn("reservation files stayed locked; deciding later", { reason, socket });
      armIdleTimer();
    }
  };

  const armIdleTimer = (): void => {
    idleTimer?.cancel();
    idleTimer = undefined;
    // Unref'd, which is fine: the listener keeps the server alive until it is closed (src/timer.ts).
    if (service.occupancy === 0 && !exiting) idleTimer = after(ctx.idleExitMs, () => void retireIfUnused("unused"));
  };

  /** After the decision: the last answers, the queued events, then the group is over. */
  const drain = async (reason: string): Promise<void> => {
    // The two waits are bounded by unref'd timers (src/timer.ts, no Deno timer in the server's life): a sleep on a
    // blocking-pool thread keeps the process alive through them whatever else is pending. It is watched like every
    // pending FFI call (src/sys/nudge.ts), so the loop keeps being woken for those timers.
    void watchCompletion(libc().sleep_nb(null, 0n, EXIT_FLUSH_MS + EXIT_DRAIN_MS + 1000));
    // Connections first: containerd runs the `delete` binary once its connection closes (after the Shutdown answer),
    // so closing them before the last events are delivered takes containerd's wait for the event round trip off every
    // container's teardown. Events go over their own connection to containerd, which stays until they are out.
    await server.shutdown({ graceful: true, timeoutMs: EXIT_DRAIN_MS }).catch(() => {});
    await ctx.publisher.flush(EXIT_FLUSH_MS);
    service.close();
    retiredWith(reason);
  };

  const lease = new GroupLease(groupFiles(stateDir(), socket), ctx.reservationMs);
  const service = new TaskService({
    reaper: reaper(),
    events: ctx.publisher,
    namespace: a.namespace,
    version: VERSION,
    reservationMs: ctx.reservationMs,
    execDeleteEvents: a.execDeleteEvents,
    // The socket is gone when this resolves (the Shutdown answer waits for it); the rest of the exit follows it.
    onShutdown: () => retireIfUnused("shutdown requested"),
    onContainerCount: () => armIdleTimer(),
    onReservationDone: (namespace, id) => lease.consume(namespace, id),
    onProcessDeleted: () => ctx.heap.released(),
    onCall: () => ctx.heap.busy(),
  });
  const handlers = service.handlers();
  // A Create reaching a server that already decided to exit (over a connection opened before) would leave an
  // orphaned container behind: refuse it, containerd reports the error instead.
  const create = handlers.Create;
  handlers.Create = (payload, callCtx) => {
    if (exiting) throw unavailable("shim server is exiting");
    return create(payload, callCtx);
  };
  server.register(TASK_SERVICE, handlers);
  server.register(TASK_SERVICE_V3, handlers);
  const lifecycle: Record<string, (payload: Uint8Array) => Uint8Array> = {
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
  };
  server.register(LIFECYCLE_SERVICE, lifecycle);
  // The container this server was spawned (or taken as a spare) for: its Create is on the way. Reserved the way a
  // `start`'s Reserve is, through the handler: the next container's `start` then finds that code compiled (a young
  // server's first Reserve took ~0.8 ms longer than later ones).
  if (a.id) lifecycle[RESERVE_METHOD](encodeReserveRequest(a.namespace, a.id));
  // From here `start`s of this group reserve through files (reserve_file.ts); until then, and if this fails, over the
  // socket as above.
  void lease.open().then((live) => {
    if (!live && !exiting) log.debug("no live file for the group; starts reserve over the socket", { socket });
  });
  log.debug("shim server serving", { socket, pid: Deno.pid, namespace: a.namespace, id: a.id });
  void server.serve(listener).then(() => retire("listener closed"));
  return { service, retire, retired };
}

/**
 * Serves on `listener` (listening; "ready" reported when started by hand) until the server exits; never returns.
 * When a group is done the server waits as a spare if `start` asked it to (`-spare`, spare.ts), and serves the group
 * a later `start` hands it; otherwise, or when its time as a spare is up, it exits.
 */
export async function run(
  first: ShimArgs,
  firstListener: UnixListener,
  admit: (peer: PeerCredentials) => boolean,
): Promise<never> {
  let a = first;
  let listener = firstListener;
  const ctx: GroupContext = {
    publisher: new Publisher(Deno.env.get("TTRPC_ADDRESS") || `${a.address}.ttrpc`),
    heap: new HeapKeeper(),
    idleExitMs: envMs("CONTAINERD_SHIM_DENO_IDLE_EXIT_MS", IDLE_EXIT_MS),
    reservationMs: envMs("CONTAINERD_SHIM_DENO_RESERVATION_MS", RESERVATION_MS),
  };
  let group: Group | undefined;
  let signalled: string | undefined;
  const spareStop = new AbortController();

  // SIGUSR1 would open Deno's inspector (root code execution for any local user): it never reaches Deno's handler
  // (src/sys/process.ts, guardInspectorSignal). Diagnostics, which the Go shim gives on SIGUSR1 (a stack dump), are on
  // SIGUSR2: what a stuck or growing shim holds, in containerd's log.
  guardInspectorSignal();
  // A caller's next request usually comes well within a millisecond of our answer: wait for it on this thread.
  if (!poller().linger(SERVER_LINGER_MS)) log.debug("poller: no linger in this runtime; every wait goes to the pool");
  Deno.addSignalListener("SIGUSR2", () => {
    // Reachable memory is what a growing shim holds: collect first (V8's --expose-gc, see SHIM_V8_FLAGS), so the
    // reading does not depend on when V8 or the heap keeper last ran (on a loaded machine that can be seconds late).
    (globalThis as { gc?: () => void }).gc?.();
    log.info("shim state", {
      containers: group?.service.containers.size ?? 0,
      spare: group === undefined,
      ...Object.fromEntries(Object.entries(Deno.memoryUsage()).map(([k, v]) => [k, Math.round(v / 1024) + "KiB"])),
    });
  });
  // A signal ends the process: the group retires as on Shutdown, and no spare waits after it.
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => {
      signalled ??= sig;
      spareStop.abort();
      void group?.retire(sig);
    });
  }

  for (let served = 1;; served++) {
    group = serveGroup(a, listener, ctx);
    // A signal that came while a spare was taking this group: the group goes at once, as a new server would on it.
    if (signalled) void group.retire(signalled);
    await group.retired;
    // Only an empty server waits as a spare: containers left (the listener failed under them) are its children.
    const empty = group.service.containers.size === 0;
    group = undefined;
    const spareMs = signalled || !empty || served >= SPARE_MAX_REUSES ? 0 : a.spareMs;
    if (!a.spare || spareMs <= 0) Deno.exit(0);
    ctx.heap.released();
    const { waitAsSpare } = await import("./spare_wait.ts");
    const name = renameProcess(SPARE_PROCESS_NAME);
    const next = await waitAsSpare(a.spare, spareMs, admit, spareStop.signal);
    if (!next) Deno.exit(0);
    if (name) renameProcess(name);
    const h = next.handoff;
    a = {
      ...a,
      namespace: h.namespace,
      id: h.id,
      socket: h.socket,
      debug: h.debug,
      spareMs: h.spareMs,
      execDeleteEvents: h.execDeleteEvents,
    };
    setLogLevel(a.debug ? "debug" : "info");
    try {
      redirectStderrToFifo(`${h.bundle}/log`);
    } catch (err) {
      log.debug("no log fifo in the new group's bundle", { bundle: h.bundle, error: err });
    }
    listener = new UnixListener(next.listenFd, { admit });
    log.info("spare server took a new group", { socket: a.socket, namespace: a.namespace, id: a.id, served });
  }
}
