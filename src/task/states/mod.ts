/**
 * The process states and the factory that lets them name each other.
 *
 * @module
 */
import type { StateFactory } from "./state.ts";
import { CreatedState } from "./created.ts";
import { CreatedCheckpointState } from "./created_checkpoint.ts";
import { RunningState } from "./running.ts";
import { PausingState } from "./pausing.ts";
import { PausedState } from "./paused.ts";
import { StoppedState } from "./stopped.ts";
import { DeletedState } from "./deleted.ts";

export type { CheckpointParams, ProcessState, StateHost, StateName } from "./state.ts";

const deleted = new DeletedState();

/** Constructors of every state. */
export const states: StateFactory = {
  created: (h) => new CreatedState(h),
  createdCheckpoint: (h) => new CreatedCheckpointState(h),
  running: (h) => new RunningState(h),
  pausing: (h) => new PausingState(h),
  paused: (h) => new PausedState(h),
  stopped: (h) => new StoppedState(h),
  deleted: () => deleted,
};
