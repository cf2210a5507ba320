/** The shim's version, printed by `-v` and reported by Connect and `-info`. */
export const VERSION = "0.1.0";
/** The runtime name containerd users select the shim by. */
export const RUNTIME_NAME = "io.containerd.deno.v2";
