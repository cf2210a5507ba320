/**
 * created: `runc create` (or the exec registration) is done and nothing runs yet. Start runs it; Delete tears it
 * down; Kill signals the waiting init; an exit (e.g. killed before start) makes it stopped.
 *
 * @module
 */
import { errState } from "../errors.ts";
import type { CheckpointParams, ProcessState, StateHost } from "./state.ts";

export class CreatedState implements ProcessState {
  readonly name: "created" | "created-checkpoint" = "created";
  constructor(protected readonly host: StateHost) {}

  async start(): Promise<void> {
    await this.host.runStart();
    this.host.transition(this, this.host.states.running(this.host));
  }

  async delete(): Promise<void> {
    await this.host.runDelete();
    this.host.transition(this, this.host.states.deleted(this.host));
  }

  kill(signal: number, all: boolean): Promise<void> {
    return this.host.runKill(signal, all);
  }

  pause(): Promise<void> {
    return Promise.reject(errState("cannot pause task in created state"));
  }

  resume(): Promise<void> {
    return Promise.reject(errState("cannot resume task in created state"));
  }

  update(resources: Record<string, unknown>): Promise<void> {
    return this.host.runUpdate(resources);
  }

  checkpoint(_: CheckpointParams): Promise<void> {
    return Promise.reject(errState("cannot checkpoint a task in created state"));
  }

  checkExec(): void {}

  setExited(status: number, at: Date): void {
    this.host.recordExit(status, at);
    this.host.transition(this, this.host.states.stopped(this.host));
  }
}
