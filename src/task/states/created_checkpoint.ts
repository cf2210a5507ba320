/**
 * created-checkpoint: created from a checkpoint image. Everything is as in created, except that Start restores it
 * with `runc restore` instead of `runc start`, and nothing may be exec'd into it until it runs.
 *
 * @module
 */
import { errState } from "../errors.ts";
import { CreatedState } from "./created.ts";

export class CreatedCheckpointState extends CreatedState {
  override readonly name = "created-checkpoint";

  override async start(): Promise<void> {
    await this.host.runRestore();
    this.host.transition(this, this.host.states.running(this.host));
  }

  override checkExec(): void {
    throw errState("cannot exec in a created state");
  }
}
