/**
 * deleted: resources are released; the record only lives until the service drops it. Everything is refused.
 *
 * @module
 */
import { errNotFound, errState } from "../errors.ts";
import type { CheckpointParams, ProcessState } from "./state.ts";

export class DeletedState implements ProcessState {
  readonly name = "deleted";

  start(): Promise<void> {
    return Promise.reject(errState("cannot start a deleted process"));
  }

  delete(): Promise<void> {
    return Promise.reject(errNotFound("cannot delete a deleted process"));
  }

  kill(_signal: number, _all: boolean): Promise<void> {
    return Promise.reject(errNotFound("cannot kill a deleted process"));
  }

  pause(): Promise<void> {
    return Promise.reject(errState("cannot pause a deleted process"));
  }

  resume(): Promise<void> {
    return Promise.reject(errState("cannot resume a deleted process"));
  }

  update(_: Record<string, unknown>): Promise<void> {
    return Promise.reject(errState("cannot update a deleted process"));
  }

  checkpoint(_: CheckpointParams): Promise<void> {
    return Promise.reject(errState("cannot checkpoint a deleted process"));
  }

  checkExec(): void {
    throw errState("cannot exec in a deleted state");
  }

  setExited(_status: number, _at: Date): void {}
}
