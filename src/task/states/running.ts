/**
 * running: the process runs. It can be signalled, paused (through pausing), updated, checkpointed and exec'd into;
 * it cannot be started again or deleted until it exits.
 *
 * @module
 */
import { errState } from "../errors.ts";
import type { CheckpointParams, ProcessState, StateHost } from "./state.ts";

export class RunningState implements ProcessState {
  readonly name = "running";
  constructor(private readonly host: StateHost) {}

  start(): Promise<void> {
    return Promise.reject(errState("cannot start a running process"));
  }

  delete(): Promise<void> {
    return Promise.reject(errState("cannot delete a running process"));
  }

  kill(signal: number, all: boolean): Promise<void> {
    return this.host.runKill(signal, all);
  }

  async pause(): Promise<void> {
    const pausing = this.host.states.pausing(this.host);
    this.host.transition(this, pausing);
    try {
      await this.host.runPause();
    } catch (err) {
      this.host.transition(pausing, this.host.states.running(this.host));
      throw err;
    }
    this.host.transition(pausing, this.host.states.paused(this.host));
  }

  resume(): Promise<void> {
    return Promise.reject(errState("cannot resume a running process"));
  }

  update(resources: Record<string, unknown>): Promise<void> {
    return this.host.runUpdate(resources);
  }

  checkpoint(params: CheckpointParams): Promise<void> {
    return this.host.runCheckpoint(params);
  }

  checkExec(): void {}

  setExited(status: number, at: Date): void {
    this.host.recordExit(status, at);
    this.host.transition(this, this.host.states.stopped(this.host));
  }
}
