/**
 * `google.protobuf.Any` the way containerd uses it. Type URLs are bare full names ("containerd.events.TaskExit"),
 * never "type.googleapis.com/..." URLs; OCI runtime-spec types travel as JSON under
 * "types.containerd.io/opencontainers/runtime-spec/1/...".
 *
 * The registry below holds every protobuf message that travels inside an Any in the shim protocol: task events,
 * runc and legacy runtime options, cgroup metrics, CRI's generic runtime options.
 *
 * @example
 * ```ts
 * import { decodeAny, decodeJsonAny, encodeAny, JSON_TYPE_URLS } from "./any.ts";
 *
 * const any = encodeAny("containerd.events.TaskOOM", { containerId: "c1" });
 * const decoded = decodeAny(any);
 * if (decoded.typeUrl === "containerd.events.TaskOOM") console.log(decoded.message.containerId); // "c1"
 *
 * // ExecProcessRequest.spec
 * const value = new TextEncoder().encode('{"args":["sh"]}');
 * const spec = decodeJsonAny<{ args: string[] }>({ type_url: JSON_TYPE_URLS.process, value });
 * ```
 * @module
 */
import { cgroupsV1, cgroupsV2, type Codec, events, google, linuxRunc, runcopts, runtimeOptions } from "./mod.ts";

/** The fields of an Any, as decoded or as built by hand. */
export interface AnyFields {
  type_url?: string | null;
  value?: Uint8Array | null;
}

/** Protobuf messages that travel inside an Any, by type URL. */
const PROTO_TYPES = {
  "containerd.events.TaskCreate": events.TaskCreate,
  "containerd.events.TaskStart": events.TaskStart,
  "containerd.events.TaskDelete": events.TaskDelete,
  "containerd.events.TaskExit": events.TaskExit,
  "containerd.events.TaskOOM": events.TaskOOM,
  "containerd.events.TaskExecAdded": events.TaskExecAdded,
  "containerd.events.TaskExecStarted": events.TaskExecStarted,
  "containerd.events.TaskPaused": events.TaskPaused,
  "containerd.events.TaskResumed": events.TaskResumed,
  "containerd.events.TaskCheckpointed": events.TaskCheckpointed,
  "containerd.runc.v1.Options": runcopts.Options,
  "containerd.runc.v1.CheckpointOptions": runcopts.CheckpointOptions,
  "containerd.runc.v1.ProcessDetails": runcopts.ProcessDetails,
  "containerd.linux.runc.RuncOptions": linuxRunc.RuncOptions,
  "containerd.linux.runc.CreateOptions": linuxRunc.CreateOptions,
  "containerd.linux.runc.CheckpointOptions": linuxRunc.CheckpointOptions,
  "containerd.linux.runc.ProcessDetails": linuxRunc.ProcessDetails,
  "io.containerd.cgroups.v1.Metrics": cgroupsV1.Metrics,
  "io.containerd.cgroups.v2.Metrics": cgroupsV2.Metrics,
  "runtimeoptions.v1.Options": runtimeOptions.Options,
} as const;

/** Type URL of a registered protobuf message. */
export type ProtoTypeUrl = keyof typeof PROTO_TYPES;
/** The decoded message class of a registered type URL. */
export type MessageOf<U extends ProtoTypeUrl> = ReturnType<(typeof PROTO_TYPES)[U]["decode"]>;
/** The plain fields accepted when encoding a registered type URL. */
export type PropertiesOf<U extends ProtoTypeUrl> = Parameters<(typeof PROTO_TYPES)[U]["encode"]>[0];
/** A decoded Any: the type URL narrows the message type. */
export type DecodedAny = { [U in ProtoTypeUrl]: { typeUrl: U; message: MessageOf<U> } }[ProtoTypeUrl];

/** Every registered protobuf type URL. */
export const PROTO_TYPE_URLS: readonly ProtoTypeUrl[] = Object.keys(PROTO_TYPES) as ProtoTypeUrl[];

/** Prefix of the JSON-encoded types registered with containerd's typeurl (OCI runtime-spec and others). */
export const JSON_TYPE_URL_PREFIX = "types.containerd.io/";

/** The JSON-typed Anys of the shim protocol. */
export const JSON_TYPE_URLS = {
  /** `ExecProcessRequest.spec`: OCI `specs.Process`. */
  process: "types.containerd.io/opencontainers/runtime-spec/1/Process",
  /** `UpdateTaskRequest.resources`: OCI `specs.LinuxResources`. */
  linuxResources: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
  /** A whole OCI `specs.Spec` (containers' spec in containerd's metadata). */
  spec: "types.containerd.io/opencontainers/runtime-spec/1/Spec",
  /** `RuntimeInfo.features`: OCI `features.Features` (the output of `runc features`). */
  features: "types.containerd.io/opencontainers/runtime-spec/1/features/Features",
} as const;

/** A JSON type URL: one of {@link JSON_TYPE_URLS} or any other under {@link JSON_TYPE_URL_PREFIX}. */
export type JsonTypeUrl = (typeof JSON_TYPE_URLS)[keyof typeof JSON_TYPE_URLS] | `types.containerd.io/${string}`;

/** Builds an Any from a type URL and already-encoded bytes. */
export function packAny(typeUrl: string, value: Uint8Array): google.protobuf.Any {
  return google.protobuf.Any.create({ type_url: typeUrl, value });
}

/** True when `typeUrl` names a registered protobuf message. */
export function isProtoTypeUrl(typeUrl: string): typeUrl is ProtoTypeUrl {
  return Object.hasOwn(PROTO_TYPES, typeUrl);
}

/** True when `typeUrl` names a JSON-encoded type. */
export function isJsonTypeUrl(typeUrl: string): typeUrl is JsonTypeUrl {
  return typeUrl.startsWith(JSON_TYPE_URL_PREFIX);
}

/** The codec of a registered type URL; throws naming the URL when it is unknown. */
export function codecFor<U extends ProtoTypeUrl>(typeUrl: U): Codec<PropertiesOf<U>, MessageOf<U>>;
export function codecFor(typeUrl: string): Codec<unknown>;
export function codecFor(typeUrl: string): Codec<unknown> {
  if (!isProtoTypeUrl(typeUrl)) {
    const hint = isJsonTypeUrl(typeUrl) ? " (a JSON type: use decodeJsonAny)" : "";
    throw new TypeError(`unknown Any type URL "${typeUrl}"${hint}`);
  }
  return PROTO_TYPES[typeUrl] as unknown as Codec<unknown>;
}

/** Encodes `message` as the registered type `typeUrl` and wraps it in an Any. */
export function encodeAny<U extends ProtoTypeUrl>(typeUrl: U, message: PropertiesOf<U>): google.protobuf.Any {
  return packAny(typeUrl, codecFor(typeUrl).encode(message).finish());
}

/**
 * Decodes the message inside an Any by its type URL. Throws a TypeError naming the type URL when it is not a
 * registered protobuf type (JSON types included: use {@link decodeJsonAny}).
 */
export function decodeAny(any: AnyFields): DecodedAny {
  const typeUrl = any.type_url ?? "";
  const message = codecFor(typeUrl).decode(any.value ?? new Uint8Array());
  return { typeUrl, message } as DecodedAny;
}

/** Decodes an Any that must hold `typeUrl`; throws when it holds something else. */
export function decodeAnyAs<U extends ProtoTypeUrl>(any: AnyFields, typeUrl: U): MessageOf<U> {
  if (any.type_url !== typeUrl) throw new TypeError(`expected Any of type "${typeUrl}", got "${any.type_url ?? ""}"`);
  return codecFor(typeUrl).decode(any.value ?? new Uint8Array());
}

/** Wraps `obj` as JSON (compact, UTF-8, as Go's json.Marshal writes it) under a JSON type URL. */
export function encodeJsonAny(typeUrl: JsonTypeUrl, obj: unknown): google.protobuf.Any {
  if (!isJsonTypeUrl(typeUrl)) throw new TypeError(`"${typeUrl}" is not a JSON type URL`);
  const json = JSON.stringify(obj);
  if (json === undefined) throw new TypeError(`cannot encode ${typeof obj} as JSON for "${typeUrl}"`);
  return packAny(typeUrl, new TextEncoder().encode(json));
}

/**
 * Parses the JSON inside an Any with a JSON type URL. Throws a TypeError naming the type URL when it is not a JSON
 * type or the bytes are not valid JSON. The result is not validated against `T`.
 */
export function decodeJsonAny<T>(any: AnyFields): T {
  const typeUrl = any.type_url ?? "";
  if (!isJsonTypeUrl(typeUrl)) {
    const hint = isProtoTypeUrl(typeUrl) ? " (a protobuf type: use decodeAny)" : "";
    throw new TypeError(`Any type URL "${typeUrl}" is not a JSON type${hint}`);
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(any.value ?? new Uint8Array())) as T;
  } catch (err) {
    throw new TypeError(`Any "${typeUrl}" does not hold valid JSON: ${(err as Error).message}`);
  }
}
