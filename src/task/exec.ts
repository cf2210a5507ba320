/**
 * An exec'd process: registered by Exec, run by Start with `runc exec --detach`, signalled with kill(2) on its pid,
 * and forgotten entirely on Delete (its record, pipes and pid file), so memory stays flat over millions of execs.
 *
 * @module
 */
import type { OciProcess, Runc } from "../runc/mod.ts";
import { ESRCH, SysError } from "../sys/errno.ts";
import { kill } from "../sys/process.ts";
import { errFailedPrecondition, errNotFound, errState, wrapError } from "./errors.ts";
import type { ProcessIO, StdioPaths } from "./io.ts";
import { Process } from "./process.ts";

/** What an exec needs from its container. */
export interface ExecContext {
  containerId: string;
  bundle: string;
  runc: Runc;
  openIO(paths: StdioPaths): Promise<ProcessIO>;
}

export class ExecProcess extends Process {
  constructor(readonly ctx: ExecContext, execId: string, stdio: StdioPaths, readonly spec: OciProcess) {
    super(ctx.containerId, execId, stdio);
  }

  get pidFile(): string {
    return `${this.ctx.bundle}/${this.execId}.pid`;
  }

  async runStart(): Promise<void> {
    this.io = this.adoptIO(
      await this.ctx.openIO(this.stdio).catch((err) => {
        throw wrapError("failed to create exec process I/O", err); // the Go shim's words since containerd 1.7
      }),
    );
    const spec = { ...this.spec, terminal: this.stdio.terminal };
    await this.launch(
      this.io,
      "OCI runtime exec failed",
      (stdio, consoleSocket) =>
        this.ctx.runc.exec(this.ctx.containerId, spec, {
          pidFile: this.pidFile,
          consoleSocket,
          detach: true,
          stdio,
          processDir: this.ctx.bundle,
        }),
    );
  }

  async runDelete(): Promise<void> {
    await this.io?.drained(2000);
    await this.io?.close(); // a logging driver gets its time to finish (BinaryLogger)
    this.io = undefined;
    // Synchronous, like the server's other metadata calls on hot paths: an async one completes through Deno's
    // blocking pool, which a lingering poller does not see (src/sys/poller.ts).
    try {
      Deno.removeSync(this.pidFile);
    } catch { /* gone already */ }
  }

  runKill(signal: number, _all: boolean): Promise<void> {
    if (this.pid === 0) return Promise.reject(errFailedPrecondition("process not created"));
    if (this.exitedAt) return Promise.reject(errNotFound("process already finished"));
    try {
      kill(this.pid, signal);
    } catch (err) {
      if (err instanceof SysError && err.errno === ESRCH) {
        return Promise.reject(errNotFound("process already finished"));
      }
      return Promise.reject(errState(`exec kill error: ${(err as Error).message}`));
    }
    return Promise.resolve();
  }
}
