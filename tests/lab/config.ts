/**
 * The private containerd's `config.toml` (host-lab.md §3.1): everything under the lab directory, the CRI plugin
 * loaded with the settings this host needs, and the chosen log level; in config version 2 for containerd 1.6/1.7 and
 * in containerd 2.x's own version 3 (containerd-2x-lab.md).
 *
 * @example
 * ```ts
 * import { labConfig } from "./config.ts";
 * await Deno.writeTextFile("/tmp/lab/config.toml", labConfig("/tmp/lab", "info"));
 * ```
 * @module
 */
import { PAUSE_IMAGE } from "./image.ts";
import type { LabSeries } from "./containerd.ts";

/** containerd's log level in the lab. At `debug` containerd also passes `-debug` to every shim. */
export type LabLogLevel = "debug" | "info";

/** Paths of one lab instance, all derived from its directory. */
export interface LabPaths {
  dir: string;
  config: string;
  address: string;
  ttrpcAddress: string;
  debugAddress: string;
  pidFile: string;
  logFile: string;
  /** Byte offset in `logFile` where the running daemon's output starts. */
  logOffsetFile: string;
  lockFile: string;
}

/** Longest unix socket path Linux accepts (sun_path is 108 bytes including the NUL). */
const MAX_SOCKET_PATH = 107;

/** Paths of the lab in `dir` (absolute); throws when its socket paths would be too long for a unix socket. */
export function labPaths(dir: string): LabPaths {
  const paths: LabPaths = {
    dir,
    config: `${dir}/config.toml`,
    address: `${dir}/containerd.sock`,
    ttrpcAddress: `${dir}/containerd.sock.ttrpc`,
    debugAddress: `${dir}/containerd-debug.sock`,
    pidFile: `${dir}/containerd.pid`,
    logFile: `${dir}/logs/containerd.log`,
    logOffsetFile: `${dir}/logs/containerd.log.offset`,
    lockFile: `${dir}/lab.lock`,
  };
  for (const s of [paths.address, paths.ttrpcAddress, paths.debugAddress]) {
    if (new TextEncoder().encode(s).length > MAX_SOCKET_PATH) {
      throw new Error(`lab directory ${dir} is too deep: socket path ${s} exceeds ${MAX_SOCKET_PATH} bytes`);
    }
  }
  return paths;
}

/** The shim that the `deno-path` and `deno-abs` CRI handlers name by path: `<repo>/dist/containerd-shim-deno-v2`. */
export const DIST_SHIM_PATH: string = decodeURIComponent(
  new URL("../../dist/containerd-shim-deno-v2", import.meta.url).pathname,
);

/**
 * The CRI runtime handlers the lab registers for our shim (RunPodSandboxRequest.runtime_handler):
 * - `deno`: `runtime_type = "io.containerd.deno.v2"`, resolved through containerd's PATH (our `dist/` first);
 * - `denoPath`: `runtime_type = "io.containerd.runc.v2"` with `runtime_path` = {@linkcode DIST_SHIM_PATH}, so CRI
 *   treats it as runc (runc options) while containerd runs our binary. containerd ≤ 1.6.20 parses `runtime_path` but
 *   never sends it (its client's `WithRuntimePath` does not reach `CreateTaskRequest.runtime_path`), so there the
 *   Go shim runs instead;
 * - `denoAbs`: `runtime_type` = {@linkcode DIST_SHIM_PATH} itself, the by-path form that works on 1.6 too (containerd
 *   accepts an absolute runtime name; CRI sends no options for it);
 * - `denoNode`: like `deno`, plus an `options` table whose `ConfigPath` CRI sends as `runtimeoptions.v1.Options`;
 *   it names {@linkcode nodeGroupingConfigPath}, a shim config with one server per node.
 */
export const CRI_HANDLERS = {
  deno: "deno",
  denoPath: "deno-path",
  denoAbs: "deno-abs",
  denoNode: "deno-node",
  denoWrapped: "deno-wrapped",
} as const;

/**
 * The runc wrapper the `deno-wrapped` handler names as `BinaryName` (runc's Options, which CRI passes for the runc
 * runtime type): written by its user, see {@linkcode RUNC_WRAPPER_SCRIPT}.
 */
export function runcWrapperPath(dir: string): string {
  return `${dir}/runc-wrapper`;
}

/**
 * A wrapper in the style of those that read the bundle's `./config.json` (as containerd's Go shim runs runc in the
 * bundle directory): it refuses to run without one, and logs each call's working directory and subcommand to
 * `<wrapper>.log`.
 */
export const RUNC_WRAPPER_SCRIPT = `#!/bin/sh
log="$0.log"
cmd=""
for a in "$@"; do
  case "$a" in create|start|exec|kill|delete|state|pause|resume|update|ps|events|checkpoint|restore) cmd="$a"; break ;; esac
done
if [ ! -f ./config.json ]; then
  echo "missing $PWD $cmd" >> "$log"
  echo "runc-wrapper: no ./config.json in $PWD" >&2
  exit 99
fi
echo "ok $PWD $cmd" >> "$log"
exec runc "$@"
`;

/** Our shim's config file that the `deno-node` handler points at; its content is {@linkcode NODE_GROUPING_CONFIG}. */
export function nodeGroupingConfigPath(dir: string): string {
  return `${dir}/shim-config-node.json`;
}

/** The text of {@linkcode nodeGroupingConfigPath} (the lab's user writes it before using `deno-node`). */
export const NODE_GROUPING_CONFIG = '{"grouping":"node"}\n';

/** TOML basic string. */
function q(s: string): string {
  return JSON.stringify(s); // JSON string escapes are valid TOML basic-string escapes
}

/** The config file text for the lab in `dir`, in the shape `series`' containerd reads. */
export function labConfig(dir: string, level: LabLogLevel, series: LabSeries = "1.6"): string {
  return series === "2" ? labConfigV3(dir, level) : labConfigV2(dir, level, series);
}

/** The top of both shapes: paths, sockets, log level. */
function common(dir: string, level: LabLogLevel): string {
  const p = labPaths(dir);
  return `root = ${q(`${dir}/root`)}
state = ${q(`${dir}/state`)}
oom_score = 0
# aufs (no modprobe), btrfs & zfs (root is ext4) and devmapper (not configured) report skip/error: harmless.
disabled_plugins = []

[grpc]
  address = ${q(p.address)}
  uid = 0
  gid = 0

[ttrpc]
  address = ${q(p.ttrpcAddress)}
  uid = 0
  gid = 0

[debug]
  address = ${q(p.debugAddress)}
  level = ${q(level)}
  format = "text"
`;
}

/** NRI (1.7+) listens on the host-wide /var/run/nri/nri.sock when enabled; a second lab would collide with it. */
const NO_NRI = `
  [plugins."io.containerd.nri.v1.nri"]
    disable = true`;

/** containerd 1.6 and 1.7: config version 2, one CRI plugin section. */
function labConfigV2(dir: string, level: LabLogLevel, series: LabSeries): string {
  return `# Private containerd ${series} instance of containerd-shim-deno's test lab (written by tests/lab; do not edit)
version = 2
${common(dir, level)}
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = ${q(`${dir}/opt`)}
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    # root lacks CAP_SYS_RESOURCE here, so a sandbox's oom_score_adj=-998 would be refused: clamp it instead.
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    sandbox_image = ${q(PAUSE_IMAGE)}
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = ${q(`${dir}/cni/bin`)}
      conf_dir = ${q(`${dir}/cni/net.d`)}
${runtimes(dir, `plugins."io.containerd.grpc.v1.cri".containerd.runtimes`)}${series === "1.7" ? NO_NRI : ""}
  [plugins."io.containerd.runtime.v2.task"]
    platforms = ["linux/amd64"]
`;
}

/**
 * containerd 2.x: config version 3, where the CRI plugin is split into `io.containerd.cri.v1.runtime` (runtimes,
 * CNI, restrict_oom_score_adj), `io.containerd.cri.v1.images` (the sandbox image is a pinned image) and
 * `io.containerd.grpc.v1.cri` (only the gRPC/streaming server); checked against `containerd config default` of 2.1.9.
 */
function labConfigV3(dir: string, level: LabLogLevel): string {
  return `# Private containerd 2.x instance of containerd-shim-deno's test lab (written by tests/lab; do not edit)
version = 3
${common(dir, level)}
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = ${q(`${dir}/opt`)}
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = ${q(PAUSE_IMAGE)}
  [plugins."io.containerd.cri.v1.runtime"]
    # root lacks CAP_SYS_RESOURCE here, so a sandbox's oom_score_adj=-998 would be refused: clamp it instead.
    restrict_oom_score_adj = true
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = [${q(`${dir}/cni/bin`)}]
      conf_dir = ${q(`${dir}/cni/net.d`)}
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
${runtimes(dir, `plugins."io.containerd.cri.v1.runtime".containerd.runtimes`)}${NO_NRI}
  [plugins."io.containerd.runtime.v2.task"]
    platforms = ["linux/amd64"]
`;
}

/** The CRI runtime handlers (the same in both shapes), as tables under `prefix`. */
function runtimes(dir: string, prefix: string): string {
  return `    # CRI runtime handlers. A runtimes table replaces CRI's built-in map, so the default handler (runc, the Go shim)
    # is restated; without it the CRI plugin fails to load ("no corresponding runtime configured … runc").
    [${prefix}.runc]
      runtime_type = "io.containerd.runc.v2"
    # Our shim, five ways (see CRI_HANDLERS).
    [${prefix}.${CRI_HANDLERS.deno}]
      runtime_type = "io.containerd.deno.v2"
    [${prefix}.${CRI_HANDLERS.denoPath}]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = ${q(DIST_SHIM_PATH)}
    [${prefix}.${CRI_HANDLERS.denoAbs}]
      runtime_type = ${q(DIST_SHIM_PATH)}
    [${prefix}.${CRI_HANDLERS.denoNode}]
      runtime_type = "io.containerd.deno.v2"
      [${prefix}.${CRI_HANDLERS.denoNode}.options]
        ConfigPath = ${q(nodeGroupingConfigPath(dir))}
    # The runtime_path form with a runc wrapper (containerd 1.6 ignores runtime_path and runs the Go shim here).
    [${prefix}.${CRI_HANDLERS.denoWrapped}]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = ${q(DIST_SHIM_PATH)}
      [${prefix}.${CRI_HANDLERS.denoWrapped}.options]
        BinaryName = ${q(runcWrapperPath(dir))}`;
}
