/**
 * `start`'s own entry: the bundle flavour's launcher runs it (as `js/start/start.js`, one file; the server's boot
 * path loads from chunks of its own only when no server reserved a place: tools/build.ts, inlineStaticImports) when
 * containerd's command line ends with `start`. Anything else it is given goes to main.ts. It does what main.ts does
 * for `start`, except naming the process: the launcher's runtime file is already named `containerd-shim-…`
 * (bundle_layout.ts, RUNTIME_FILE), so the kernel names the process so.
 *
 * @module
 */
import { exitWith, handles, print, runMain } from "./command_main.ts";
import { output } from "./bootstrap.ts";
import { parseShimArgs } from "./flags.ts";
import { readStdinSync, start } from "./start.ts";

await exitWith(async () => {
  const a = parseShimArgs(Deno.args, (k) => Deno.env.get(k));
  if (!handles(a, "start")) return await runMain(import.meta.url);
  print(output(await start(a, readStdinSync(Deno.stdin))));
  return 0;
});
