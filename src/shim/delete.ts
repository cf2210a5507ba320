/**
 * `containerd-shim-deno-v2 … -bundle <dir> delete`: containerd's cleanup after every task and after a server died.
 * It must work with the server gone: everything comes from the bundle (`options.json`, `init.pid`). It prints only
 * a protobuf `DeleteResponse` (exit status 137 and now, as the Go shim reports) on stdout; warnings go to stderr,
 * which containerd logs as "cleanup warnings".
 *
 * When the server is dead (containerd runs this after a server died, e.g. killed with -9), its socket file would
 * stay in the socket directory: it is removed here if no live server answers on it — never a live server's.
 *
 * @module
 */
import { log } from "../log.ts";
import { isNotExist, readPidFile, Runc } from "../runc/mod.ts";
import { unixListening } from "../sys/unix_socket.ts";
import { addressPath } from "./address.ts";
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

/** The server socket this bundle's container was handed: `address` (our start) or `bootstrap.json` (containerd 2.x). */
export function bundleSocketPath(bundle: string): string | undefined {
  let address = "";
  try {
    address = Deno.readTextFileSync(`${bundle}/address`).trim();
  } catch {
    try {
      const b = JSON.parse(Deno.readTextFileSync(`${bundle}/bootstrap.json`)) as { address?: unknown };
      if (typeof b.address === "string") address = b.address;
    } catch {
      return undefined;
    }
  }
  if (!address.startsWith("unix://")) return undefined;
  return addressPath(address);
}

/**
 * Removes the socket file at `path` when nothing listens on it. The file's identity is checked again right before
 * the unlink: a server that replaced a stale file in between (it probes and replaces dead sockets itself) keeps its
 * own. Returns whether a file was removed.
 */
export function removeDeadSocket(path: string): boolean {
  let before: Deno.FileInfo;
  try {
    before = Deno.lstatSync(path);
  } catch {
    return false;
  }
  if (!before.isSocket || unixListening(path)) return false;
  try {
    const now = Deno.lstatSync(path);
    if (now.ino !== before.ino || now.dev !== before.dev) return false;
    Deno.removeSync(path);
    return true;
  } catch {
    return false;
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
  const socket = bundleSocketPath(bundle);
  if (socket && removeDeadSocket(socket)) log.debug("removed the dead shim server's socket", { socket });
  let pid = 0;
  try {
    pid = await readPidFile(`${bundle}/init.pid`, { attempts: 1 });
  } catch {
    // never created: no pid to report
  }
  return encodeDeleteResponse(pid, DELETE_EXIT_STATUS, new Date());
}
