/**
 * The shim's command line, as containerd (1.6 … 2.3) writes it, plus the `-socket` flag our `start` hands to the
 * server it spawns.
 *
 * @module
 */
import { parseGoFlags } from "../cli/flags.ts";

/** Every flag the binary accepts. */
export const SHIM_FLAGS = {
  namespace: "string",
  address: "string",
  "publish-binary": "string",
  id: "string",
  bundle: "string",
  socket: "string",
  debug: "boolean",
  v: "boolean",
  version: "boolean",
  info: "boolean",
} as const;

/** The values every subcommand works from. */
export interface ShimArgs {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  socket: string;
  debug: boolean;
  version: boolean;
  info: boolean;
  action: string;
  rest: string[];
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
    debug: flags.debug ?? false,
    version: (flags.v ?? false) || (flags.version ?? false),
    info: flags.info ?? false,
    action: args[0] ?? "",
    rest: args.slice(1),
  };
}
