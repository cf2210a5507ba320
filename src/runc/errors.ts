/**
 * The one error type of the runc wrapper, and predicates that classify runc's messages so the task layer can map them
 * to gRPC codes where the meaning is known (the predicates are the only place that matches runc's wording).
 *
 * @example
 * ```ts
 * import { isNotExist, RuncError } from "./errors.ts";
 * const err = new RuncError({ command: "delete", args: ["delete", "c1"], code: 1, signal: null,
 *   runtimeMessage: "container does not exist" });
 * err.message; // "container does not exist" (runc's own words, as the Go shim reports them)
 * isNotExist(err); // true
 * ```
 * @module
 */

/** What is known about one failed runc invocation. */
export interface RuncErrorInit {
  /** The runc subcommand, e.g. "create". */
  command: string;
  /** The full argument list after the binary (global flags included). */
  args: string[];
  /** Exit code, or null when runc was killed by a signal or never ran. */
  code: number | null;
  /** Terminating signal, if any. */
  signal: Deno.Signal | null;
  /** runc's own last error message (log.json, else stderr); "" when runc said nothing. */
  runtimeMessage: string;
  /** Underlying error (spawn failure, unreadable output). */
  cause?: unknown;
}

/** Describes the exit for messages: "exit status 1" / "signal SIGKILL", like Go's `ExitError`. */
function exitText(code: number | null, signal: Deno.Signal | null): string {
  if (signal) return `signal ${signal}`;
  return code === null ? "did not run" : `exit status ${code}`;
}

/**
 * A runc call that failed. The message is runc's own last error, as the Go shim reports it after its context (so
 * `OCI runtime exec failed: exec failed: unable to start container process: …`, and for create, where runc 1.1
 * names itself, `OCI runtime create failed: runc create failed: …`). When runc said nothing, the message is
 * `runc <command> failed: <exit status>`.
 */
export class RuncError extends Error {
  override name = "RuncError";
  readonly command: string;
  readonly args: string[];
  readonly code: number | null;
  readonly signal: Deno.Signal | null;
  readonly runtimeMessage: string;

  constructor(init: RuncErrorInit) {
    super(
      init.runtimeMessage || `runc ${init.command} failed: ${exitText(init.code, init.signal)}`,
      init.cause === undefined ? {} : { cause: init.cause },
    );
    this.command = init.command;
    this.args = init.args;
    this.code = init.code;
    this.signal = init.signal;
    this.runtimeMessage = init.runtimeMessage;
  }

  /** "exit status N" or "signal SIG…": how runc ended. */
  get exitStatus(): string {
    return exitText(this.code, this.signal);
  }
}

function runcText(err: unknown): string | undefined {
  return err instanceof RuncError ? err.runtimeMessage.toLowerCase() : undefined;
}

/** True for a RuncError. */
export function isRuncError(err: unknown): err is RuncError {
  return err instanceof RuncError;
}

/** runc does not know the container ("container does not exist"): gRPC NotFound "no such container". */
export function isNotExist(err: unknown): boolean {
  const t = runcText(err);
  return t !== undefined && (t.includes("does not exist") || t.includes("container not found"));
}

/** The container's process is gone ("container not running", "no such process"): NotFound "process already finished". */
export function isNotRunning(err: unknown): boolean {
  const t = runcText(err);
  return t !== undefined &&
    (t.includes("container not running") || t.includes("no such process") || t.includes("process already finished"));
}

/** A container with this id already exists under the runc root: gRPC AlreadyExists. */
export function isAlreadyExists(err: unknown): boolean {
  const t = runcText(err);
  // runc 1.1: "container with given ID already exists"; runc 1.0: "container with id exists: <id>"
  return t !== undefined && /container with (given )?id (already )?exists/.test(t);
}

/** The container is paused and the operation needs it running (e.g. exec without --ignore-paused). */
export function isPaused(err: unknown): boolean {
  const t = runcText(err);
  return t !== undefined && t.includes("paused container");
}

/** The failure came from CRIU (checkpoint/restore); the message names criu's log file. */
export function isCriuError(err: unknown): boolean {
  const t = runcText(err);
  return t !== undefined && t.includes("criu failed");
}

/** runc does not know the subcommand (an older runc, e.g. `features` before 1.1). */
export function isUnknownCommand(err: unknown): boolean {
  const t = runcText(err);
  return t !== undefined && t.includes("no help topic for");
}
