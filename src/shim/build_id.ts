/**
 * Which build of the shim is running, as a short stable string: what keeps a node's (or a namespace's) containers on
 * the server of the build that started them while a newly installed build starts servers of its own.
 *
 * A bundle build names itself: `deno task build` writes its id into its files in place of
 * {@linkcode BUILD_ID_PLACEHOLDER} (a hash of every file it built and of the runtime's version, tools/build.ts), so
 * `start` learns the build with no file access and without loading libc: `start` reusing a node server 6–8% faster,
 * and per pod, where no build id is needed, `start`'s own file no longer carries libc's bindings: 1–2% faster
 * (bench/ab_start.ts, bench/analysis.md, session 18). A copy or a reinstall of the same build is the same build; any
 * change to the code or the runtime makes another.
 *
 * Run from source or as `deno compile`'s single binary (which the build cannot rewrite), a build is named by the
 * files it runs from instead: the executable and the main module (`main.ts` from source). Installing or rebuilding
 * writes new files (a rename into place gives a new inode, an in-place copy a new mtime), so the identity changes with
 * every install; it costs two `statx` calls through libc (`Deno.statSync` builds four `Date`s, ~1 ms the first time
 * in a process), not a read of the files.
 *
 * @example
 * ```ts
 * import { buildId } from "./build_id.ts";
 * console.log(await buildId()); // e.g. "3f9c0a12d4e5"
 * ```
 * @module
 */
import { sha256Hex } from "./sha256.ts";
import { bundleLibDir, bundleMainPath } from "./bundle_layout.ts";

/** What the build replaces with its id in every bundled file (tools/build.ts). */
export const BUILD_ID_PLACEHOLDER = "@@containerd-shim-deno-build-id@@";

/** A build id: twelve hex digits. */
export const BUILD_ID_PATTERN = /^[0-9a-f]{12}$/;

/**
 * The id the build wrote into this file; undefined when it was not rewritten (from source, `deno compile`). In a
 * bundle the placeholder's literal itself holds the id, hence the test of its shape rather than a comparison.
 */
export function stampedBuildId(): string | undefined {
  return BUILD_ID_PATTERN.test(BUILD_ID_PLACEHOLDER) ? BUILD_ID_PLACEHOLDER : undefined;
}

/** The fields of a file's identity that change when the file is replaced. */
function fileIdentity(
  path: string,
  stat: (path: string) => { dev: number; ino: number; size: number; mtimeMs: number },
): string {
  try {
    const s = stat(path);
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

/**
 * Twelve hex digits naming the running build: the build's own id when it wrote one, else the identity of the files
 * (`execPath` and `mainModule`, which tests name).
 */
export async function buildId(execPath?: string, mainModule?: string): Promise<string> {
  const stamped = stampedBuildId();
  if (stamped && execPath === undefined && mainModule === undefined) return stamped;
  const { statPath } = await import("../sys/libc.ts");
  const parts = [fileIdentity(execPath ?? Deno.execPath(), statPath)];
  const main = mainModule ?? mainModulePath();
  if (main) parts.push(fileIdentity(main, statPath));
  return sha256Hex(parts.join("\n")).slice(0, 12);
}
