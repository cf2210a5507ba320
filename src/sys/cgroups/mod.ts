/**
 * A container's cgroup as containerd's Go shim sees it: loaded once from `/proc/<init pid>/cgroup` at create, then
 * asked for `Stats` metrics (`io.containerd.cgroups.v1.Metrics` or `.v2.Metrics`, ready for a `google.protobuf.Any`),
 * for its OOM kill count (CRI's OOMKilled check before TaskExit) and watched for OOM events (TaskOOM).
 *
 * The hierarchy is v2 only when `/sys/fs/cgroup` itself is a cgroup2 mount (it has `cgroup.controllers`); on hybrid
 * hosts (v1 controllers plus an empty cgroup2 at `/sys/fs/cgroup/unified`) the v1 controllers are used, as
 * containerd does. v1 controller directories come from `/proc/self/mountinfo`, so combined mounts (`cpu,cpuacct`)
 * and cgroup namespaces resolve as they do for containerd.
 *
 * All reads go through libc (Deno refuses /proc and /sys without `--allow-all`) and are synchronous: cgroup files
 * are generated in memory, tiny, and never block.
 *
 * @example
 * ```ts
 * import { CgroupNotFoundError, loadCgroup, watchOom } from "./mod.ts";
 * const cg = loadCgroup(initPid);
 * const stop = watchOom(cg, () => console.log("OOM in", cg.path));
 * try {
 *   const { typeUrl, value } = cg.metrics(); // StatsResponse{stats: Any{type_url: typeUrl, value}}
 * } catch (e) {
 *   if (e instanceof CgroupNotFoundError) console.log("NotFound: cgroup does not exist");
 * }
 * stop();
 * ```
 * @module
 */

import { ENOENT, ESRCH, isErrno } from "../errno.ts";
import { readFile } from "../procfs.ts";
import { isDirectory, readOptional } from "./fs.ts";
import { type Cgroup, CgroupNotFoundError, type CgroupOptions } from "./types.ts";
import { V1_STAT_CONTROLLERS, V1Cgroup, type V1Controller, type V1Dirs } from "./v1.ts";
import { V2Cgroup } from "./v2.ts";

export {
  type Cgroup,
  type CgroupMetrics,
  CgroupNotFoundError,
  type CgroupOptions,
  type MetricsTypeUrl,
} from "./types.ts";
export { OOM_POLL_INTERVAL_MS, watchOom } from "./oom.ts";
export { V1Cgroup, type V1Controller, type V1Dirs } from "./v1.ts";
export { V2Cgroup } from "./v2.ts";

/** Where the cgroup file systems are mounted. */
export const CGROUP_ROOT = "/sys/fs/cgroup";

let unified: boolean | undefined;

/** Whether the host uses the unified hierarchy only (`/sys/fs/cgroup` is cgroup2). Checked once per process. */
export function isUnifiedHost(): boolean {
  unified ??= readOptional(`${CGROUP_ROOT}/cgroup.controllers`) !== null;
  return unified;
}

/**
 * The cgroup of process `pid` (normally a container's init). Throws {@linkcode CgroupNotFoundError} when the cgroup
 * directory does not exist, and SysError ENOENT/ESRCH when the process does not.
 */
export function loadCgroup(pid: number, options: CgroupOptions = {}): Cgroup {
  const text = readFile(`/proc/${pid}/cgroup`);
  const entries = parseProcCgroup(text);
  if (isUnifiedHost()) {
    const path = entries.get("");
    if (path === undefined) throw new Error(`/proc/${pid}/cgroup has no cgroup v2 entry`);
    const cg = new V2Cgroup(path, joinPath(CGROUP_ROOT, path), options);
    if (!cg.exists()) throw new CgroupNotFoundError(path);
    return cg;
  }
  const mounts = v1Mounts();
  const dirs: V1Dirs = {};
  let reportPath: string | undefined;
  for (const controller of V1_STAT_CONTROLLERS) {
    const path = entries.get(controller);
    const mount = mounts.get(controller);
    if (path === undefined || !mount) continue;
    const rel = relativeTo(path, mount.root);
    if (rel === null) continue; // outside the part of the hierarchy this mount shows
    const dir = joinPath(mount.point, rel);
    if (!isDirectory(dir)) continue;
    dirs[controller] = dir;
    if (controller === "memory" || reportPath === undefined) reportPath = path;
  }
  const fallbackPath = entries.get("memory") ?? entries.values().next().value ?? "/";
  if (reportPath === undefined) throw new CgroupNotFoundError(fallbackPath);
  return new V1Cgroup(reportPath, dirs, options);
}

/**
 * A cgroup at explicit paths, for tests against fixture trees and for callers that know the layout. `paths` is a
 * string for v2 (the cgroup's path below the unified mount `root`), or a v1 map controller → path below
 * `<root>/<controller>`. v1 controllers whose directory does not exist are left out. Throws
 * {@linkcode CgroupNotFoundError} when nothing exists.
 */
export function loadCgroupAt(
  root: string,
  paths: string | Partial<Record<V1Controller, string>>,
  options: CgroupOptions = {},
): Cgroup {
  if (typeof paths === "string") {
    const cg = new V2Cgroup(paths, joinPath(root, paths), options);
    if (!cg.exists()) throw new CgroupNotFoundError(paths);
    return cg;
  }
  const dirs: V1Dirs = {};
  let reportPath: string | undefined;
  for (const controller of V1_STAT_CONTROLLERS) {
    const path = paths[controller];
    if (path === undefined) continue;
    const dir = joinPath(`${root}/${controller}`, path);
    if (!isDirectory(dir)) continue;
    dirs[controller] = dir;
    if (controller === "memory" || reportPath === undefined) reportPath = path;
  }
  if (reportPath === undefined) throw new CgroupNotFoundError(paths.memory ?? Object.values(paths)[0] ?? "/");
  return new V1Cgroup(reportPath, dirs, options);
}

/**
 * `/proc/<pid>/cgroup` as controller → path: `"hierarchy-id:controller,controller:path"` lines, where the v2 line
 * has an empty controller list (key `""`) and named hierarchies keep their `name=` prefix.
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const a = line.indexOf(":");
    const b = a < 0 ? -1 : line.indexOf(":", a + 1);
    if (b < 0) continue;
    const path = line.slice(b + 1);
    const controllers = line.slice(a + 1, b);
    if (controllers === "") out.set("", path);
    else for (const c of controllers.split(",")) out.set(c, path);
  }
  return out;
}

/** A v1 mount: where it is mounted, and which directory of the hierarchy it shows there. */
interface V1Mount {
  point: string;
  root: string;
}

let mountCache: Map<string, V1Mount> | undefined;

/** v1 controller → its mount, from `/proc/self/mountinfo` (read once: cgroup mounts do not move under a shim). */
function v1Mounts(): Map<string, V1Mount> {
  if (mountCache) return mountCache;
  const map = new Map<string, V1Mount>();
  let text: string;
  try {
    text = readFile("/proc/self/mountinfo");
  } catch (e) {
    if (!isErrno(e, ENOENT, ESRCH)) throw e;
    text = "";
  }
  for (const [controller, mount] of parseMountinfo(text)) if (!map.has(controller)) map.set(controller, mount);
  if (map.size === 0) {
    // No mountinfo (unusual sandboxes): containerd's default layout.
    for (const c of V1_STAT_CONTROLLERS) map.set(c, { point: `${CGROUP_ROOT}/${c}`, root: "/" });
  }
  mountCache = map;
  return map;
}

/** The v1 cgroup mounts of a mountinfo text, as [controller, mount] pairs in mount order. */
export function parseMountinfo(text: string): [string, V1Mount][] {
  const out: [string, V1Mount][] = [];
  for (const line of text.split("\n")) {
    // id parent major:minor root point options [optional...] - fstype source super-options
    const f = line.split(" ");
    const sep = f.indexOf("-", 6);
    if (sep < 0 || f[sep + 1] !== "cgroup" || f.length < sep + 4) continue;
    const mount = { root: unescapeMountinfo(f[3]), point: unescapeMountinfo(f[4]) };
    for (const opt of f[sep + 3].split(",")) out.push([opt, mount]);
  }
  return out;
}

/** mountinfo escapes space, tab, newline and backslash as octal (`\040`). */
function unescapeMountinfo(s: string): string {
  return s.includes("\\") ? s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) : s;
}

/** `path` relative to `root` ("/a/b" in "/a" → "/b"), or null when it is not below it. */
function relativeTo(path: string, root: string): string | null {
  if (root === "/") return path;
  if (path === root) return "/";
  return path.startsWith(`${root}/`) ? path.slice(root.length) : null;
}

/** `dir` + cgroup path, without a doubled or trailing slash ("/sys/fs/cgroup" + "/" → "/sys/fs/cgroup"). */
function joinPath(dir: string, path: string): string {
  const rel = path.replace(/^\/+|\/+$/g, "");
  return rel === "" ? dir : `${dir}/${rel}`;
}
