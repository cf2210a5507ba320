/**
 * The Task service (`containerd.task.v2.Task`, also served as `containerd.task.v3.Task`): it routes RPCs to
 * containers and processes, turns reaped exits into TaskExit events in the order containerd relies on, and
 * publishes every task event.
 *
 * Exit ordering, which containerd 2.x states as invariants and the Go 1.6 shim only partly keeps:
 * - TaskExit follows TaskStart/TaskExecStarted: an exit reaped while Start is running is held until the start
 *   event is queued; an exit of a pid not known yet (an exec that dies before `runc exec` returns) is kept while any
 *   Start is in flight and matched when that Start learns its pid;
 * - everything the process wrote reaches the sink before TaskExit and before Wait answers;
 * - a container's init TaskExit comes after the TaskExit of each of its execs.
 *
 * Containers are identified by (namespace, id): a server shared across namespaces (namespace and node grouping) may
 * hold `a/dup` and `b/dup` at once. A call's namespace is its `containerd-namespace-ttrpc` metadata; containerd 1.6
 * sends none, so it is the namespace of the Create sent on the same connection (containerd keeps one connection per
 * task), else the only namespace holding that id (a connection opened after a containerd restart).
 *
 * @module
 */
import { log } from "../log.ts";
import { atTurnEnd } from "../sys/immediate.ts";
import { type Codec, encodeMessage, runcopts, type TaskMethodName, taskMethods, toTimestamp } from "../proto/mod.ts";
import { decodeJsonAny, encodeAny } from "../proto/any.ts";
import type { CallContext, Handler } from "../ttrpc/server.ts";
import type { Exit, Reaper } from "../sys/reaper.ts";
import { resizePty } from "../sys/console.ts";
import { after, sleep, type Timer } from "../timer.ts";
import { CgroupNotFoundError } from "../sys/cgroups/mod.ts";
import type { OciProcess } from "../runc/mod.ts";
import { Container } from "./container.ts";
import { errAlreadyExists, errFailedPrecondition, errInvalidArgument, errNotFound, errState } from "./errors.ts";
import type { EventSink } from "./events.ts";
import { taskEvents } from "./events.ts";
import type { Process } from "./process.ts";
import type { CheckpointParams, StateName } from "./states/mod.ts";
import { StateAnswer } from "./state_answer.ts";

/** How long an exit waits for its output to drain before it is reported anyway. */
const EXIT_DRAIN_MS = 2000;
/** How long an init's exit waits for its execs' exits (they die with the pid namespace). */
const EXEC_EXIT_WAIT_MS = 5000;
/** How long a place reserved by `start` waits for the Create it announced, by default. */
export const RESERVATION_MS = 60_000;
/** The ttrpc metadata key containerd puts the namespace in. */
export const NAMESPACE_METADATA = "containerd-namespace-ttrpc";

const STATUS: Record<StateName, number> = {
  "created": 1,
  "created-checkpoint": 1,
  "running": 2,
  "stopped": 3,
  "deleted": 3,
  "paused": 4,
  "pausing": 5,
};

/** What the service needs from the shim around it. */
export interface TaskServiceOptions {
  reaper: Reaper;
  events: EventSink;
  /** The namespace from the command line, for requests that carry none in their metadata. */
  namespace: string;
  /**
   * Called when Shutdown arrives and nothing is left (no container, none being created, no reservation); it must
   * stop accepting (socket file removed) before it returns, as the Shutdown answer waits for it.
   */
  onShutdown(): void | Promise<void>;
  /** Called whenever the number of containers, creations in flight and reservations changes, with their sum. */
  onContainerCount?(count: number): void;
  /** How long a reservation holds without its Create (default {@link RESERVATION_MS}). */
  reservationMs?: number;
  /**
   * Called when the reservation for `id` is done with, wherever it is kept (reserve_file.ts): its Create begins, or a
   * Shutdown names it (its Create is not coming). `namespace` is undefined when the Shutdown did not say.
   */
  onReservationDone?(namespace: string | undefined, id: string): void;
  /** Called after a process (init or exec) was deleted and everything kept for it released. */
  onProcessDeleted?(): void;
  /** Called when an RPC has been answered (or failed): the server's heap keeper learns when it goes quiet. */
  onCall?(): void;
  /** The shim version string Connect reports. */
  version?: string;
  /**
   * Publish TaskDelete when an exec is deleted (containerd's docs: SHOULD; the Go shim does not). A task's TaskDelete
   * is published either way. Default false (shim config `execDeleteEvents`).
   */
  execDeleteEvents?: boolean;
}

/** A container's key in this server: ids are unique within a containerd namespace only. */
export function containerKey(namespace: string, id: string): string {
  return `${namespace}/${id}`;
}

type Req<M extends TaskMethodName> = ReturnType<(typeof taskMethods)[M]["request"]["decode"]>;
type Res<M extends TaskMethodName> = Parameters<(typeof taskMethods)[M]["response"]["encode"]>[0];

/** How long after a repeated OOM notification the kill counter is looked at again (see #publishOom). */
const OOM_RECHECK_MS = 100;

/** A started process and the container it belongs to. */
interface Owned {
  process: Process;
  container: Container;
}

export class TaskService {
  /** By {@link containerKey}. */
  readonly containers = new Map<string, Container>();
  /** Keys of Creates in progress. */
  readonly #creating = new Set<string>();
  /** Places `start` reserved for containers whose Create is on its way, by namespace and id, with their expiry. */
  readonly #reservations = new Map<string, Timer>();
  readonly #byPid = new Map<number, Owned>();
  /** Per client connection: container id → the namespace of the Create (or first call) sent on it for that id. */
  readonly #bound = new WeakMap<object, Map<string, string>>();
  /** State's answer by process, its fixed part encoded once (state_answer.ts). */
  readonly #stateAnswers = new WeakMap<Process, StateAnswer>();
  #startsInFlight = 0;
  #unmatched: Exit[] = [];
  readonly #unsubscribe: () => void;

  constructor(readonly opts: TaskServiceOptions) {
    this.#unsubscribe = opts.reaper.onExit((e) => this.#onExit(e));
  }

  /** Stops listening for exits and drops reservations (tests and shutdown). */
  close(): void {
    this.#unsubscribe();
    for (const t of this.#reservations.values()) t.cancel();
    this.#reservations.clear();
  }

  // ---- reservations ---------------------------------------------------------------------------------------------

  /**
   * Holds a place for container `id` of `namespace`: `start` reserves it before it hands this server's address to
   * containerd, so that a Shutdown (or the idle exit) in between cannot take the server away from the Create that
   * follows. The Create of that container consumes it; without one it expires after `ms` (a reservation found in a
   * file has less left: reserve_file.ts).
   */
  reserve(namespace: string, id: string, ms = this.opts.reservationMs ?? RESERVATION_MS): void {
    const key = reservationKey(namespace, id);
    this.#reservations.get(key)?.cancel();
    // Not a Deno timer (src/timer.ts): the server's first reservation would load Deno's Node timers module.
    const timer = after(ms, () => {
      if (this.#reservations.get(key) !== timer) return;
      this.#reservations.delete(key);
      log.info("reservation expired without a Create", { namespace, id });
      this.#occupancyChanged();
    });
    this.#reservations.set(key, timer);
    this.#occupancyChanged();
  }

  /** Drops the reservation of `id` (any namespace when the caller could not tell it); true when there was one. */
  #unreserve(namespace: string | undefined, id: string): boolean {
    let found = false;
    for (const [key, timer] of this.#reservations) {
      if (namespace === undefined ? key.endsWith(`\0${id}`) : key === reservationKey(namespace, id)) {
        timer.cancel();
        this.#reservations.delete(key);
        found = true;
      }
    }
    return found;
  }

  /** Containers, creations in flight and reservations: while any is left, the server is in use. */
  get occupancy(): number {
    return this.containers.size + this.#creating.size + this.#reservations.size;
  }

  #occupancyChanged(): void {
    this.opts.onContainerCount?.(this.occupancy);
  }

  /** The ttrpc handlers, by method name. */
  handlers(): Record<string, Handler> {
    const out: Record<string, Handler> = {};
    for (const name of Object.keys(taskMethods) as TaskMethodName[]) {
      if (name === "State") continue; // below
      const codecs = taskMethods[name]; // built on the method's first call, not here (src/proto/mod.ts)
      const impl = (this as unknown as Record<string, (r: unknown, ctx: CallContext) => Promise<unknown>>)[
        name.charAt(0).toLowerCase() + name.slice(1)
      ].bind(this);
      out[name] = async (payload, ctx) => {
        try {
          const req = codecs.request.decode(payload);
          const res = await impl(req, ctx);
          return encodeMessage(codecs.response as Codec<unknown>, res ?? {});
        } finally {
          this.opts.onCall?.();
        }
      };
    }
    // State is the call clients poll and needs no I/O: it answers in the turn of its request, with bytes it encodes
    // itself (state_answer.ts), not through the generic encoder.
    const state = taskMethods.State;
    out.State = (payload, ctx) => {
      try {
        return this.state(state.request.decode(payload), ctx);
      } finally {
        this.opts.onCall?.();
      }
    };
    return out;
  }

  /** The container a call names: `id` in the call's namespace (see the module doc). */
  #container(id: string, ctx: CallContext | undefined): Container {
    const ns = this.#namespaceOf(id, ctx);
    const c = ns === undefined ? undefined : this.containers.get(containerKey(ns, id));
    if (!c) throw errNotFound("container not created");
    if (ctx?.connection) this.#bind(ctx.connection, id, c.namespace);
    return c;
  }

  #namespaceOf(id: string, ctx: CallContext | undefined): string | undefined {
    const fromMetadata = ctx?.metadata.get(NAMESPACE_METADATA)?.[0];
    if (fromMetadata) return fromMetadata;
    const bound = ctx?.connection && this.#bound.get(ctx.connection)?.get(id);
    if (bound) return bound;
    // A connection that has not named this id before (containerd reconnecting after its restart).
    const owners: string[] = [];
    for (const c of this.containers.values()) if (c.id === id) owners.push(c.namespace);
    if (owners.length <= 1) return owners[0];
    // Nothing says which one is meant: prefer the command line's namespace, else a stable choice, and say so.
    const chosen = owners.includes(this.opts.namespace) ? this.opts.namespace : owners.sort()[0];
    log.warn("a call without namespace names a container id held in several namespaces", { id, owners, chosen });
    return chosen;
  }

  #bind(connection: object, id: string, namespace: string): void {
    let ids = this.#bound.get(connection);
    if (!ids) this.#bound.set(connection, ids = new Map());
    ids.set(id, namespace);
  }

  #publish(e: ReturnType<(typeof taskEvents)[keyof typeof taskEvents]>): void {
    this.opts.events.publish(e);
  }

  /**
   * Publishes at the end of this turn, after the answer of the call that caused the event, as the Go shim's channel to
   * its publishing goroutine does: the Forward's write wakes containerd, which otherwise ran before our answer reached
   * the client. Nothing of the same task can come between: the next call is read in a later turn.
   */
  #publishAfterAnswer(e: ReturnType<(typeof taskEvents)[keyof typeof taskEvents]>): void {
    atTurnEnd(() => this.#publish(e));
  }

  // ---- exits ----------------------------------------------------------------------------------------------------

  #onExit(e: Exit): void {
    const owned = this.#byPid.get(e.pid);
    if (!owned) {
      if (this.#startsInFlight > 0) this.#unmatched.push(e);
      return;
    }
    const p = owned.process;
    if (p.starting) {
      p.heldExit = { status: e.status, at: e.exitedAt };
      return;
    }
    this.#applyExit(owned.container, p, e.status, e.exitedAt);
  }

  #applyExit(c: Container, p: Process, status: number, at: Date): void {
    if (p.exitedAt) return;
    if (this.#byPid.get(p.pid)?.process === p) this.#byPid.delete(p.pid);
    p.state.setExited(status, at);
    this.#reportExit(c, p).catch((err) => log.error("reporting exit failed", { id: p.id, error: err }));
  }

  async #reportExit(c: Container, p: Process): Promise<void> {
    if (!p.execId) {
      if (c.shouldKillAll) {
        await c.runc.kill(c.id, 9, { all: true }).catch((err) =>
          log.debug("kill --all after init exit", { error: err })
        );
      }
      const execs = c.runningExecs();
      if (execs.length > 0) {
        await Promise.race([
          Promise.all(execs.map((e) => e.waitReported())),
          sleep(EXEC_EXIT_WAIT_MS),
        ]);
      }
    }
    await p.io?.drained(EXIT_DRAIN_MS);
    // TaskOOM must precede the init's TaskExit even when the OOM notification has not arrived yet.
    if (!p.execId) this.#publishOom(c, true);
    this.#publish(taskEvents.exit(c.namespace, {
      containerId: p.containerId,
      id: p.id,
      pid: p.pid,
      exitStatus: p.exitStatus,
      exitedAt: p.exitedAt ?? new Date(),
    }));
    p.markReported();
  }

  /**
   * Publishes TaskOOM for kills not yet published. At exit (`atExit`) only for kills the counter shows and nobody
   * published. From a notification: for new kills the counter shows; for the container's first notification even when
   * the counter does not show the kill yet (it may outrun it; counted as one kill, so the check at exit does not repeat
   * it). Any other notification is about a kill already published — the memory cgroup signals each OOM event, and one
   * kill can follow several, seen once in 20 OOM kills in CI — unless the counter catches up: it is looked at again
   * once after {@linkcode OOM_RECHECK_MS}, so a second kill whose notification outran the counter is still published.
   */
  #publishOom(c: Container, atExit = false, recheck = true): void {
    const n = c.unpublishedOomKills();
    if (n === 0 && (atExit || c.oomPublished > 0)) {
      if (!atExit && recheck) {
        after(OOM_RECHECK_MS, () => {
          if (!c.init.exitReported) this.#publishOom(c, false, false); // the exit published what the counter showed
        });
      }
      return;
    }
    c.oomPublished += Math.max(n, 1);
    this.#publish(taskEvents.oom(c.namespace, c.id));
  }

  /** Runs a Start with exits held back until the start event is queued. */
  async #started(c: Container, p: Process, publishStart: () => void): Promise<void> {
    this.#startsInFlight++;
    p.starting = true;
    try {
      await p.start();
      if (p.pid) this.#byPid.set(p.pid, { process: p, container: c });
      publishStart();
    } finally {
      p.starting = false;
      this.#startsInFlight--;
      // An exit reaped before this Start learned its pid (an exec that died at once) waits in #unmatched.
      const i = p.pid ? this.#unmatched.findIndex((e) => e.pid === p.pid) : -1;
      const early = i >= 0 ? this.#unmatched.splice(i, 1)[0] : undefined;
      if (this.#startsInFlight === 0) this.#unmatched = [];
      const held = p.heldExit ?? (early && { status: early.status, at: early.exitedAt });
      p.heldExit = undefined;
      if (held && p.pid) this.#applyExit(c, p, held.status, held.at);
    }
  }

  // ---- RPCs -----------------------------------------------------------------------------------------------------

  async create(r: Req<"Create">, ctx: CallContext): Promise<Res<"Create">> {
    if (!r.id) throw errInvalidArgument("container id must not be empty");
    if (!r.bundle) throw errInvalidArgument("bundle must not be empty");
    const ns = ctx.metadata.get(NAMESPACE_METADATA)?.[0] || namespaceOfBundle(r.bundle) || this.opts.namespace;
    // Bound before anything can fail: containerd's cleanup of a failed Create (Delete on this connection) must find
    // this namespace's container or nothing, never another namespace's container of the same id.
    if (ctx.connection) this.#bind(ctx.connection, r.id, ns);
    const key = containerKey(ns, r.id);
    if (this.containers.has(key) || this.#creating.has(key)) throw errAlreadyExists(`container ${r.id}`);
    const rootfs = (r.rootfs ?? []).map((m) => ({
      type: m.type ?? "",
      source: m.source ?? "",
      target: m.target ?? "",
      options: m.options ?? [],
    }));
    const stdio = { stdin: r.stdin ?? "", stdout: r.stdout ?? "", stderr: r.stderr ?? "", terminal: !!r.terminal };
    const checkpoint = r.checkpoint ?? "";
    this.#creating.add(key);
    this.#unreserve(ns, r.id);
    this.opts.onReservationDone?.(ns, r.id);
    try {
      const c = await Container.create(
        {
          id: r.id,
          bundle: r.bundle,
          rootfs,
          stdio,
          checkpoint,
          parentCheckpoint: r.parentCheckpoint ?? "",
          options: r.options,
        },
        ns,
        this.opts.reaper,
      );
      this.containers.set(key, c);
      if (c.init.pid) this.#byPid.set(c.init.pid, { process: c.init, container: c });
      this.#publish(
        taskEvents.create(ns, { containerId: r.id, bundle: r.bundle, rootfs, io: stdio, checkpoint, pid: c.init.pid }),
      );
      return { pid: c.init.pid };
    } finally {
      this.#creating.delete(key);
      this.#occupancyChanged();
    }
  }

  async start(r: Req<"Start">, ctx?: CallContext): Promise<Res<"Start">> {
    const c = this.#container(r.id, ctx);
    const p = c.process(r.execId ?? "");
    if (p.execId) {
      const s = c.init.status;
      if (s !== "running" && s !== "paused" && s !== "pausing") {
        throw errFailedPrecondition(`container ${c.id} init process is not running`);
      }
      await this.#started(c, p, () => this.#publish(taskEvents.execStarted(c.namespace, c.id, p.execId, p.pid)));
    } else {
      await this.#started(c, p, () => {
        this.#publish(taskEvents.start(c.namespace, c.id, p.pid));
        c.watchOom(() => this.#publishOom(c));
      });
    }
    // State's fixed part is encoded here, where runc just took milliseconds, rather than in the first State.
    this.#stateAnswer(c, p);
    return { pid: p.pid };
  }

  async delete(r: Req<"Delete">, ctx?: CallContext): Promise<Res<"Delete">> {
    const c = this.#container(r.id, ctx);
    const p = c.process(r.execId ?? "");
    await p.delete();
    if (p.exitedAt && !p.exitReported) await p.waitReported();
    else if (!p.exitReported) p.markReported();
    const exitedAt = p.exitedAt;
    if (p.execId) {
      c.execs.delete(p.execId);
      if (this.#byPid.get(p.pid)?.process === p) this.#byPid.delete(p.pid);
      if (this.opts.execDeleteEvents) {
        this.#publishAfterAnswer(taskEvents.delete(c.namespace, {
          containerId: c.id,
          id: p.execId,
          pid: p.pid,
          exitStatus: p.exitStatus,
          exitedAt,
        }));
      }
    } else {
      // Not awaited: a logging driver of an exec that is still there ends in the background (its close never throws).
      for (const e of c.execs.values()) void e.io?.close();
      c.release();
      this.containers.delete(containerKey(c.namespace, c.id));
      for (const proc of c.all()) if (this.#byPid.get(proc.pid)?.process === proc) this.#byPid.delete(proc.pid);
      if (ctx?.connection) this.#bound.get(ctx.connection)?.delete(c.id);
      this.#publishAfterAnswer(taskEvents.delete(c.namespace, {
        containerId: c.id,
        id: "",
        pid: p.pid,
        exitStatus: p.exitStatus,
        exitedAt,
      }));
      this.#occupancyChanged();
    }
    this.opts.onProcessDeleted?.();
    return { pid: p.pid, exitStatus: p.exitStatus, exitedAt: exitedAt ? toTimestamp(exitedAt) : undefined };
  }

  /** State, encoded (`containerd.task.v2.StateResponse`). */
  state(r: Req<"State">, ctx?: CallContext): Uint8Array {
    const c = this.#container(r.id, ctx);
    const p = c.process(r.execId ?? "");
    return this.#stateAnswer(c, p).encode(p.pid, STATUS[p.status], p.exitStatus, p.exitedAt);
  }

  #stateAnswer(c: Container, p: Process): StateAnswer {
    let answer = this.#stateAnswers.get(p);
    if (!answer) {
      answer = new StateAnswer({ id: p.id, bundle: c.bundle, stdio: p.stdio, execId: p.execId });
      this.#stateAnswers.set(p, answer);
    }
    return answer;
  }

  async wait(r: Req<"Wait">, ctx?: CallContext): Promise<Res<"Wait">> {
    const p = this.#container(r.id, ctx).process(r.execId ?? "");
    await p.waitReported();
    return { exitStatus: p.exitStatus, exitedAt: p.exitedAt ? toTimestamp(p.exitedAt) : undefined };
  }

  async kill(r: Req<"Kill">, ctx?: CallContext): Promise<Record<string, never>> {
    const p = this.#container(r.id, ctx).process(r.execId ?? "");
    await p.kill(r.signal ?? 0, !!r.all);
    return {};
  }

  exec(r: Req<"Exec">, ctx?: CallContext): Promise<Record<string, never>> {
    const c = this.#container(r.id, ctx);
    if (!r.execId) throw errInvalidArgument("exec id must not be empty");
    let spec: OciProcess;
    try {
      spec = r.spec ? decodeJsonAny<OciProcess>(r.spec) : {};
    } catch (err) {
      throw errInvalidArgument(`invalid process spec: ${(err as Error).message}`);
    }
    c.addExec(r.execId, {
      stdin: r.stdin ?? "",
      stdout: r.stdout ?? "",
      stderr: r.stderr ?? "",
      terminal: !!r.terminal,
    }, spec);
    // TaskExecStarted cannot overtake it: it needs a Start, sent only once this answer is read.
    this.#publishAfterAnswer(taskEvents.execAdded(c.namespace, c.id, r.execId));
    return Promise.resolve({});
  }

  async pids(r: Req<"Pids">, ctx?: CallContext): Promise<Res<"Pids">> {
    const c = this.#container(r.id, ctx);
    let pids: number[];
    try {
      pids = await c.runc.ps(c.id);
    } catch (err) {
      throw errState(`failed to list pids: ${(err as Error).message}`);
    }
    const execByPid = new Map<number, string>();
    for (const e of c.execs.values()) if (e.pid) execByPid.set(e.pid, e.execId);
    return {
      processes: pids.map((pid) => {
        const execId = execByPid.get(pid);
        return { pid, info: execId ? encodeAny("containerd.runc.v1.ProcessDetails", { execId }) : undefined };
      }),
    };
  }

  async pause(r: Req<"Pause">, ctx?: CallContext): Promise<Record<string, never>> {
    const c = this.#container(r.id, ctx);
    await c.init.serialize(() => c.init.state.pause());
    this.#publish(taskEvents.paused(c.namespace, c.id));
    return {};
  }

  async resume(r: Req<"Resume">, ctx?: CallContext): Promise<Record<string, never>> {
    const c = this.#container(r.id, ctx);
    await c.init.serialize(() => c.init.state.resume());
    this.#publish(taskEvents.resumed(c.namespace, c.id));
    return {};
  }

  async checkpoint(r: Req<"Checkpoint">, ctx?: CallContext): Promise<Record<string, never>> {
    const c = this.#container(r.id, ctx);
    const o: ReturnType<typeof decodeCheckpointOptions> | Record<string, undefined> = r.options?.type_url
      ? decodeCheckpointOptions(r.options)
      : {};
    const params: CheckpointParams = {
      imagePath: o.imagePath || r.path || "",
      workPath: o.workPath || undefined,
      parentPath: o.parentPath || undefined,
      exit: o.exit,
      openTcp: o.openTcp,
      externalUnixSockets: o.externalUnixSockets,
      terminal: o.terminal,
      fileLocks: o.fileLocks,
      emptyNamespaces: o.emptyNamespaces,
      cgroupsMode: o.cgroupsMode,
    };
    if (!params.imagePath) throw errInvalidArgument("checkpoint image path must be set");
    await c.init.serialize(() => c.init.state.checkpoint(params));
    this.#publish(taskEvents.checkpointed(c.namespace, c.id, params.imagePath));
    return {};
  }

  async update(r: Req<"Update">, ctx?: CallContext): Promise<Record<string, never>> {
    const c = this.#container(r.id, ctx);
    if (!r.resources) throw errInvalidArgument("resources must be set");
    let resources: Record<string, unknown>;
    try {
      resources = decodeJsonAny<Record<string, unknown>>(r.resources);
    } catch (err) {
      throw errInvalidArgument(`invalid resources: ${(err as Error).message}`);
    }
    await c.init.serialize(() => c.init.state.update(resources));
    return {};
  }

  resizePty(r: Req<"ResizePty">, ctx?: CallContext): Promise<Record<string, never>> {
    const p = this.#container(r.id, ctx).process(r.execId ?? "");
    const fd = p.io?.consoleFd ?? -1;
    // No terminal: nothing to resize, and success, as the Go shim answers (clients written against it do not check).
    if (fd >= 0) resizePty(fd, r.width ?? 0, r.height ?? 0);
    return Promise.resolve({});
  }

  closeIO(r: Req<"CloseIO">, ctx?: CallContext): Promise<Record<string, never>> {
    const p = this.#container(r.id, ctx).process(r.execId ?? "");
    if (r.stdin) p.closeStdin();
    return Promise.resolve({});
  }

  stats(r: Req<"Stats">, ctx?: CallContext): Promise<Res<"Stats">> {
    const c = this.#container(r.id, ctx);
    if (!c.cgroup) throw errNotFound("cgroup does not exist");
    try {
      const m = c.cgroup.metrics();
      return Promise.resolve({ stats: { type_url: m.typeUrl, value: m.value } });
    } catch (err) {
      if (err instanceof CgroupNotFoundError) throw errNotFound("cgroup does not exist");
      throw err;
    }
  }

  connect(r: Req<"Connect">, ctx?: CallContext): Promise<Res<"Connect">> {
    let c: Container | undefined;
    try {
      c = r.id ? this.#container(r.id, ctx) : undefined;
    } catch { /* Connect answers for the server even when the task is unknown */ }
    return Promise.resolve({ shimPid: Deno.pid, taskPid: c?.init.pid ?? 0, version: this.opts.version ?? "" });
  }

  /**
   * Exits once nothing is left: no container, no Create in flight and no reservation (a grouped server may just
   * have been handed to a new container by `start`; its reservation keeps the server for that Create). The socket is
   * gone before the answer, as clients check right after containerd's Delete returns. Shutdown of a container whose
   * Create never came (containerd cleaning up a failed create) drops that container's reservation.
   */
  async shutdown(r: Req<"Shutdown">, ctx?: CallContext): Promise<Record<string, never>> {
    const ns = ctx?.metadata.get(NAMESPACE_METADATA)?.[0];
    if (r.id) {
      this.opts.onReservationDone?.(ns, r.id);
      if (this.#unreserve(ns, r.id)) this.#occupancyChanged();
    }
    if (this.occupancy === 0) await this.opts.onShutdown();
    return {};
  }
}

function reservationKey(namespace: string, id: string): string {
  return `${namespace}\0${id}`;
}

/**
 * containerd 1.6 sends no namespace metadata with Task calls; its bundles live at `…/<namespace>/<id>`, which lets a
 * server shared across namespaces (namespace and node grouping) tell them apart.
 */
export function namespaceOfBundle(bundle: string): string | undefined {
  const parts = bundle.replace(/\/+$/, "").split("/");
  return parts.length >= 3 && parts[parts.length - 3].startsWith("io.containerd.runtime.v")
    ? parts[parts.length - 2]
    : undefined;
}

function decodeCheckpointOptions(any: { type_url?: string | null; value?: Uint8Array | null }) {
  if (any.type_url !== "containerd.runc.v1.CheckpointOptions") {
    throw errInvalidArgument(`unsupported checkpoint options type ${any.type_url}`);
  }
  return runcopts.CheckpointOptions.decode(any.value ?? new Uint8Array());
}
