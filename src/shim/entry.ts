/**
 * Whether a path names a directory entry, without a thrown NotFound in the common case where it does not: the
 * short-lived commands (`start`, `delete`) look for files that are usually absent (the host-wide shim config, runc's
 * state directory after the task's Delete), and in a fresh process a thrown `Deno.errors.NotFound` costs 0.3–0.5 ms
 * more than a directory listing (measured here: a missing file's read 0.38–0.64 ms, listing its directory 0.13 ms).
 *
 * @example
 * ```ts
 * import { entryExists } from "./entry.ts";
 * if (entryExists("/etc/containerd/containerd-shim-deno.json")) { … }
 * ```
 * @module
 */

/**
 * True when the directory holding `path` lists its last component (any kind of entry, a dangling symlink included);
 * false when it does not, or the directory itself is missing. Other errors (permission) are thrown.
 */
export function entryExists(path: string): boolean {
  const slash = path.lastIndexOf("/");
  const dir = slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
  const name = path.slice(slash + 1);
  if (name === "" || name === "." || name === "..") throw new RangeError(`entryExists needs a file name: ${path}`);
  try {
    for (const e of Deno.readDirSync(dir)) if (e.name === name) return true;
    return false;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
