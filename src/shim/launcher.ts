/**
 * The bundle flavour's launcher: a short `/bin/sh` script that runs the bundled shim with the Deno runtime placed
 * beside it, under the shim's permission flags. `deno task build` writes it into `dist/`; `install` writes it into
 * the install prefix. Absolute paths only: containerd runs the shim with a container's bundle as cwd.
 *
 * containerd ends the command line of `start` and `delete` with the command's name; for those the script runs the
 * command's own bundle (bundle_layout.ts, COMMAND_BUNDLES), otherwise `js/main.js`. A command bundle hands
 * anything it does not handle itself (`-v start`, `-id start` …) to `main.js`, so the choice never changes what runs.
 *
 * @module
 */
import { shimRunFlags } from "../permissions.ts";
import {
  BUNDLE_FILE,
  type BundledCommand,
  CACHE_DIR,
  COMMAND_BUNDLES,
  commandBundleFile,
  RUNTIME_FILE,
  SERVER_BUNDLE_FILE,
} from "./bundle_layout.ts";

/** The executable name containerd resolves runtime `io.containerd.deno.v2` to. */
export const SHIM_BINARY = "containerd-shim-deno-v2";
export { BUNDLE_DIR, BUNDLE_FILE, bundleLibDir, CACHE_DIR, COMMAND_BUNDLES, RUNTIME_FILE } from "./bundle_layout.ts";

/**
 * The launcher's environment (the server `start` re-spawns inherits it). A fixed `DENO_DIR` keeps V8's code cache
 * usable whatever HOME containerd runs with: `-v` of the bundle takes ~28 ms with it, ~39 ms without a cache.
 */
export function launcherEnv(libDir: string): Record<string, string> {
  return { DENO_DIR: `${libDir}/${CACHE_DIR}`, DENO_NO_UPDATE_CHECK: "1" };
}

/**
 * The environment `start` adds for the server it spawns from the bundle in `libDir`: a `DENO_DIR` of its own. The
 * server reads no V8 code cache (src/permissions.ts, SERVER_RUN_FLAGS), but Deno still keeps its module-analysis
 * databases there; apart, the commands' databases, which every `start` and `delete` reads, hold only their entries.
 */
export function serverEnv(libDir: string): Record<string, string> {
  return { DENO_DIR: `${libDir}/${CACHE_DIR}/server` };
}

/** Quotes a word for `/bin/sh` when it contains anything but safe characters. */
function shQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command lines that store V8's code cache for the bundle (main.js, and each command's own bundle) before
 * containerd's first `start`: each prints the version. Deno stores the cache of the modules a process compiled only
 * when its event loop turns, which a `start` reusing a server or a `delete` never lets happen (they run synchronously
 * to `Deno.exit`: ~3 ms more for each of them while no cache exists); `-v start` loads `start`'s bundle, then hands
 * the command line to main.js through a dynamic import, which turns the loop.
 */
export function warmUpCommandLines(commands: readonly BundledCommand[] = COMMAND_BUNDLES): string[][] {
  return [["-v"], ...commands.map((c) => ["-v", c])];
}

/**
 * The command that stores the server's module analysis in its own `DENO_DIR` ({@linkcode serverEnv}) before the
 * first server boots: the server's bundle with `-v` (server_main.ts hands it to main.js, which prints the version),
 * run the way `start` runs a server (start_boot.ts, serverCommand). Without it the first server of a build parses its
 * 200 KB bundle before it can answer.
 */
export function serverWarmUpCommand(libDir: string): { cmd: string; args: string[]; env: Record<string, string> } {
  return {
    cmd: `${libDir}/${RUNTIME_FILE}`,
    args: ["run", ...shimRunFlags("server"), `${libDir}/${SERVER_BUNDLE_FILE}`, "-v"],
    env: { ...launcherEnv(libDir), ...serverEnv(libDir) },
  };
}

/** The shell variable the launcher keeps the script to run in (not exported: the shim never sees it). */
export const ENTRY_VAR = "shim_entry";

/**
 * The launcher script for a library directory holding the runtime, the bundle and the cache. `commands` are the
 * commands whose own bundles the directory holds (all of COMMAND_BUNDLES for a build of main.ts): the script runs a
 * command's file when the last argument names it.
 */
export function launcherScript(libDir: string, commands: readonly BundledCommand[] = COMMAND_BUNDLES): string {
  const env = Object.entries(launcherEnv(libDir)).map(([k, v]) => `${k}=${shQuote(v)}`);
  const run = [`${libDir}/${RUNTIME_FILE}`, "run", ...shimRunFlags("command")].map(shQuote);
  const main = shQuote(`${libDir}/${BUNDLE_FILE}`);
  if (commands.length === 0) return `#!/bin/sh\n${env.join(" ")} exec ${run.join(" ")} ${main} "$@"\n`;
  // `for x do` walks "$@" and leaves the last argument in x (unset without arguments): a builtin loop, no process.
  const cases = commands.map((c) => `${c}) ${ENTRY_VAR}=${shQuote(`${libDir}/${commandBundleFile(c)}`)} ;;`);
  return [
    "#!/bin/sh",
    "for last do :; done",
    `case \${last-} in ${cases.join(" ")} *) ${ENTRY_VAR}=${main} ;; esac`,
    `${env.join(" ")} exec ${run.join(" ")} "$${ENTRY_VAR}" "$@"`,
    "",
  ].join("\n");
}
