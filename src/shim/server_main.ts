/**
 * The server's own entry: `start` spawns the server from it (as `js/server/server.js`, bundled as one file with nothing
 * split out; bundle_layout.ts, SERVER_BUNDLE_FILE). It does what main.ts does for a server command line (no command,
 * `-socket`); anything else it is given goes to main.ts.
 *
 * @module
 */
import "./node_globals.ts"; // must stay first: keeps protobufjs from booting Deno's Node compatibility layer
import { exitWith, handles, runMain, SERVER_EARLY_LIBC } from "./command_main.ts";
import { parseShimArgs } from "./flags.ts";
import { serve } from "./serve.ts";
import { bindLibc } from "../sys/libc.ts";

await exitWith(async () => {
  const a = parseShimArgs(Deno.args, (k) => Deno.env.get(k));
  if (!handles(a, "") || !a.socket) return await runMain(import.meta.url);
  try {
    bindLibc(SERVER_EARLY_LIBC, { direct: true }); // opens libc with what serving calls most, in one dlopen
  } catch { /* bound again, and reported, where it is first used */ }
  return await serve(a);
});
