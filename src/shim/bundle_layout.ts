/**
 * Where the bundle flavour's files live under its library directory (`dist/lib`, or `<prefix>/lib/containerd-shim-deno`
 * once installed): the runtime, the chunks of `main.js`, the server's bundle, the bundles of the commands containerd
 * runs per container, and V8's code cache. A module without imports: `start` (through build_id.ts) and the server read
 * it.
 *
 * @example
 * ```ts
 * import { bundleLibDir, bundleMainPath } from "./bundle_layout.ts";
 * const lib = bundleLibDir("/opt/shim/lib/js/start/start.js"); // "/opt/shim/lib"
 * console.log(bundleMainPath(lib!)); // "/opt/shim/lib/js/main.js"
 * ```
 * @module
 */

/**
 * Inside the library directory: the runtime, the bundle's chunks, and the V8 code cache. The runtime's file name
 * starts with `containerd-shim` so that the kernel names every shim process that (comm keeps the first 15 bytes),
 * with no `prctl` through FFI at each process' start.
 */
export const RUNTIME_FILE = "containerd-shim-deno-runtime";
/**
 * The main bundle is split into chunks (`deno bundle --code-splitting`): `-v`, `install` and `check` load what they
 * need. Beside it are the bundles of the server and of the per-container commands, each in a directory of its own.
 */
export const BUNDLE_DIR = "js";
export const BUNDLE_FILE = `${BUNDLE_DIR}/main.js`;
export const CACHE_DIR = "cache";

/**
 * The commands containerd runs once per container, each also bundled on its own (`js/<command>/<command>.js`, one
 * file with everything it imports statically; what it loads lazily comes from chunks beside it, with copies of their
 * own of what they share with it: tools/build.ts, inlineStaticImports): the launcher runs that file when the command
 * line ends with the command's name. Every module file a fresh process loads costs it time (~1 ms each, measured):
 * `delete` and `start` load one file this way instead of main.js's 11 and 14.
 */
export const COMMAND_BUNDLES = ["start", "delete"] as const;
export type BundledCommand = typeof COMMAND_BUNDLES[number];

/**
 * The server's own bundle, relative to the library directory: one file, nothing split out (`start` spawns the server
 * from it). Every module a process keeps loaded costs it memory for as long as it lives, V8's module records and the
 * runtime's own bookkeeping beside the source: a per-pod server whose code came in ~30 chunks held ~0.4 MiB more
 * private dirty memory, most of it in the malloc heap, than one loading the same code from one file (bench/analysis.md,
 * session 11).
 */
export const SERVER_BUNDLE = "server";
export const SERVER_BUNDLE_FILE = `${BUNDLE_DIR}/${SERVER_BUNDLE}/${SERVER_BUNDLE}.js`;

/** A command's own bundle, relative to the library directory. */
export function commandBundleFile(command: BundledCommand): string {
  return `${BUNDLE_DIR}/${command}/${command}.js`;
}

/**
 * The library directory of the bundle whose entry is `path` (`js/main.js`, the server's or a command's own file);
 * undefined when it is not one (a run from source).
 */
export function bundleLibDir(path: string): string | undefined {
  for (const file of [BUNDLE_FILE, SERVER_BUNDLE_FILE, ...COMMAND_BUNDLES.map(commandBundleFile)]) {
    if (path.endsWith(`/${file}`)) return path.slice(0, -file.length - 1);
  }
  return undefined;
}

/** The main entry (`js/main.js`) of the library directory `libDir`: what names the build. */
export function bundleMainPath(libDir: string): string {
  return `${libDir}/${BUNDLE_FILE}`;
}

/** The server's own bundle in `libDir` (see {@linkcode SERVER_BUNDLE_FILE}). */
export function bundleServerPath(libDir: string): string {
  return `${libDir}/${SERVER_BUNDLE_FILE}`;
}
