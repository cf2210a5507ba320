/**
 * Runtime options of a container, persisted in the bundle as `options.json` (the JSON names the Go shim uses, so
 * either shim's `delete` can read the other's) and read back by the `delete` subcommand after a server died.
 * Decoding them from a Create request is in options_any.ts, so that `delete` does not load protobuf codecs.
 *
 * @module
 */

/** The options the shim acts on. */
export interface RuncOptions {
  noPivotRoot: boolean;
  noNewKeyring: boolean;
  shimCgroup: string;
  ioUid: number;
  ioGid: number;
  binaryName: string;
  root: string;
  systemdCgroup: boolean;
  criuImagePath: string;
  criuWorkPath: string;
  /** From CRI's generic options: the shim config file. */
  configPath: string;
}

export const DEFAULT_RUNC_ROOT = "/run/containerd/runc";
export const OPTIONS_FILE = "options.json";

/** All defaults (runc from PATH, root /run/containerd/runc). */
export function defaultOptions(): RuncOptions {
  return {
    noPivotRoot: false,
    noNewKeyring: false,
    shimCgroup: "",
    ioUid: 0,
    ioGid: 0,
    binaryName: "",
    root: "",
    systemdCgroup: false,
    criuImagePath: "",
    criuWorkPath: "",
    configPath: "",
  };
}

/** The JSON written to `<bundle>/options.json`, with Go's field names. */
export function optionsToJson(o: RuncOptions): string {
  const out: Record<string, unknown> = {};
  if (o.noPivotRoot) out.no_pivot_root = true;
  if (o.noNewKeyring) out.no_new_keyring = true;
  if (o.shimCgroup) out.shim_cgroup = o.shimCgroup;
  if (o.ioUid) out.io_uid = o.ioUid;
  if (o.ioGid) out.io_gid = o.ioGid;
  if (o.binaryName) out.binary_name = o.binaryName;
  if (o.root) out.root = o.root;
  if (o.systemdCgroup) out.systemd_cgroup = true;
  if (o.criuImagePath) out.criu_image_path = o.criuImagePath;
  if (o.criuWorkPath) out.criu_work_path = o.criuWorkPath;
  return JSON.stringify(out);
}

/** Parses `options.json`; unknown fields are ignored, wrong types fall back to defaults. */
export function optionsFromJson(text: string): RuncOptions {
  const raw = JSON.parse(text) as Record<string, unknown>;
  const o = defaultOptions();
  const str = (k: string) => typeof raw[k] === "string" ? raw[k] as string : "";
  const num = (k: string) => typeof raw[k] === "number" ? raw[k] as number : 0;
  o.noPivotRoot = raw.no_pivot_root === true;
  o.noNewKeyring = raw.no_new_keyring === true;
  o.shimCgroup = str("shim_cgroup");
  o.ioUid = num("io_uid");
  o.ioGid = num("io_gid");
  o.binaryName = str("binary_name");
  o.root = str("root");
  o.systemdCgroup = raw.systemd_cgroup === true;
  o.criuImagePath = str("criu_image_path");
  o.criuWorkPath = str("criu_work_path");
  return o;
}

/**
 * Reads `<bundle>/options.json`, synchronously (`delete` and the server read it on a request's path); the defaults
 * when it is missing.
 */
export function readOptions(bundle: string): RuncOptions {
  try {
    return optionsFromJson(Deno.readTextFileSync(`${bundle}/${OPTIONS_FILE}`));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return defaultOptions();
    throw err;
  }
}

/** Persists the options (and the `runtime` file naming the runc binary, as the Go shim does). */
export function writeOptions(bundle: string, o: RuncOptions): void {
  // Synchronous: small files in the bundle, on Create's path (see src/runc/log.ts, logSize).
  Deno.writeTextFileSync(`${bundle}/${OPTIONS_FILE}`, optionsToJson(o), { mode: 0o600 });
  Deno.writeTextFileSync(`${bundle}/runtime`, o.binaryName || "runc", { mode: 0o600 });
}

/** runc's `--root` for a namespace. */
export function runcRoot(o: RuncOptions, namespace: string): string {
  return `${o.root || DEFAULT_RUNC_ROOT}/${namespace}`;
}
