/**
 * containerd-shim-deno-v2: a containerd runtime v2 shim for runc, written for Deno.
 *
 * containerd calls it as `containerd-shim-deno-v2 -namespace <ns> -address <addr> -publish-binary <bin> -id <id>
 * [-debug] start|delete`; `start` spawns this same program as the server (no action, `-socket <path>`). The bundle
 * flavour runs `start` and `delete` from bundles of their own (src/shim/start_main.ts, src/shim/delete_main.ts), which
 * hand everything else here.
 *
 * @module
 */
import "./src/shim/node_globals.ts"; // must stay first: keeps protobufjs from booting Deno's Node compatibility layer
import { FlagError } from "./src/cli/flags.ts";
import { exitWith, print, SERVER_EARLY_LIBC } from "./src/shim/command_main.ts";
import { noArgumentsMessage, parseShimArgs, usage } from "./src/shim/flags.ts";
import { RUNTIME_NAME, VERSION } from "./src/version.ts";
import type { LibcSymbol } from "./src/sys/libc.ts";

const encoder = new TextEncoder();

/**
 * The subcommands that call libc from their first steps, with the symbols each binds directly: `start` (the
 * reservation exchange with a running server) and the server. Every plain system call goes through `syscall()`, which
 * opening libc binds (src/sys/libc.ts); the server's reads and writes (ttrpc, stdio copies) are hot enough to be
 * bound on their own.
 */
const EARLY_LIBC: Record<string, readonly LibcSymbol[]> = { start: [], "": SERVER_EARLY_LIBC };

/** What ps, top and pgrep show for the shim (comm holds 15 bytes). */
const PROCESS_NAME = "containerd-shim";

/**
 * Binds the early symbols, and names the process `containerd-shim` unless the kernel already did: it names a process
 * after its executable, which is `containerd-shim-deno-v2` when compiled and `lib/containerd-shim-deno-runtime` in the
 * bundle flavour (src/shim/launcher.ts), so only a run from source (`deno run main.ts`) pays for a `prctl`. A failure
 * costs only the name (and the early binding: symbols then bind on first use).
 */
async function prepareProcess(action: string): Promise<void> {
  const exe = Deno.execPath();
  const rename = !exe.slice(exe.lastIndexOf("/") + 1).startsWith(PROCESS_NAME);
  const early = EARLY_LIBC[action];
  if (!rename && !early) return;
  try {
    const { bindLibc } = await import("./src/sys/libc.ts");
    bindLibc(early ?? [], { direct: true }); // opens libc, with these bound in the same dlopen
    if (rename) (await import("./src/sys/process.ts")).setProcessName(PROCESS_NAME);
  } catch { /* without FFI the process keeps the runtime's name */ }
}

async function main(argv: string[]): Promise<number> {
  const a = parseShimArgs(argv, (k) => Deno.env.get(k));
  if (a.help) {
    print(encoder.encode(usage()));
    return 0;
  }
  if (argv.length === 0) {
    Deno.stderr.writeSync(encoder.encode(noArgumentsMessage()));
    return 1;
  }
  // The subcommand's modules load (Deno reads their files on its blocking pool) while libc is being bound.
  const plain = !a.version && !a.info;
  const startModules = plain && a.action === "start"
    ? Promise.all([import("./src/shim/start.ts"), import("./src/shim/bootstrap.ts")])
    : undefined;
  const serveModule = plain && a.action === "" && a.socket ? import("./src/shim/serve.ts") : undefined;
  for (const p of [startModules, serveModule]) p?.catch(() => {}); // a failure is reported where it is awaited
  // `delete` runs after every task and is over in milliseconds; naming it would load FFI, which it mostly needs not.
  if (a.action !== "delete") await prepareProcess(a.action);
  if (a.version) {
    console.log(
      `containerd-shim-deno-v2:\n  Version:  ${VERSION}\n  Runtime:  ${RUNTIME_NAME}\n  Deno:     ${Deno.version.deno}`,
    );
    return 0;
  }
  if (a.info) {
    const { runtimeInfo } = await import("./src/shim/info.ts");
    print(await runtimeInfo(Deno.stdin.readable));
    return 0;
  }
  switch (a.action) {
    case "start": {
      const [{ readStdinSync, start }, { output }] = await startModules!;
      const result = await start(a, readStdinSync(Deno.stdin));
      print(output(result));
      return 0;
    }
    case "delete": {
      const { deleteTask } = await import("./src/shim/delete.ts");
      print(await deleteTask(a));
      return 0;
    }
    case "install": {
      const { install } = await import("./src/shim/install.ts");
      console.log(await install(a.rest));
      return 0;
    }
    case "check": {
      const { report, runChecks } = await import("./src/shim/check.ts");
      const [text, code] = report(await runChecks(a.rest));
      print(encoder.encode(text));
      return code;
    }
    case "": {
      if (!a.socket) {
        Deno.stderr.writeSync(encoder.encode(noArgumentsMessage()));
        return 1;
      }
      const { serve } = await serveModule!;
      return await serve(a);
    }
    default:
      throw new FlagError(
        `unknown command ${JSON.stringify(a.action)} (expected start, delete, install, check or help)`,
      );
  }
}

await exitWith(() => main(Deno.args));
