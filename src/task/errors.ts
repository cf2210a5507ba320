/**
 * Errors of the Task service, carrying their gRPC code from the point where the meaning is known. Messages follow
 * containerd's errdefs convention (the sentinel text is appended: "process already finished: not found"), because
 * tools string-match them; plain state errors ("cannot delete a running process") keep Go's Unknown code.
 *
 * @module
 */
import { Code, TtrpcError } from "../ttrpc/status.ts";

/** NotFound, e.g. "container not created: not found". */
export function errNotFound(msg: string): TtrpcError {
  return new TtrpcError(Code.NotFound, `${msg}: not found`);
}

/** AlreadyExists, e.g. "id e1: already exists". */
export function errAlreadyExists(msg: string): TtrpcError {
  return new TtrpcError(Code.AlreadyExists, `${msg}: already exists`);
}

/** FailedPrecondition, e.g. "process not created: failed precondition". */
export function errFailedPrecondition(msg: string): TtrpcError {
  return new TtrpcError(Code.FailedPrecondition, `${msg}: failed precondition`);
}

/** InvalidArgument, e.g. "container id must not be empty: invalid argument". */
export function errInvalidArgument(msg: string): TtrpcError {
  return new TtrpcError(Code.InvalidArgument, `${msg}: invalid argument`);
}

/** NotImplemented maps to Unimplemented. */
export function errNotImplemented(msg: string): TtrpcError {
  return new TtrpcError(Code.Unimplemented, `${msg}: not implemented`);
}

/** A state-machine refusal: the Go shim returns a plain error, which travels as Unknown. */
export function errState(msg: string): TtrpcError {
  return new TtrpcError(Code.Unknown, msg);
}

/** Wraps a lower-level failure (runc, mount, IO) with context, as Unknown unless it already has a code. */
export function wrapError(context: string, err: unknown): TtrpcError {
  if (err instanceof TtrpcError) return new TtrpcError(err.code, `${context}: ${err.message}`, err.details);
  const msg = err instanceof Error ? err.message : String(err);
  return new TtrpcError(Code.Unknown, `${context}: ${msg}`);
}
