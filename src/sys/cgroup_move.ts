/**
 * Moves a process into a cgroup given as a path relative to the cgroup roots (`Options.shim_cgroup`), as the Go
 * shim does for its server: on cgroup v2 (unified) the one `cgroup.procs`; on v1 every mounted hierarchy that has
 * that path. The cgroup must exist (containerd's caller creates it).
 *
 * @module
 */
import { readFile, writeFile } from "./procfs.ts";

const ROOT = "/sys/fs/cgroup";

/** Whether /sys/fs/cgroup is a pure cgroup v2 mount. */
export function isUnifiedOnly(): boolean {
  try {
    readFile(`${ROOT}/cgroup.controllers`);
    return true;
  } catch {
    return false;
  }
}

/** Writes `pid` into `<hierarchy>/<path>/cgroup.procs`; fails if no hierarchy has the cgroup. */
export function moveToCgroup(pid: number, path: string): void {
  const rel = path.replace(/^\/+/, "");
  if (isUnifiedOnly()) {
    writeFile(`${ROOT}/${rel}/cgroup.procs`, `${pid}\n`);
    return;
  }
  let moved = 0;
  const errors: string[] = [];
  // The mounted v1 hierarchies, as this process sees them ("4:cpu,cpuacct:/…" → /sys/fs/cgroup/cpu,cpuacct);
  // listing /sys/fs/cgroup itself would need --allow-all.
  const hierarchies = readFile("/proc/self/cgroup").split("\n")
    .map((l) => l.split(":")[1] ?? "")
    .filter((h) => h !== "")
    .map((h) => h.startsWith("name=") ? h.slice("name=".length) : h);
  for (const h of hierarchies) {
    const procs = `${ROOT}/${h}/${rel}/cgroup.procs`;
    try {
      writeFile(procs, `${pid}\n`);
      moved++;
    } catch (err) {
      errors.push(`${procs}: ${(err as Error).message}`);
    }
  }
  if (moved === 0) throw new Error(`cannot move pid ${pid} into cgroup ${path}: ${errors.join("; ")}`);
}
