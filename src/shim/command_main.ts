/**
 * What the program's entry points share: `main.ts`, the own bundles of `start` and `delete` that the bundle flavour's
 * launcher runs for those commands (bundle_layout.ts, COMMAND_BUNDLES), and the server's, which `start` spawns
 * (server_main.ts). Each entry parses the command line the same way, prints what containerd reads through
 * {@linkcode print}, and ends through {@linkcode exitWith}, so a command answers, fails and exits alike whichever file
 * ran it.
 *
 * @example
 * ```ts
 * import { exitWith, handles, print, runMain } from "./command_main.ts";
 * import { parseShimArgs } from "./flags.ts";
 * await exitWith(async () => {
 *   const a = parseShimArgs(Deno.args, (k) => Deno.env.get(k));
 *   if (!handles(a, "delete")) return await runMain(import.meta.url);
 *   print(new Uint8Array());
 *   return 0;
 * });
 * ```
 * @module
 */
import { FlagError } from "../cli/flags.ts";
import { USAGE_HINT } from "./flags.ts";
import type { ShimArgs } from "./flags.ts";
import type { LibcSymbol } from "../sys/libc.ts";

/**
 * The libc symbols a server binds when it opens libc, in the same `Deno.dlopen` (main.ts and server_main.ts): its
 * reads and writes (ttrpc, stdio copies) are hot enough for bindings of their own instead of going through `syscall()`.
 */
export const SERVER_EARLY_LIBC: readonly LibcSymbol[] = ["read", "write"];

/**
 * Writes every byte: containerd parses what these subcommands print, so a short write would corrupt it. Synchronous:
 * Deno's async write to stdout goes through its blocking pool, a thread round trip at the end of every `start`.
 */
export function print(bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
}

/**
 * Runs `main` and exits with its status. Command-line mistakes are answered like Go's flag package (its wording, exit
 * status 2), plus where to look; any other error is printed on stderr with status 1.
 */
export async function exitWith(main: () => Promise<number>): Promise<never> {
  try {
    Deno.exit(await main());
  } catch (err) {
    const bad = err instanceof FlagError;
    const hint = bad ? `\n${USAGE_HINT}` : "";
    Deno.stderr.writeSync(new TextEncoder().encode(`containerd-shim-deno-v2: ${(err as Error).message}${hint}\n`));
    Deno.exit(bad ? 2 : 1);
  }
}

/** Whether a command's own entry runs this command line itself: the command, with no -h, -v or -info. */
export function handles(a: ShimArgs, command: string): boolean {
  return a.action === command && !a.help && !a.version && !a.info;
}

/**
 * Hands the command line to the program's main entry, which runs it and exits: `js/main.js` beside a command's
 * bundle directory (`js/<command>/`), `main.ts` from source (`src/shim/`). `here` is the caller's `import.meta.url`.
 * The specifier is computed, so the bundler leaves main's code out of the command's file.
 */
export async function runMain(here: string): Promise<number> {
  await import(new URL(here.endsWith(".js") ? "../main.js" : "../../main.ts", here).href);
  // main's own top level exits; reaching this means it did not run.
  throw new Error(`the shim's main entry did not run the command (from ${here})`);
}
