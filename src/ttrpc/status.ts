/**
 * gRPC status codes and the error type that carries one across a ttrpc call.
 *
 * Handlers throw {@link TtrpcError}s where the meaning of a failure is known; the server turns them into the
 * Response status. Anything else becomes Unknown (2) with the error's message, as Go's ttrpc does (Go also maps
 * `os.IsNotExist`/`os.IsExist`/`os.IsPermission`; the Deno equivalents are mapped the same way).
 *
 * @example
 * ```ts
 * import { Code, notFound, TtrpcError } from "./status.ts";
 * try {
 *   throw notFound("container c1: not found");
 * } catch (e) {
 *   if (e instanceof TtrpcError && e.code === Code.NotFound) console.log(e.message);
 * }
 * ```
 * @module
 */

/** The 17 gRPC status codes. */
export enum Code {
  OK = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

/** A `google.protobuf.Any` carried in a status' details. */
export interface StatusDetail {
  typeUrl: string;
  value: Uint8Array;
}

/** The wire status of a ttrpc Response. */
export interface Status {
  code: number;
  message: string;
  details: StatusDetail[];
}

/** The text of Go's `context.DeadlineExceeded`, which containerd sees when a call's deadline passes. */
export const DEADLINE_EXCEEDED_MESSAGE = "context deadline exceeded";
/** The text of Go's `context.Canceled`. */
export const CANCELED_MESSAGE = "context canceled";
/** The text of Go's `ttrpc.ErrClosed`; containerd recognises a dead shim by it. */
export const CLOSED_MESSAGE = "ttrpc: closed";

/** An error with a gRPC code: thrown by handlers, and by the client when the peer answered with a status. */
export class TtrpcError extends Error {
  readonly code: Code;
  readonly details: StatusDetail[];

  constructor(code: Code, message: string, details: StatusDetail[] = []) {
    super(message);
    this.name = "TtrpcError";
    this.code = code;
    this.details = details;
  }

  /** The status this error is sent as. */
  toStatus(): Status {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/**
 * The connection is gone (EOF, EPIPE, ECONNRESET, or closed locally). Every pending and later call on that client
 * fails with it. The code is Unavailable; the message is Go's `ttrpc: closed`.
 */
export class ClosedError extends TtrpcError {
  constructor(cause?: unknown) {
    super(Code.Unavailable, CLOSED_MESSAGE);
    this.name = "ClosedError";
    if (cause !== undefined) this.cause = cause;
  }
}

/** True when `err` means the ttrpc connection is closed. */
export function isClosedError(err: unknown): err is ClosedError {
  return err instanceof ClosedError;
}

/** True when `err` is a {@link TtrpcError} with code `code`. */
export function hasCode(err: unknown, code: Code): boolean {
  return err instanceof TtrpcError && err.code === code;
}

/** Name of a code as in Go's `codes.Code.String()`, e.g. `NotFound`; `Code(99)` for unknown values. */
export function codeName(code: number): string {
  return Code[code] ?? `Code(${code})`;
}

export const canceled = (msg = CANCELED_MESSAGE): TtrpcError => new TtrpcError(Code.Canceled, msg);
export const unknown = (msg: string): TtrpcError => new TtrpcError(Code.Unknown, msg);
export const invalidArgument = (msg: string): TtrpcError => new TtrpcError(Code.InvalidArgument, msg);
export const deadlineExceeded = (msg = DEADLINE_EXCEEDED_MESSAGE): TtrpcError =>
  new TtrpcError(Code.DeadlineExceeded, msg);
export const notFound = (msg: string): TtrpcError => new TtrpcError(Code.NotFound, msg);
export const alreadyExists = (msg: string): TtrpcError => new TtrpcError(Code.AlreadyExists, msg);
export const permissionDenied = (msg: string): TtrpcError => new TtrpcError(Code.PermissionDenied, msg);
export const resourceExhausted = (msg: string): TtrpcError => new TtrpcError(Code.ResourceExhausted, msg);
export const failedPrecondition = (msg: string): TtrpcError => new TtrpcError(Code.FailedPrecondition, msg);
export const aborted = (msg: string): TtrpcError => new TtrpcError(Code.Aborted, msg);
export const outOfRange = (msg: string): TtrpcError => new TtrpcError(Code.OutOfRange, msg);
export const unimplemented = (msg: string): TtrpcError => new TtrpcError(Code.Unimplemented, msg);
export const internal = (msg: string): TtrpcError => new TtrpcError(Code.Internal, msg);
export const unavailable = (msg: string): TtrpcError => new TtrpcError(Code.Unavailable, msg);
export const dataLoss = (msg: string): TtrpcError => new TtrpcError(Code.DataLoss, msg);
export const unauthenticated = (msg: string): TtrpcError => new TtrpcError(Code.Unauthenticated, msg);

/** The status a handler failure is answered with. */
export function statusFromError(err: unknown): Status {
  if (err instanceof TtrpcError) return err.toStatus();
  const message = err instanceof Error ? err.message : String(err);
  return { code: codeFromNativeError(err), message, details: [] };
}

/** Go's `convertCode` for the errors Deno throws; everything else is Unknown. */
function codeFromNativeError(err: unknown): Code {
  if (err instanceof Deno.errors.NotFound) return Code.NotFound;
  if (err instanceof Deno.errors.AlreadyExists) return Code.AlreadyExists;
  if (err instanceof Deno.errors.PermissionDenied) return Code.PermissionDenied;
  return Code.Unknown;
}

/** The error a client call rejects with for a non-OK status. */
export function errorFromStatus(status: Status): TtrpcError {
  return new TtrpcError(status.code as Code, status.message, status.details);
}
