/**
 * Reservations: before `start` hands a running server's address to containerd, a place is held on that server for
 * the container. A server that holds a reservation does not exit on Shutdown or idleness until that container's Create
 * consumed it or it expired; a server that is already exiting refuses, and `start` then spawns a new server instead of
 * handing out a dying address. This closes, by design, the race a grace timer used to cover.
 *
 * A live server of this build is asked through files first (reserve_file.ts: no libc, no round trip). This module is
 * the other way, which tells every other case apart: `deno.shim.v1.Lifecycle/Reserve` over the server's own ttrpc
 * socket, for a server that has not taken its live file yet, one of an older build, one that is leaving (it refuses),
 * or none (nothing answers).
 *
 * The request is hand-rolled (protobuf wire from wire.ts, ttrpc framing from src/ttrpc/frame.ts, a synchronous
 * socket exchange from src/sys) so that `start` still loads no ttrpc or protobuf library code.
 *
 * @example
 * ```ts
 * import { reservePlace } from "./reserve.ts";
 * const r = reservePlace("/run/containerd/s/6f1c…", "default", "redis");
 * // { kind: "reserved" } | { kind: "absent" } | { kind: "refused", reason: "…" }
 * ```
 * @module
 */
import { encodeFrame, FrameType, HEADER_LENGTH, readFrameHeader } from "../ttrpc/frame.ts";
import { type Exchange, unixSend } from "../sys/unix_socket.ts";
import { readFields, stringFields, WireWriter } from "./wire.ts";

/** The private ttrpc service a server offers its own `start` processes. */
export const LIFECYCLE_SERVICE = "deno.shim.v1.Lifecycle";
/** Its one method: ReserveRequest{namespace=1, id=2} → empty. */
export const RESERVE_METHOD = "Reserve";

/** How long `start` waits for a server's answer before it counts the server as unusable. */
const RESERVE_TIMEOUT_MS = 5000;
/** gRPC code Unimplemented: a server older than reservations (keeps its socket until it exits). */
const UNIMPLEMENTED = 12;

/** Encodes ReserveRequest{namespace=1, id=2}. */
export function encodeReserveRequest(namespace: string, id: string): Uint8Array {
  return new WireWriter().bytes(1, namespace).bytes(2, id).finish();
}

/** Decodes ReserveRequest; throws on malformed input. */
export function decodeReserveRequest(payload: Uint8Array): { namespace: string; id: string } {
  const f = stringFields(payload);
  return { namespace: f.get(1) ?? "", id: f.get(2) ?? "" };
}

/** What asking a server for a place gave. */
export type ReserveResult =
  /** The server holds a place for the container (or predates reservations and is alive). */
  | { kind: "reserved" }
  /** Nothing listens on the socket. */
  | { kind: "absent" }
  /** Something listens but will not take the container: exiting, wedged, or not a shim. */
  | { kind: "refused"; reason: string };

/** The ttrpc Request frame for Reserve (stream 1). */
export function reserveFrame(namespace: string, id: string): Uint8Array {
  const request = new WireWriter()
    .bytes(1, LIFECYCLE_SERVICE)
    .bytes(2, RESERVE_METHOD)
    .bytes(3, encodeReserveRequest(namespace, id))
    .uint(4, RESERVE_TIMEOUT_MS * 1_000_000)
    .finish();
  return encodeFrame(1, FrameType.Request, 0, request);
}

/** Reads a ttrpc Response frame's status: code 0 and no message when it carries none. */
export function responseStatus(frame: Uint8Array): { code: number; message: string } {
  const header = readFrameHeader(frame);
  if (header.type !== FrameType.Response || header.streamId !== 1) {
    throw new Error(`unexpected frame type ${header.type} on stream ${header.streamId}`);
  }
  const body = frame.subarray(HEADER_LENGTH, HEADER_LENGTH + header.length);
  let code = 0, message = "";
  for (const f of readFields(body)) {
    if (f.field !== 1 || !f.bytes) continue;
    for (const g of readFields(f.bytes)) {
      if (g.field === 1 && g.varint !== undefined) code = g.varint;
    }
    message = stringFields(f.bytes).get(2) ?? "";
  }
  return { code, message };
}

/** Asks the server listening on `path` to hold a place for container `id` of `namespace`. Synchronous. */
export function reservePlace(path: string, namespace: string, id: string): ReserveResult {
  return sendReserve(path, namespace, id).finish();
}

/**
 * The first half of {@linkcode reservePlace}: sends the request and returns at once; `finish()` (call it once) reads
 * the answer, waiting up to the Reserve timeout from then. `start` does its own work while the server answers.
 */
export function sendReserve(path: string, namespace: string, id: string): { finish(): ReserveResult } {
  const sent = unixSend(path, reserveFrame(namespace, id), RESERVE_TIMEOUT_MS);
  if (sent.kind === "absent") return { finish: () => sent };
  return { finish: () => answerOf(sent.receive(wholeFrame, RESERVE_TIMEOUT_MS)) };
}

/** Whether `b` holds a whole ttrpc frame. */
function wholeFrame(b: Uint8Array): boolean {
  return b.length >= HEADER_LENGTH && b.length >= HEADER_LENGTH + readFrameHeader(b).length;
}

function answerOf(ex: Exchange): ReserveResult {
  if (ex.kind === "absent") return ex;
  if (!ex.complete) return { kind: "refused", reason: "no answer to Reserve" };
  let status: { code: number; message: string };
  try {
    status = responseStatus(ex.data);
  } catch (err) {
    return { kind: "refused", reason: `malformed answer to Reserve: ${(err as Error).message}` };
  }
  if (status.code === 0 || status.code === UNIMPLEMENTED) return { kind: "reserved" };
  return { kind: "refused", reason: status.message || `code ${status.code}` };
}
