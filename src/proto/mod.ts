/**
 * The typed protobuf codecs of the shim protocol: containerd's Task API, task events, runc options, cgroup metrics,
 * the bootstrap protocol and the ttrpc envelope, generated from `proto/` by `deno task gen`.
 *
 * Importing this module configures protobufjs once for the whole process (the generated code does it before any
 * codec is built): 64-bit integers are plain `number`s and `bytes` are `Uint8Array`s, never `Long` or `Buffer`.
 * Field names are camelCase (`exitStatus`, `execId`), except `google.protobuf.Any`, which keeps `type_url`.
 *
 * @example
 * ```ts
 * import { encodeMessage, nowTimestamp, task } from "./mod.ts";
 *
 * const bytes = encodeMessage(task.WaitResponse, { exitStatus: 137, exitedAt: nowTimestamp() });
 * const back = task.WaitResponse.decode(bytes);
 * console.log(back.exitStatus); // 137
 * ```
 * @module
 */
// deno lint reports `export import` aliases below as unused variables; they are exports.
// deno-lint-ignore-file no-unused-vars
import $protobuf from "protobufjs/minimal";
import { containerd, google, io, runtimeoptions, ttrpc } from "./gen/shim.js";

// runtime.ts (which the generated module builds its codecs with, each on first access) already did this; repeating it
// is harmless and keeps the guarantee visible here, where readers look for it.
$protobuf.util.Long = undefined as never;
$protobuf.util.Buffer = null as never;
$protobuf.configure();

export { containerd, google, io, runtimeoptions, ttrpc };

// Short names for what the shim uses. `export import` aliases a namespace as both value and type, so
// `task.StateResponse` works as a class (`task.StateResponse.decode(...)`) and as a type.

/** Task API messages (`containerd.task.v2`); containerd 2.x's `containerd.task.v3` uses the same messages. */
export import task = containerd.task.v2;
/** Task event messages (`containerd.events`). */
export import events = containerd.events;
/** runc shim options (`containerd.runc.v1`): Options, CheckpointOptions, ProcessDetails. */
export import runcopts = containerd.runc.v1;
/** Legacy runtime v1 options (`containerd.linux.runc`): CreateOptions, CheckpointOptions, RuncOptions. */
export import linuxRunc = containerd.linux.runc;
/** `containerd.types`: Mount, Envelope, RuntimeInfo, RuntimeVersion. */
export import types = containerd.types;
/** `containerd.v1.types`: the Status enum and ProcessInfo. */
export import v1types = containerd.v1.types;
/** The process status enum of StateResponse. */
export import Status = containerd.v1.types.Status;
/** The ttrpc events service messages (`containerd.services.events.ttrpc.v1`): ForwardRequest. */
export import eventsService = containerd.services.events.ttrpc.v1;
/** containerd 2.3+ bootstrap protocol (`containerd.runtime.bootstrap.v1`). */
export import bootstrap = containerd.runtime.bootstrap.v1;
/** cgroup v1 statistics (`io.containerd.cgroups.v1`). */
export import cgroupsV1 = io.containerd.cgroups.v1;
/** cgroup v2 statistics (`io.containerd.cgroups.v2`). */
export import cgroupsV2 = io.containerd.cgroups.v2;
/** CRI's options for runtimes that are not runc (`runtimeoptions.v1`). */
export import runtimeOptions = runtimeoptions.v1;
/** `google.protobuf.Any`. */
export import Any = google.protobuf.Any;
/** `google.protobuf.Empty`: the reply of most Task RPCs; zero bytes on the wire. */
export import Empty = google.protobuf.Empty;
/** `google.protobuf.Timestamp`. */
export import Timestamp = google.protobuf.Timestamp;

/** What every generated message class offers; enough to encode and decode without knowing the class. */
export interface Codec<P, M extends P = P> {
  encode(message: P, writer?: $protobuf.Writer): $protobuf.Writer;
  decode(reader: $protobuf.Reader | Uint8Array, length?: number): M;
}

/** Encodes `message` with `codec` into a fresh byte array. */
export function encodeMessage<P>(codec: Codec<P>, message: P): Uint8Array {
  return codec.encode(message).finish();
}

/** Full service names as they appear in ttrpc `Request.service`. */
export const TASK_SERVICE = "containerd.task.v2.Task";
/** The same Task API under the name containerd 2.x uses when the shim reported version 3. */
export const TASK_SERVICE_V3 = "containerd.task.v3.Task";
/** The service a shim calls on `$TTRPC_ADDRESS` to publish events (method `Forward`, request ForwardRequest). */
export const EVENTS_SERVICE = "containerd.services.events.ttrpc.v1.Events";

/** Request and response codec of one Task RPC. */
export interface TaskMethod {
  request: Codec<unknown>;
  response: Codec<unknown>;
}

/**
 * A method's codecs, looked up on use: the schema builds each message's codec on first access (runtime.ts), and a
 * table of 34 plain references built them all while this module loaded, ~4 ms of every server's boot.
 */
function method<Q, R>(request: () => Q, response: () => R): { readonly request: Q; readonly response: R } {
  return {
    get request() {
      return request();
    },
    get response() {
      return response();
    },
  };
}

/** The 17 Task RPCs by bare method name (ttrpc `Request.method`), with their request and response codecs. */
export const taskMethods = {
  State: method(() => task.StateRequest, () => task.StateResponse),
  Create: method(() => task.CreateTaskRequest, () => task.CreateTaskResponse),
  Start: method(() => task.StartRequest, () => task.StartResponse),
  Delete: method(() => task.DeleteRequest, () => task.DeleteResponse),
  Pids: method(() => task.PidsRequest, () => task.PidsResponse),
  Pause: method(() => task.PauseRequest, () => Empty),
  Resume: method(() => task.ResumeRequest, () => Empty),
  Checkpoint: method(() => task.CheckpointTaskRequest, () => Empty),
  Kill: method(() => task.KillRequest, () => Empty),
  Exec: method(() => task.ExecProcessRequest, () => Empty),
  ResizePty: method(() => task.ResizePtyRequest, () => Empty),
  CloseIO: method(() => task.CloseIORequest, () => Empty),
  Update: method(() => task.UpdateTaskRequest, () => Empty),
  Wait: method(() => task.WaitRequest, () => task.WaitResponse),
  Stats: method(() => task.StatsRequest, () => task.StatsResponse),
  Connect: method(() => task.ConnectRequest, () => task.ConnectResponse),
  Shutdown: method(() => task.ShutdownRequest, () => Empty),
} as const satisfies Record<string, TaskMethod>;

/** A Task RPC name. */
export type TaskMethodName = keyof typeof taskMethods;

/** Event topic of each task event type URL, as the Go shim publishes them. */
export const TASK_EVENT_TOPICS = {
  "containerd.events.TaskCreate": "/tasks/create",
  "containerd.events.TaskStart": "/tasks/start",
  "containerd.events.TaskDelete": "/tasks/delete",
  "containerd.events.TaskExit": "/tasks/exit",
  "containerd.events.TaskOOM": "/tasks/oom",
  "containerd.events.TaskExecAdded": "/tasks/exec-added",
  "containerd.events.TaskExecStarted": "/tasks/exec-started",
  "containerd.events.TaskPaused": "/tasks/paused",
  "containerd.events.TaskResumed": "/tasks/resumed",
  "containerd.events.TaskCheckpointed": "/tasks/checkpointed",
} as const;

/** `google.protobuf.Timestamp` fields as plain data. */
export interface TimestampFields {
  seconds?: number | null;
  nanos?: number | null;
}

/**
 * Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z). The Go shim sends it in non-nullable timestamp fields
 * (e.g. StateResponse.exited_at of a live process); containerd treats it, and an absent field, as "no time".
 */
export const GO_ZERO_TIME_SECONDS = -62135596800;

/** Timestamp of a Date (millisecond precision). */
export function toTimestamp(date: Date): { seconds: number; nanos: number } {
  return fromMillis(date.getTime());
}

/** Date of a Timestamp; an absent timestamp is the Unix epoch. Sub-millisecond digits are dropped. */
export function fromTimestamp(ts: TimestampFields | null | undefined): Date {
  return new Date((ts?.seconds ?? 0) * 1000 + Math.floor((ts?.nanos ?? 0) / 1e6));
}

/** The current time with sub-millisecond precision, for exited_at and envelope timestamps (never zero). */
export function nowTimestamp(): { seconds: number; nanos: number } {
  return fromMillis(performance.timeOrigin + performance.now());
}

/** True for an absent timestamp, the Unix epoch as all-zero fields, or Go's zero time. */
export function isZeroTimestamp(ts: TimestampFields | null | undefined): boolean {
  const seconds = ts?.seconds ?? 0, nanos = ts?.nanos ?? 0;
  return nanos === 0 && (seconds === 0 || seconds === GO_ZERO_TIME_SECONDS);
}

function fromMillis(ms: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  // Rounding a float can reach 1e9; clamp so the pair stays a valid Timestamp.
  const nanos = Math.min(999_999_999, Math.max(0, Math.round((ms - seconds * 1000) * 1e6)));
  return { seconds, nanos };
}
