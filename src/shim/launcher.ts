/**
 * The bundle flavour's launcher: a two-line `/bin/sh` script that runs the bundled shim with the Deno runtime placed
 * beside it, under the shim's permission flags. `deno task build` writes it into `dist/`; `install` writes it into
 * the install prefix. Absolute paths only: containerd runs the shim with a container's bundle as cwd.
 *
 * @module
 */
import { shimRunFlags } from "../permissions.ts";

/** The executable name containerd resolves runtime `io.containerd.deno.v2` to. */
export const SHIM_BINARY = "containerd-shim-deno-v2";
/**
 * Inside the library directory: the runtime, the bundle's chunks, and the V8 code cache. The runtime's file name
 * starts with `containerd-shim` so that the kernel names every shim process that (comm keeps the first 15 bytes),
 * with no `prctl` through FFI at each process' start.
 */
export const RUNTIME_FILE = "containerd-shim-deno-runtime";
/**
 * The bundle is split into chunks (`deno bundle --code-splitting`): `start`, `delete` and `-v` load a few KB of
 * their own and never parse the server's code (protobuf codecs, ttrpc, the Task service), which lives in chunks that
 * only the server imports.
 */
export const BUNDLE_DIR = "js";
export const BUNDLE_FILE = `${BUNDLE_DIR}/main.js`;
export const CACHE_DIR = "cache";

/**
 * The launcher's environment (the server `start` re-spawns inherits it). A fixed `DENO_DIR` keeps V8's code cache
 * usable whatever HOME containerd runs with: `-v` of the bundle takes ~28 ms with it, ~39 ms without a cache.
 */
export function launcherEnv(libDir: string): Record<string, string> {
  return { DENO_DIR: `${libDir}/${CACHE_DIR}`, DENO_NO_UPDATE_CHECK: "1" };
}

/**
 * The environment `start` adds for the server it spawns from the bundle in `libDir`: V8 code cache of its own, since
 * the server runs under other V8 flags than the commands (src/permissions.ts, COMMAND_V8_FLAGS) and V8 rejects a cache
 * written under other flags: sharing one, each kind would keep replacing the other's entries.
 */
export function serverEnv(libDir: string): Record<string, string> {
  return { DENO_DIR: `${libDir}/${CACHE_DIR}/server` };
}

/** The library directory of the bundle whose entry is `mainPath`; undefined when it is not one (a run from source). */
export function bundleLibDir(mainPath: string): string | undefined {
  return mainPath.endsWith(`/${BUNDLE_FILE}`) ? mainPath.slice(0, -BUNDLE_FILE.length - 1) : undefined;
}

/** Quotes a word for `/bin/sh` when it contains anything but safe characters. */
function shQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The launcher script for a library directory holding the runtime, the bundle and the cache. */
export function launcherScript(libDir: string): string {
  const env = Object.entries(launcherEnv(libDir)).map(([k, v]) => `${k}=${shQuote(v)}`);
  const argv = [`${libDir}/${RUNTIME_FILE}`, "run", ...shimRunFlags("command"), `${libDir}/${BUNDLE_FILE}`].map(
    shQuote,
  );
  return `#!/bin/sh\n${env.join(" ")} exec ${argv.join(" ")} "$@"\n`;
}
