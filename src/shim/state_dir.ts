/**
 * The shim's own state directory: the containerd version cache (containerd_version.ts) and the groups' reservation
 * files (reserve_file.ts). `CONTAINERD_SHIM_DENO_STATE_DIR` names another one (tests); the default is on `/run`, which
 * is a tmpfs on most systems: gone on reboot, like everything it describes.
 *
 * @module
 */

/** Where the state lives unless `CONTAINERD_SHIM_DENO_STATE_DIR` names another directory. */
export const DEFAULT_STATE_DIR = "/run/containerd-shim-deno";

/** The state directory for this process. */
export function stateDir(): string {
  return Deno.env.get("CONTAINERD_SHIM_DENO_STATE_DIR") || DEFAULT_STATE_DIR;
}
