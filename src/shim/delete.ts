/**
 * `containerd-shim-deno-v2 … -bundle <dir> delete`: containerd's cleanup after every task and after a server died.
 * It must work with the server gone: everything comes from the bundle (`options.json`, `init.pid`). It prints only
 * a protobuf `DeleteResponse` (exit status 137 and now, as the Go shim reports) on stdout; warnings go to stderr,
 * which containerd logs as "cleanup warnings".
 *
 * @module
 */
import { log } from "../log.ts";
import { isNotExist, readPidFile, Runc } from "../runc/mod.ts";
import { unmountAll } from "../sys/mount.ts";
import { readOptions, runcRoot } from "../task/options.ts";
import type { ShimArgs } from "./flags.ts";
import { timestampBytes, WireWriter } from "./wire.ts";

/** SIGKILL's exit status: what containerd records for a task cleaned up this way. */
export const DELETE_EXIT_STATUS = 128 + 9;

/** Encodes containerd.task.v2.DeleteResponse{pid=1, exit_status=2, exited_at=3}. */
export function encodeDeleteResponse(pid: number, exitStatus: number, exitedAt: Date): Uint8Array {
  return new WireWriter().uint(1, pid).uint(2, exitStatus).bytes(3, timestampBytes(exitedAt), true).finish();
}

/** Whether runc keeps a state directory for container `id` under `root` (true when that cannot be told). */
export function runcStateDirExists(root: string, id: string): boolean {
  try {
    return Deno.lstatSync(`${root}/${id}`).isDirectory;
  } catch (err) {
    return !(err instanceof Deno.errors.NotFound);
  }
}

/** Runs the cleanup and returns the bytes to print. */
export async function deleteTask(a: ShimArgs): Promise<Uint8Array> {
  if (!a.namespace) throw new Error("shim namespace cannot be empty");
  if (!a.id) throw new Error("shim id cannot be empty");
  const bundle = a.bundle || Deno.cwd();
  const opts = await readOptions(bundle);
  const root = runcRoot(opts, a.namespace);
  const runc = new Runc({
    binary: opts.binaryName || "runc",
    root,
    log: `${bundle}/log.json`,
    systemdCgroup: opts.systemdCgroup,
    cwd: bundle,
  });
  // After a normal task Delete the server already ran `runc delete` and runc's state directory is gone; `runc delete
  // --force` would then only find nothing (runc removes a leftover directory and succeeds on --force, which is why
  // the check is on the directory). Skipping it saves starting runc on every container's teardown.
  if (runcStateDirExists(root, a.id)) {
    try {
      await runc.delete(a.id, { force: true });
    } catch (err) {
      if (!isNotExist(err)) log.warn("failed to remove runc container", { id: a.id, error: err });
    }
  }
  try {
    await unmountAll(`${bundle}/rootfs`);
  } catch (err) {
    log.warn("failed to cleanup rootfs mount", { id: a.id, error: err });
  }
  let pid = 0;
  try {
    pid = await readPidFile(`${bundle}/init.pid`, { attempts: 1 });
  } catch {
    // never created: no pid to report
  }
  return encodeDeleteResponse(pid, DELETE_EXIT_STATUS, new Date());
}
