/**
 * Which build of the shim is running, as a short stable string: what keeps a node's (or a namespace's) containers on
 * the server of the build that started them while a newly installed build starts servers of its own.
 *
 * A build is named by the files it runs from: the executable (`deno compile`'s single binary) and the main module
 * (the bundle flavour's `main.js`; `main.ts` from source). Installing or rebuilding the shim writes new files (a
 * rename into place gives a new inode, an in-place copy a new mtime), so the identity changes with every install,
 * and costs two `stat` calls, not a read of the files.
 *
 * @example
 * ```ts
 * import { buildId } from "./build_id.ts";
 * console.log(buildId()); // e.g. "3f9c0a12d4e5"
 * ```
 * @module
 */
import { sha256Hex } from "./sha256.ts";

/** The fields of a file's identity that change when the file is replaced. */
function fileIdentity(path: string): string {
  try {
    const s = Deno.statSync(path);
    return `${path}:${s.dev}:${s.ino}:${s.size}:${s.mtime?.getTime() ?? 0}`;
  } catch {
    return `${path}:missing`;
  }
}

/** The main module's path, when it is a local file (it is for every flavour the shim ships as). */
function mainModulePath(): string | undefined {
  const url = Deno.mainModule;
  return url.startsWith("file://") ? decodeURIComponent(new URL(url).pathname) : undefined;
}

/** Twelve hex digits naming the running build (stable for the life of the installed files). */
export function buildId(execPath = Deno.execPath(), mainModule = mainModulePath()): string {
  const parts = [fileIdentity(execPath)];
  if (mainModule) parts.push(fileIdentity(mainModule));
  return sha256Hex(parts.join("\n")).slice(0, 12);
}
