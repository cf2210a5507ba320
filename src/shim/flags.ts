/**
 * The shim's command line, as containerd (1.6 … 2.3) writes it, plus the `-socket` flag our `start` hands to the
 * server it spawns.
 *
 * @module
 */
import { FlagError, parseGoFlags } from "../cli/flags.ts";
import { DEFAULT_CONFIG_PATH } from "./config.ts";

/** The program's name in messages. */
export const PROGRAM = "containerd-shim-deno-v2";

/** Appended to every command-line error: where to find out what is accepted. */
export const USAGE_HINT = `Run '${PROGRAM} --help' for usage.`;

/** What `-h`, `--help` and `help` print. */
export function usage(): string {
  return `${PROGRAM}: a containerd runtime v2 shim for runc, written in TypeScript for Deno.
containerd runs it for the runtime io.containerd.deno.v2 (a drop-in for io.containerd.runc.v2).

Usage:
  ${PROGRAM} -namespace NS -address SOCK -publish-binary BIN -id ID [-bundle DIR] [-debug] start|delete
  ${PROGRAM} install [--prefix DIR] [--merge-config FILE]
  ${PROGRAM} check [-address SOCK] [-runc-binary PATH]
  ${PROGRAM} -v | -info | -h

Commands containerd runs (the shim protocol; not meant to be typed):
  start    start the shim server for a container, or reuse the one of its group; prints the server's address
  delete   clean up after a container whose server is gone (works from the bundle alone); prints a DeleteResponse
  (none)   the server itself, spawned by start with -socket; it serves containerd's Task API over ttrpc

Commands for people:
  install  copy the shim to DIR/bin (default /usr/local) and print the containerd configuration for ctr and CRI;
           --merge-config FILE adds the CRI runtime handler "deno" to that containerd config file once
  check    can this machine run containers through the shim? checks libc, the subreaper, runc, cgroups, the
           socket directory, containerd (-address, default /run/containerd/containerd.sock) and the shim config;
           -runc-binary names another runc; exit status 1 when something essential is missing
  -v       print the version (also -version)
  -info    print containerd.types.RuntimeInfo (name, version, runc's OCI features) for containerd 2.x
  -h       print this help (also -help, --help, help)

Flags of start, delete and the server (containerd passes them; NAMESPACE and GRPC_ADDRESS are read from the
environment when the flags are absent, TTRPC_ADDRESS always):
  -namespace NS          containerd namespace of the container
  -address SOCK          containerd's gRPC socket
  -publish-binary BIN    the containerd binary that publishes events (containerd 1.6)
  -id ID                 container id
  -bundle DIR            the container's bundle (delete; otherwise the working directory)
  -socket PATH           the server's socket (set by start)
  -socket-fd N           the server's listening socket, already bound to -socket by start (set by start)
  -spare PATH            where the server waits as a spare once its containers are gone (set by start)
  -spare-ms N            how long it waits there, in milliseconds (set by start)
  -debug                 log at debug level

Configuration: one optional JSON file, the first of: the config_path of CRI's runtime options,
$CONTAINERD_SHIM_DENO_CONFIG, ${DEFAULT_CONFIG_PATH}. A missing file means the defaults;
'${PROGRAM} check' says which file it read.
`;
}

/** What the program prints when run with no arguments at all (the server mode, which needs containerd). */
export function noArgumentsMessage(): string {
  return `${PROGRAM}: no command given. Without one it runs as the shim server, which containerd starts
(through '${PROGRAM} start', with -namespace, -address, -id and -socket); it is not meant to be started by hand.
${USAGE_HINT}
`;
}

/** Every flag the binary accepts. */
export const SHIM_FLAGS = {
  namespace: "string",
  address: "string",
  "publish-binary": "string",
  id: "string",
  bundle: "string",
  socket: "string",
  "socket-fd": "string",
  spare: "string",
  "spare-ms": "string",
  "exec-delete-events": "boolean",
  debug: "boolean",
  v: "boolean",
  version: "boolean",
  info: "boolean",
  h: "boolean",
  help: "boolean",
} as const;

/** The values every subcommand works from. */
export interface ShimArgs {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  socket: string;
  /** The listening socket `start` bound for the server and handed to it as this fd (-1: the server binds `socket`). */
  socketFd: number;
  /** Where to wait as a spare once the group is done ("": exit then; set by start, see spare.ts). */
  spare: string;
  /** How long to wait as a spare (0: not at all). */
  spareMs: number;
  /** The server publishes TaskDelete for deleted execs (set by start from the shim config's `execDeleteEvents`). */
  execDeleteEvents: boolean;
  debug: boolean;
  version: boolean;
  info: boolean;
  /** `-h`, `-help`, `--help` or the action `help`. */
  help: boolean;
  action: string;
  rest: string[];
}

/** A `-socket-fd` or `-spare-ms` value: a non-negative integer. */
function count(flag: string, text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new FlagError(`invalid value ${JSON.stringify(text)} for flag -${flag}: not ${what}`);
  return Number(text);
}

/** Parses argv; environment fallbacks as containerd 1.7+ sets them (NAMESPACE, GRPC_ADDRESS). */
export function parseShimArgs(argv: readonly string[], env: (k: string) => string | undefined): ShimArgs {
  const { flags, args } = parseGoFlags(argv, SHIM_FLAGS);
  return {
    namespace: flags.namespace ?? env("NAMESPACE") ?? "",
    address: flags.address ?? env("GRPC_ADDRESS") ?? "",
    publishBinary: flags["publish-binary"] ?? "",
    id: flags.id ?? "",
    bundle: flags.bundle ?? "",
    socket: flags.socket ?? "",
    socketFd: flags["socket-fd"] === undefined ? -1 : count("socket-fd", flags["socket-fd"], "a fd number"),
    spare: flags.spare ?? "",
    spareMs: flags["spare-ms"] === undefined ? 0 : count("spare-ms", flags["spare-ms"], "a number of milliseconds"),
    execDeleteEvents: flags["exec-delete-events"] ?? false,
    debug: flags.debug ?? false,
    version: (flags.v ?? false) || (flags.version ?? false),
    info: flags.info ?? false,
    help: (flags.h ?? false) || (flags.help ?? false) || args[0] === "help",
    action: args[0] ?? "",
    rest: args.slice(1),
  };
}
