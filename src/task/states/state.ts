/**
 * The process state machine's contract. A process is always in exactly one state object; an operation that is
 * invalid in that state fails there with the Go shim's words ("cannot delete a running process"). States decide;
 * the process (the {@link StateHost}) does the work (runc calls, IO) and is told which state comes next.
 *
 * One file per state: created.ts, created_checkpoint.ts, running.ts, pausing.ts, paused.ts, stopped.ts, deleted.ts;
 * mod.ts builds the factory that hosts hand to their states.
 *
 * @module
 */

/** Names as `runc state` and containerd's Status enum know them. */
export type StateName = "created" | "created-checkpoint" | "running" | "pausing" | "paused" | "stopped" | "deleted";

/** Checkpoint parameters, decoded from `CheckpointTaskRequest` and `containerd.runc.v1.CheckpointOptions`. */
export interface CheckpointParams {
  imagePath: string;
  workPath?: string;
  parentPath?: string;
  exit?: boolean;
  openTcp?: boolean;
  externalUnixSockets?: boolean;
  terminal?: boolean;
  fileLocks?: boolean;
  emptyNamespaces?: string[];
  cgroupsMode?: string;
}

/** What a state may ask of its process. */
export interface StateHost {
  /** The state constructors (passed in so that state files need not import each other). */
  readonly states: StateFactory;
  /** Moves to `next` only while `from` is still the current state (an exit may have overtaken the operation). */
  transition(from: ProcessState, next: ProcessState): void;
  runStart(): Promise<void>;
  runRestore(): Promise<void>;
  runDelete(): Promise<void>;
  runKill(signal: number, all: boolean): Promise<void>;
  runPause(): Promise<void>;
  runResume(): Promise<void>;
  runUpdate(resources: Record<string, unknown>): Promise<void>;
  runCheckpoint(params: CheckpointParams): Promise<void>;
  recordExit(status: number, at: Date): void;
}

/** Every operation, in every state. */
export interface ProcessState {
  readonly name: StateName;
  start(): Promise<void>;
  delete(): Promise<void>;
  kill(signal: number, all: boolean): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  update(resources: Record<string, unknown>): Promise<void>;
  checkpoint(params: CheckpointParams): Promise<void>;
  /** Throws when an exec may not be added to a container whose init is in this state. */
  checkExec(): void;
  /** The process exited (reaper). Never fails. */
  setExited(status: number, at: Date): void;
}

/** The factory each state file registers, so states can name each other without import cycles. */
export interface StateFactory {
  created(host: StateHost): ProcessState;
  createdCheckpoint(host: StateHost): ProcessState;
  running(host: StateHost): ProcessState;
  pausing(host: StateHost): ProcessState;
  paused(host: StateHost): ProcessState;
  stopped(host: StateHost): ProcessState;
  deleted(host: StateHost): ProcessState;
}
