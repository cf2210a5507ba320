/**
 * A container's init process: created by `runc create` (or restored from a checkpoint), started by `runc start`,
 * signalled with `runc kill`, torn down by `runc delete` plus the rootfs unmount.
 *
 * @module
 */
import { log } from "../log.ts";
import { isNotExist, isNotRunning, type Runc } from "../runc/mod.ts";
import { unmountAll } from "../sys/mount.ts";
import { INIT_PID_FILE, ROOTFS_UNMOUNTED_FILE } from "./bundle_files.ts";
import { errNotFound, errState, wrapError } from "./errors.ts";
import type { ProcessIO, StdioPaths } from "./io.ts";
import { Process } from "./process.ts";
import type { CheckpointParams } from "./states/mod.ts";

/** What an init process needs from its container. */
export interface InitContext {
  id: string;
  bundle: string;
  rootfs: string;
  runc: Runc;
  noPivotRoot: boolean;
  noNewKeyring: boolean;
  criuWorkPath: string;
  openIO(paths: StdioPaths): Promise<ProcessIO>;
}

/** How long Delete waits for output to drain before closing the pipes anyway (the Go shim's bound). */
const DELETE_DRAIN_MS = 2000;

/** Maps runc kill failures to what containerd expects (NotFound makes stops idempotent). */
export function killError(err: unknown): Error {
  if (isNotRunning(err)) return errNotFound("process already finished");
  if (isNotExist(err)) return errNotFound("no such container");
  return errState(`unknown error after kill: ${(err as Error).message}`);
}

export class InitProcess extends Process {
  #restore?: { imagePath: string; parentPath: string };

  constructor(readonly ctx: InitContext, stdio: StdioPaths, checkpoint?: { imagePath: string; parentPath: string }) {
    super(ctx.id, "", stdio, checkpoint ? "created-checkpoint" : "created");
    this.#restore = checkpoint;
  }

  get pidFile(): string {
    return `${this.ctx.bundle}/${INIT_PID_FILE}`;
  }

  /** `runc create` with IO in place before the process exists; sets `pid`. Cleans up after itself on failure. */
  async create(): Promise<void> {
    const { runc, id, bundle } = this.ctx;
    this.io = this.adoptIO(
      await this.ctx.openIO(this.stdio).catch((err) => {
        throw wrapError("failed to create init process I/O", err);
      }),
    );
    if (this.#restore) return; // restored on Start
    await this.launch(this.io, "OCI runtime create failed", (stdio, consoleSocket) =>
      runc.create(id, {
        bundle,
        pidFile: this.pidFile,
        consoleSocket,
        noPivot: this.ctx.noPivotRoot,
        noNewKeyring: this.ctx.noNewKeyring,
        stdio,
      }));
  }

  runStart(): Promise<void> {
    return this.ctx.runc.start(this.ctx.id).catch((err) => {
      throw wrapError("OCI runtime start failed", err);
    });
  }

  override async runRestore(): Promise<void> {
    const restore = this.#restore;
    if (!restore || !this.io) throw errState("container was not created from a checkpoint");
    const { runc, id, bundle } = this.ctx;
    await this.launch(this.io, "OCI runtime restore failed", (stdio, consoleSocket) =>
      runc.restore(id, {
        bundle,
        imagePath: restore.imagePath,
        workPath: this.ctx.criuWorkPath || undefined,
        pidFile: this.pidFile,
        consoleSocket,
        detach: true,
        noPivot: this.ctx.noPivotRoot,
        noSubreaper: true,
        stdio,
      }));
  }

  async runDelete(): Promise<void> {
    await this.io?.drained(DELETE_DRAIN_MS);
    let failure: Error | undefined;
    try {
      await this.ctx.runc.delete(this.ctx.id);
    } catch (err) {
      // Gone already (e.g. after a checkpoint with exit): nothing of runc's left to remove.
      if (!isNotExist(err)) failure = wrapError("failed to delete task", err);
    }
    await this.io?.close(); // a logging driver gets its time to finish (BinaryLogger)
    try {
      await unmountAll(this.ctx.rootfs);
      // Tells the `delete` command containerd runs next that there is nothing left to unmount (bundle_files.ts).
      // Synchronous: an async write completes through Deno's blocking pool, unseen by a lingering poller.
      try {
        Deno.writeFileSync(`${this.ctx.bundle}/${ROOTFS_UNMOUNTED_FILE}`, new Uint8Array());
      } catch (err) {
        log.debug("cannot mark the rootfs unmounted", { id: this.ctx.id, error: err });
      }
    } catch (err) {
      log.warn("failed to cleanup rootfs mount", { id: this.ctx.id, error: err });
      failure ??= wrapError("failed rootfs umount", err);
    }
    if (failure) throw failure;
  }

  runKill(signal: number, all: boolean): Promise<void> {
    return this.ctx.runc.kill(this.ctx.id, signal, { all }).catch((err) => {
      throw killError(err);
    });
  }

  override runPause(): Promise<void> {
    return this.ctx.runc.pause(this.ctx.id).catch((err) => {
      throw wrapError("OCI runtime pause failed", err);
    });
  }

  override runResume(): Promise<void> {
    return this.ctx.runc.resume(this.ctx.id).catch((err) => {
      throw wrapError("OCI runtime resume failed", err);
    });
  }

  override runUpdate(resources: Record<string, unknown>): Promise<void> {
    return this.ctx.runc.update(this.ctx.id, resources).catch((err) => {
      throw wrapError("OCI runtime update failed", err);
    });
  }

  override async runCheckpoint(p: CheckpointParams): Promise<void> {
    const work = p.workPath || this.ctx.criuWorkPath || `${this.ctx.bundle}/criu-work`;
    try {
      await this.ctx.runc.checkpoint(this.ctx.id, {
        imagePath: p.imagePath,
        workPath: work,
        parentPath: p.parentPath || undefined,
        exit: p.exit,
        openTcp: p.openTcp,
        externalUnixSockets: p.externalUnixSockets,
        terminal: p.terminal,
        fileLocks: p.fileLocks,
        emptyNamespaces: p.emptyNamespaces,
        cgroupsMode: p.cgroupsMode,
      });
    } catch (err) {
      // Keep CRIU's own log where containerd users look for it.
      const dumpLog = `${this.ctx.bundle}/criu-dump.log`;
      await Deno.copyFile(`${work}/dump.log`, dumpLog).catch(() => {});
      throw wrapError(`checkpoint failed (criu log: ${dumpLog})`, err);
    } finally {
      if (!p.workPath && !this.ctx.criuWorkPath) await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  }
}
