/**
 * paused: the container's cgroup is frozen. Resume thaws it; signals are queued by the kernel until then. If the
 * init exits while paused (killed), the cgroup is thawed so the rest can die.
 *
 * @module
 */
import { log } from "../../log.ts";
import { errState } from "../errors.ts";
import type { CheckpointParams, ProcessState, StateHost } from "./state.ts";

export class PausedState implements ProcessState {
  readonly name = "paused";
  constructor(private readonly host: StateHost) {}

  start(): Promise<void> {
    return Promise.reject(errState("cannot start a paused process"));
  }

  delete(): Promise<void> {
    return Promise.reject(errState("cannot delete a paused process"));
  }

  kill(signal: number, all: boolean): Promise<void> {
    return this.host.runKill(signal, all);
  }

  pause(): Promise<void> {
    return Promise.reject(errState("cannot pause a paused container"));
  }

  async resume(): Promise<void> {
    await this.host.runResume();
    this.host.transition(this, this.host.states.running(this.host));
  }

  update(resources: Record<string, unknown>): Promise<void> {
    return this.host.runUpdate(resources);
  }

  checkpoint(params: CheckpointParams): Promise<void> {
    return this.host.runCheckpoint(params);
  }

  checkExec(): void {
    throw errState("cannot exec in a paused state");
  }

  setExited(status: number, at: Date): void {
    this.host.recordExit(status, at);
    this.host.transition(this, this.host.states.stopped(this.host));
    this.host.runResume().catch((err) => log.debug("resume after exit while paused", { error: err }));
  }
}
