/**
 * stopped: the process exited; its status is kept until Delete. Signals find nothing ("process already finished",
 * NotFound — what CRI and Docker rely on for idempotent stops).
 *
 * @module
 */
import { errNotFound, errState } from "../errors.ts";
import type { CheckpointParams, ProcessState, StateHost } from "./state.ts";

export class StoppedState implements ProcessState {
  readonly name = "stopped";
  constructor(private readonly host: StateHost) {}

  start(): Promise<void> {
    return Promise.reject(errState("cannot start a stopped process"));
  }

  async delete(): Promise<void> {
    await this.host.runDelete();
    this.host.transition(this, this.host.states.deleted(this.host));
  }

  /**
   * With `all` the runtime is asked, as the Go shim does: `runc kill --all` of a stopped container succeeds (nothing
   * is left to signal), so stopping a container whose init already exited is not an error.
   */
  kill(signal: number, all: boolean): Promise<void> {
    if (all) return this.host.runKill(signal, true);
    return Promise.reject(errNotFound("process already finished"));
  }

  pause(): Promise<void> {
    return Promise.reject(errState("cannot pause a stopped container"));
  }

  resume(): Promise<void> {
    return Promise.reject(errState("cannot resume a stopped container"));
  }

  update(_: Record<string, unknown>): Promise<void> {
    return Promise.reject(errState("cannot update a stopped container"));
  }

  checkpoint(_: CheckpointParams): Promise<void> {
    return Promise.reject(errState("cannot checkpoint a stopped container"));
  }

  checkExec(): void {
    throw errState("cannot exec in a stopped state");
  }

  setExited(_status: number, _at: Date): void {}
}
