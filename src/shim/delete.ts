/**
 * `containerd-shim-deno-v2 … -bundle <dir> delete`: containerd's cleanup after every task and after a server died.
 * It must work with the server gone: everything comes from the bundle (`options.json`, `init.pid`). It prints only
 * a protobuf `DeleteResponse` (exit status 137 and now, as the Go shim reports) on stdout; warnings go to stderr,
 * which containerd logs as "cleanup warnings".
 *
 * When the server is dead (containerd runs this after a server died, e.g. killed with -9), its socket file would
 * stay in the socket directory: it is removed here if no live server answers on it — never a live server's.
 *
 * It runs after every task, so it loads only what it needs: runc and the unmount (libc through FFI, whose first use
 * alone costs a few ms) run only when there is something to do — runc's state directory for the id, a `rootfs` that
 * may hold a mount ({@linkcode mightBeMounted}; Deno refuses /proc/self/mountinfo without --allow-all) — and the
 * socket probe only when a socket file is left in place; their modules, and the logger's, are imported only then (the
 * bundle's chunks for them, with libc's tables and the poller, were ~50 KB of every `delete`'s module loading).
 *
 * The bundle is listed once, and only the files it holds are read: which of `options.json`, `init.pid`, `address` and
 * `rootfs` exist depends on how far the task got, and in a fresh process the first thrown NotFound costs ~1 ms (a
 * listing ~0.3 ms). After a normal task Delete the listing also shows the server's mark that `rootfs` holds no mount
 * (src/task/bundle_files.ts), and the mount point is not examined.
 *
 * @module
 */
import { entryExists } from "./entry.ts";
import { defaultOptions, OPTIONS_FILE, readOptions, runcRoot } from "../task/options.ts";
import { INIT_PID_FILE, ROOTFS_UNMOUNTED_FILE } from "../task/bundle_files.ts";
import type { ShimArgs } from "./flags.ts";
import { timestampBytes, WireWriter } from "./wire.ts";

/** SIGKILL's exit status: what containerd records for a task cleaned up this way. */
export const DELETE_EXIT_STATUS = 128 + 9;

/**
 * Encodes containerd.task.v2.DeleteResponse{pid=1, exit_status=2, exited_at=3}, `exitedAtMs` in ms since the epoch (a
 * number, not a Date: a process's first `new Date()` loads the local time zone, ~0.5 ms of `delete`).
 */
export function encodeDeleteResponse(pid: number, exitStatus: number, exitedAtMs: number): Uint8Array {
  return new WireWriter().uint(1, pid).uint(2, exitStatus).bytes(3, timestampBytes(exitedAtMs), true).finish();
}

/** The names in the bundle directory; undefined when it cannot be listed (then every file is simply tried). */
export function listBundle(bundle: string): Set<string> | undefined {
  try {
    return new Set(Array.from(Deno.readDirSync(bundle), (e) => e.name));
  } catch {
    return undefined;
  }
}

/** Whether `name` may be in the bundle: listed, or the listing failed. */
function mayHave(names: Set<string> | undefined, name: string): boolean {
  return names === undefined || names.has(name);
}

/** Whether runc keeps a state directory for container `id` under `root` (true when that cannot be told). */
export function runcStateDirExists(root: string, id: string): boolean {
  try {
    // After the task's Delete it is gone: looked up without a thrown NotFound (entry.ts).
    return entryExists(`${root}/${id}`) && Deno.lstatSync(`${root}/${id}`).isDirectory;
  } catch (err) {
    return !(err instanceof Deno.errors.NotFound);
  }
}

/**
 * The server socket this bundle's container was handed: `address` (our start) or `bootstrap.json` (containerd 2.x).
 * `names` is the bundle's listing ({@linkcode listBundle}).
 */
export function bundleSocketPath(bundle: string, names = listBundle(bundle)): string | undefined {
  const address = handedAddress(bundle, names);
  // address.ts's addressPath, without loading that module's sha256 into every `delete`.
  return address?.startsWith("unix://") ? address.slice("unix://".length) : undefined;
}

/** The address in `address`, else in `bootstrap.json`; undefined when neither file has one. */
function handedAddress(bundle: string, names: Set<string> | undefined): string | undefined {
  if (mayHave(names, "address")) {
    try {
      return Deno.readTextFileSync(`${bundle}/address`).trim();
    } catch { /* unreadable: containerd 2.x's file may still say */ }
  }
  if (!mayHave(names, "bootstrap.json")) return undefined;
  try {
    const b = JSON.parse(Deno.readTextFileSync(`${bundle}/bootstrap.json`)) as { address?: unknown };
    return typeof b.address === "string" ? b.address : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes the socket file at `path` when nothing listens on it. The file's identity is checked again right before
 * the unlink: a server that replaced a stale file in between (it probes and replaces dead sockets itself) keeps its
 * own. Returns whether a file was removed.
 */
export async function removeDeadSocket(path: string): Promise<boolean> {
  let before: Deno.FileInfo;
  try {
    // A server that exited removed its socket: usually nothing is there (no thrown NotFound for that, entry.ts).
    if (!entryExists(path)) return false;
    before = Deno.lstatSync(path);
  } catch {
    return false;
  }
  if (!before.isSocket) return false;
  const { unixListening } = await withLibc(import("../sys/unix_socket.ts"));
  if (unixListening(path)) return false;
  try {
    const now = Deno.lstatSync(path);
    if (now.ino !== before.ino || now.dev !== before.dev) return false;
    Deno.removeSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * A module that calls libc, loaded with libc set to be called through addresses, as a short-lived command should
 * (src/sys/libc.ts, useCallPointers). Only here: importing libc.ts where every `delete` runs would load it (~12 KB)
 * into each, and a `delete` after a normal task Delete calls no libc at all.
 */
async function withLibc<T>(load: Promise<T>): Promise<T> {
  const [libc, mod] = await Promise.all([import("../sys/libc.ts"), load]);
  libc.useCallPointers();
  return mod;
}

/** A log line on stderr (containerd logs warnings as cleanup warnings); the logger loads only when there is one. */
async function note(level: "warn" | "debug", msg: string, fields: Record<string, unknown>): Promise<void> {
  (await import("../log.ts")).log[level](msg, fields);
}

/** Runs the cleanup and returns the bytes to print. */
export async function deleteTask(a: ShimArgs): Promise<Uint8Array> {
  if (!a.namespace) throw new Error("shim namespace cannot be empty");
  if (!a.id) throw new Error("shim id cannot be empty");
  const bundle = a.bundle || Deno.cwd();
  const names = listBundle(bundle);
  const opts = mayHave(names, OPTIONS_FILE) ? readOptions(bundle) : defaultOptions();
  const root = runcRoot(opts, a.namespace);
  // After a normal task Delete the server already ran `runc delete` and runc's state directory is gone; `runc delete
  // --force` would then only find nothing (runc removes a leftover directory and succeeds on --force, which is why
  // the check is on the directory). Skipping it saves starting runc on every container's teardown.
  if (runcStateDirExists(root, a.id)) {
    const { isNotExist, Runc } = await withLibc(import("../runc/mod.ts"));
    const runc = new Runc({
      binary: opts.binaryName || "runc",
      root,
      log: `${bundle}/log.json`,
      systemdCgroup: opts.systemdCgroup,
      cwd: bundle,
    });
    try {
      await runc.delete(a.id, { force: true });
    } catch (err) {
      if (!isNotExist(err)) await note("warn", "failed to remove runc container", { id: a.id, error: err });
    }
  }
  const rootfs = `${bundle}/rootfs`;
  // The server's Delete leaves a mark once nothing is mounted there; only a listing that shows it is trusted.
  const unmounted = names?.has(ROOTFS_UNMOUNTED_FILE) ?? false;
  if (!unmounted && mayHave(names, "rootfs") && mightBeMounted(rootfs, bundle)) {
    try {
      const { unmountAll } = await withLibc(import("../sys/mount.ts"));
      await unmountAll(rootfs);
    } catch (err) {
      await note("warn", "failed to cleanup rootfs mount", { id: a.id, error: err });
    }
  }
  const socket = bundleSocketPath(bundle, names);
  if (socket && await removeDeadSocket(socket)) {
    await note("debug", "removed the dead shim server's socket", { socket });
  }
  const pid = mayHave(names, INIT_PID_FILE) ? readInitPid(`${bundle}/${INIT_PID_FILE}`) : 0;
  return encodeDeleteResponse(pid, DELETE_EXIT_STATUS, Date.now());
}

/** The init process's pid from `init.pid`, or 0 when it was never written (or is not a pid). */
export function readInitPid(path: string): number {
  try {
    const text = Deno.readTextFileSync(path).trim();
    return /^[1-9][0-9]*$/.test(text) ? Number(text) : 0;
  } catch {
    return 0;
  }
}

/**
 * False when nothing can be mounted on `target` (the bundle's `rootfs`): it does not exist, or it is an empty directory
 * on the bundle's own device — the mount point containerd made, after the server's Delete unmounted it. A mounted
 * root filesystem is on another device (overlay) or, bound from the same one, not empty. True otherwise, and whenever
 * that cannot be told; the unmount itself (through FFI, whose first use alone costs a few ms) then decides.
 */
export function mightBeMounted(target: string, parent: string): boolean {
  try {
    const st = Deno.lstatSync(target);
    if (!st.isDirectory) return true;
    if (st.dev !== Deno.statSync(parent).dev) return true;
    for (const _ of Deno.readDirSync(target)) return true;
    return false;
  } catch (err) {
    return !(err instanceof Deno.errors.NotFound);
  }
}
