/**
 * What init and exec processes share: the current state object, the pid, the exit record kept until Delete, the
 * stdio, and the promise Wait answers from. Operations that change state are serialised per process, so two
 * concurrent Deletes (or a Start racing a Delete) cannot both act; Kill is not, so it is never stuck behind them.
 *
 * @module
 */
import type { ProcessIO, StdioPaths } from "./io.ts";
import { type Child, readPidFile, type Stdio } from "../runc/mod.ts";
import { ConsoleSocket } from "../sys/console.ts";
import { type CheckpointParams, type ProcessState, type StateHost, type StateName, states } from "./states/mod.ts";
import { errState, wrapError } from "./errors.ts";

/** A reaped exit waiting to be applied. */
export interface ExitRecord {
  status: number;
  at: Date;
}

export abstract class Process implements StateHost {
  readonly states = states;
  state: ProcessState;
  pid = 0;
  exitStatus = 0;
  exitedAt: Date | undefined;
  io: ProcessIO | undefined;
  /** True while Start runs: an exit seen meanwhile is held back so TaskExit follows TaskStart. */
  starting = false;
  heldExit: ExitRecord | undefined;
  /** Set once TaskExit was published (or the process was deleted without ever running). */
  exitReported = false;
  /** CloseIO(stdin) was received. */
  stdinClosed = false;
  #ops: Promise<unknown> = Promise.resolve();
  #reported: Promise<void>;
  #resolveReported!: () => void;

  constructor(
    readonly containerId: string,
    /** The exec id, or "" for the init process. */
    readonly execId: string,
    readonly stdio: StdioPaths,
    initial: "created" | "created-checkpoint" = "created",
  ) {
    this.state = initial === "created" ? states.created(this) : states.createdCheckpoint(this);
    this.#reported = new Promise((r) => this.#resolveReported = r);
  }

  /** The id events and State use: the exec id, or the container id for init. */
  get id(): string {
    return this.execId || this.containerId;
  }

  get status(): StateName {
    return this.state.name;
  }

  transition(from: ProcessState, next: ProcessState): void {
    if (this.state === from) this.state = next;
  }

  recordExit(status: number, at: Date): void {
    this.exitStatus = status;
    this.exitedAt = at;
  }

  /** Runs state-changing operations one at a time. */
  serialize<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#ops.then(op, op);
    this.#ops = run.catch(() => {});
    return run;
  }

  /** Resolves once the exit was reported (Wait's answer), or the process was deleted without exiting. */
  waitReported(): Promise<void> {
    return this.#reported;
  }

  markReported(): void {
    this.exitReported = true;
    this.#resolveReported();
  }

  start(): Promise<void> {
    return this.serialize(() => this.state.start());
  }

  delete(): Promise<void> {
    return this.serialize(() => this.state.delete());
  }

  kill(signal: number, all: boolean): Promise<void> {
    return this.state.kill(signal, all);
  }

  /** CloseIO(stdin). Before the process's IO exists (an exec not started yet) it is remembered and applied then. */
  closeStdin(): void {
    this.stdinClosed = true;
    this.io?.closeStdin();
  }

  /** Applies an early CloseIO to IO that was just opened. */
  protected adoptIO(io: ProcessIO): ProcessIO {
    if (this.stdinClosed) io.closeStdin();
    return io;
  }

  /** Where runc writes this process's pid. */
  abstract get pidFile(): string;

  /**
   * Runs runc (`create`, `exec` or `restore`, given as `run`) with this process's stdio: pipes, or a console socket
   * whose pty master arrives over SCM_RIGHTS for a terminal. Then wires the IO to the child and reads the pid. On
   * failure the IO is closed and the error says what failed (`what`, e.g. "OCI runtime create failed").
   */
  protected async launch(
    io: ProcessIO,
    what: string,
    run: (stdio: Stdio, consoleSocket: string | undefined) => Promise<Child>,
  ): Promise<void> {
    let console: ConsoleSocket | undefined;
    try {
      if (this.stdio.terminal) console = await ConsoleSocket.create();
      const stdio = io.runcStdio();
      if (console) stdio.stdout = stdio.stderr = "null";
      const child = await run(stdio, console?.path).catch((err) => {
        throw wrapError(what, err);
      });
      if (console) {
        io.attachPipes(child, { ...stdio, stdin: "null" });
        io.attachConsole(await console.receiveMaster());
      } else io.attachPipes(child, stdio);
      this.pid = await readPid(this.pidFile);
    } catch (err) {
      await io.close();
      throw err;
    } finally {
      console?.close();
    }
  }

  abstract runStart(): Promise<void>;
  abstract runDelete(): Promise<void>;
  abstract runKill(signal: number, all: boolean): Promise<void>;

  runRestore(): Promise<void> {
    return Promise.reject(errState("restore is only possible for a container's init process"));
  }
  runPause(): Promise<void> {
    return Promise.reject(errState("cannot pause an exec process"));
  }
  runResume(): Promise<void> {
    return Promise.reject(errState("cannot resume an exec process"));
  }
  runUpdate(_: Record<string, unknown>): Promise<void> {
    return Promise.reject(errState("cannot update an exec process"));
  }
  runCheckpoint(_: CheckpointParams): Promise<void> {
    return Promise.reject(errState("cannot checkpoint an exec process"));
  }
}

/** Reads a runc pid file: the error names the file. */
export async function readPid(path: string): Promise<number> {
  try {
    return await readPidFile(path);
  } catch (err) {
    throw wrapError("failed to retrieve OCI runtime container pid", err);
  }
}
