/**
 * pausing: `runc pause` is freezing the cgroup. State reports PAUSING; the process can still be signalled or exit;
 * everything else waits for the pause to settle.
 *
 * @module
 */
import { errState } from "../errors.ts";
import type { CheckpointParams, ProcessState, StateHost } from "./state.ts";

export class PausingState implements ProcessState {
  readonly name = "pausing";
  constructor(private readonly host: StateHost) {}

  start(): Promise<void> {
    return Promise.reject(errState("cannot start a pausing process"));
  }

  delete(): Promise<void> {
    return Promise.reject(errState("cannot delete a pausing process"));
  }

  kill(signal: number, all: boolean): Promise<void> {
    return this.host.runKill(signal, all);
  }

  pause(): Promise<void> {
    return Promise.reject(errState("cannot pause a pausing container"));
  }

  resume(): Promise<void> {
    return Promise.reject(errState("cannot resume a pausing container"));
  }

  update(_: Record<string, unknown>): Promise<void> {
    return Promise.reject(errState("cannot update a pausing container"));
  }

  checkpoint(_: CheckpointParams): Promise<void> {
    return Promise.reject(errState("cannot checkpoint a pausing container"));
  }

  checkExec(): void {
    throw errState("cannot exec in a pausing state");
  }

  setExited(status: number, at: Date): void {
    this.host.recordExit(status, at);
    this.host.transition(this, this.host.states.stopped(this.host));
  }
}
