/**
 * The runc wrapper's public face: a thin, typed client over the runc CLI ({@linkcode Runc}), its error type and the
 * predicates that classify runc's messages, and the `--pid-file` reader.
 *
 * @example
 * ```ts
 * import { isNotExist, Runc } from "./mod.ts";
 * const runc = new Runc({ root: "/run/containerd/runc/default", log: "/run/b/log.json" });
 * try {
 *   await runc.delete("c1");
 * } catch (err) {
 *   if (!isNotExist(err)) throw err; // already gone is fine, as in the Go shim
 * }
 * ```
 * @module
 */

export {
  type CallOptions,
  type CgroupsMode,
  type CheckpointOptions,
  type Child,
  type CreateOptions,
  type CriuOptions,
  type ExecOptions,
  type LinuxResources,
  type OciProcess,
  readPidFile,
  type RestoreOptions,
  Runc,
  type RuncConfig,
  type RuncFeatures,
  type RuncState,
  type RuncStatus,
  type RuncVersion,
  type Spawn,
  type Stdio,
  type StdioMode,
} from "./runc.ts";
export {
  isAlreadyExists,
  isCriuError,
  isNotExist,
  isNotRunning,
  isPaused,
  isRuncError,
  isUnknownCommand,
  RuncError,
  type RuncErrorInit,
} from "./errors.ts";
