/**
 * Which build of the shim is running, as a short stable string: what keeps a node's (or a namespace's) containers on
 * the server of the build that started them while a newly installed build starts servers of its own.
 *
 * A build is named by the files it runs from: the executable (`deno compile`'s single binary) and the main module
 * (the bundle flavour's `main.js`, also for `start` run from its own bundle beside it; `main.ts` from source).
 * Installing or rebuilding the shim writes new files (a rename into place gives a new inode, an in-place copy a new
 * mtime), so the identity changes with every install, and costs two `statx` calls (libc's, loaded by every caller
 * already: `Deno.statSync` builds four `Date`s, ~0.6 ms the first time in a process), not a read of the files.
 *
 * @example
 * ```ts
 * import { buildId } from "./build_id.ts";
 * console.log(buildId()); // e.g. "3f9c0a12d4e5"
 * ```
 * @module
 */
import { sha256Hex } from "./sha256.ts";
import { bundleLibDir, bundleMainPath } from "./bundle_layout.ts";
import { statPath } from "../sys/libc.ts";

/** The fields of a file's identity that change when the file is replaced. */
function fileIdentity(path: string): string {
  try {
    const s = statPath(path);
    return `${path}:${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return `${path}:missing`;
  }
}

/**
 * The main module's path, when it is a local file (it is for every flavour the shim ships as); for a command's own
 * bundle, the `main.js` of the same build, so that `start` and the servers it hands containers to agree.
 */
function mainModulePath(): string | undefined {
  const url = Deno.mainModule;
  if (!url.startsWith("file://")) return undefined;
  const path = decodeURIComponent(new URL(url).pathname);
  const lib = bundleLibDir(path);
  return lib ? bundleMainPath(lib) : path;
}

/** Twelve hex digits naming the running build (stable for the life of the installed files). */
export function buildId(execPath = Deno.execPath(), mainModule = mainModulePath()): string {
  const parts = [fileIdentity(execPath)];
  if (mainModule) parts.push(fileIdentity(mainModule));
  return sha256Hex(parts.join("\n")).slice(0, 12);
}
