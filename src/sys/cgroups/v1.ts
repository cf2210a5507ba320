/**
 * cgroup v1 (one hierarchy per controller): `io.containerd.cgroups.v1.Metrics` from the pids, cpu, cpuacct, memory,
 * blkio and hugetlb controllers, with the field meanings and units of containerd's cgroups library (what the Go shim
 * sends and `ctr task metrics` prints): CPU times in nanoseconds (cpuacct.stat's USER_HZ ticks converted), memory in
 * bytes, `pids.max` of `max` as 0, blkio from the CFQ `*_recursive` files or else the `throttle.*` ones.
 *
 * Controllers and files that do not exist are skipped; a file once found missing is not tried again (its absence
 * is a property of the kernel and its configuration, e.g. no swap accounting), so a steady-state call only opens
 * files that exist.
 *
 * @example
 * ```ts
 * import { V1Cgroup } from "./v1.ts";
 * const cg = new V1Cgroup("/default/c1", { memory: "/sys/fs/cgroup/memory/default/c1" });
 * const { typeUrl, value } = cg.metrics(); // "io.containerd.cgroups.v1.Metrics", protobuf bytes
 * ```
 * @module
 */

import { cgroupsV1, encodeMessage, type io } from "../../proto/mod.ts";
import { FileReader, hostHugePageSizes, isDirectory, readOptional } from "./fs.ts";
import { forEachKV, kvValue, type U64, u64, u64OrMax } from "./parse.ts";
import { type Cgroup, type CgroupMetrics, CgroupNotFoundError, type CgroupOptions } from "./types.ts";

type M = io.containerd.cgroups.v1.Metrics.$Properties;
type MemoryStat = io.containerd.cgroups.v1.MemoryStat.$Properties;
type MemoryEntry = io.containerd.cgroups.v1.MemoryEntry.$Properties;
type BlkIOStat = io.containerd.cgroups.v1.BlkIOStat.$Properties;
type BlkIOEntry = io.containerd.cgroups.v1.BlkIOEntry.$Properties;

/** The v1 controllers that have statistics. */
export const V1_STAT_CONTROLLERS = ["pids", "cpu", "cpuacct", "memory", "blkio", "hugetlb"] as const;
/** A v1 controller that has statistics. */
export type V1Controller = typeof V1_STAT_CONTROLLERS[number];
/** Absolute directory of the cgroup in each controller's hierarchy. */
export type V1Dirs = Partial<Record<V1Controller, string>>;

const TYPE_URL = "io.containerd.cgroups.v1.Metrics";
/** cpuacct.stat counts USER_HZ ticks, which is 100 on every Linux ABI (containerd hard-codes it too). */
const NS_PER_TICK = 1_000_000_000 / 100;

/** memory.stat key → MemoryStat field. */
const MEMORY_STAT: Readonly<Record<string, keyof MemoryStat>> = {
  cache: "cache",
  rss: "rss",
  rss_huge: "rssHuge",
  mapped_file: "mappedFile",
  dirty: "dirty",
  writeback: "writeback",
  pgpgin: "pgPgIn",
  pgpgout: "pgPgOut",
  pgfault: "pgFault",
  pgmajfault: "pgMajFault",
  inactive_anon: "inactiveAnon",
  active_anon: "activeAnon",
  inactive_file: "inactiveFile",
  active_file: "activeFile",
  unevictable: "unevictable",
  hierarchical_memory_limit: "hierarchicalMemoryLimit",
  hierarchical_memsw_limit: "hierarchicalSwapLimit",
  total_cache: "totalCache",
  total_rss: "totalRss",
  total_rss_huge: "totalRssHuge",
  total_mapped_file: "totalMappedFile",
  total_dirty: "totalDirty",
  total_writeback: "totalWriteback",
  total_pgpgin: "totalPgPgIn",
  total_pgpgout: "totalPgPgOut",
  total_pgfault: "totalPgFault",
  total_pgmajfault: "totalPgMajFault",
  total_inactive_anon: "totalInactiveAnon",
  total_active_anon: "totalActiveAnon",
  total_inactive_file: "totalInactiveFile",
  total_active_file: "totalActiveFile",
  total_unevictable: "totalUnevictable",
};

/** memory.<module>.<file> → MemoryStat entry and MemoryEntry field, in containerd's order. */
const MEMORY_ENTRIES: readonly ["usage" | "swap" | "kernel" | "kernelTcp", string][] = [
  ["usage", "memory."],
  ["swap", "memory.memsw."],
  ["kernel", "memory.kmem."],
  ["kernelTcp", "memory.kmem.tcp."],
];
const MEMORY_ENTRY_FILES: readonly [keyof MemoryEntry, string][] = [
  ["usage", "usage_in_bytes"],
  ["max", "max_usage_in_bytes"],
  ["failcnt", "failcnt"],
  ["limit", "limit_in_bytes"],
];

/** CFQ statistics files (blkio.<name>) → BlkIOStat list, in containerd's order. */
const BLKIO_CFQ: readonly [string, keyof BlkIOStat][] = [
  ["sectors_recursive", "sectorsRecursive"],
  ["io_service_bytes_recursive", "ioServiceBytesRecursive"],
  ["io_serviced_recursive", "ioServicedRecursive"],
  ["io_queued_recursive", "ioQueuedRecursive"],
  ["io_service_time_recursive", "ioServiceTimeRecursive"],
  ["io_wait_time_recursive", "ioWaitTimeRecursive"],
  ["io_merged_recursive", "ioMergedRecursive"],
  ["time_recursive", "ioTimeRecursive"],
];
/** The fallback when no device uses CFQ (any modern multi-queue kernel): the throttle layer's counters. */
const BLKIO_THROTTLE: readonly [string, keyof BlkIOStat][] = [
  ["throttle.io_serviced", "ioServicedRecursive"],
  ["throttle.io_service_bytes", "ioServiceBytesRecursive"],
];

/** A cgroup on a v1 host; see the module documentation. */
export class V1Cgroup implements Cgroup {
  readonly version = 1 as const;
  readonly path: string;
  readonly memoryDir: string | null;
  readonly #dirs: V1Dirs;
  readonly #hugePageSizes: readonly string[] | undefined;
  readonly #partitionsFile: string;
  readonly #files: FileReader;

  /** `path` is the cgroup path for reports; `dirs` the absolute directories of the controllers to read. */
  constructor(path: string, dirs: V1Dirs, options: CgroupOptions = {}) {
    this.path = path;
    this.#dirs = { ...dirs };
    this.memoryDir = dirs.memory ?? null;
    this.#hugePageSizes = options.hugePageSizes;
    this.#files = new FileReader(options.missingFileRetryMs);
    this.#partitionsFile = options.partitionsFile ?? "/proc/partitions";
  }

  /** The controller directories this handle reads. */
  get dirs(): Readonly<V1Dirs> {
    return this.#dirs;
  }

  exists(): boolean {
    return Object.values(this.#dirs).some((d) => isDirectory(d));
  }

  oomKillCount(): number {
    if (!this.memoryDir) return 0;
    const text = readOptional(`${this.memoryDir}/memory.oom_control`);
    const v = text === null ? undefined : kvValue(text, "oom_kill");
    return v === undefined ? 0 : Number(v);
  }

  metrics(): CgroupMetrics {
    this.#files.begin();
    const d = this.#dirs;
    // containerd always sends cpu with both parts, even when neither controller is there.
    const m: M = { cpu: { usage: {}, throttling: {} } };
    if (d.pids) this.#pids(d.pids, m);
    if (d.cpu) this.#cpu(d.cpu, m);
    if (d.cpuacct) this.#cpuacct(d.cpuacct, m);
    if (d.memory) this.#memory(d.memory, m);
    if (d.blkio) this.#blkio(d.blkio, m);
    if (d.hugetlb) this.#hugetlb(d.hugetlb, m);
    if (this.#files.found === 0 && !this.exists()) throw new CgroupNotFoundError(this.path);
    return { typeUrl: TYPE_URL, value: encodeMessage(cgroupsV1.Metrics, m) };
  }

  #pids(dir: string, m: M): void {
    const current = this.#files.read(`${dir}/pids.current`);
    const max = this.#files.read(`${dir}/pids.max`);
    if (current === null && max === null) return;
    m.pids = {
      current: current === null ? 0 : u64(current.trim()),
      limit: max === null ? 0 : u64OrMax(max, 0),
    };
  }

  #cpu(dir: string, m: M): void {
    const text = this.#files.read(`${dir}/cpu.stat`);
    if (text === null) return;
    const t = m.cpu!.throttling!;
    forEachKV(text, (k, v) => {
      if (k === "nr_periods") t.periods = u64(v);
      else if (k === "nr_throttled") t.throttledPeriods = u64(v);
      else if (k === "throttled_time") t.throttledTime = u64(v);
    });
  }

  #cpuacct(dir: string, m: M): void {
    const usage = m.cpu!.usage!;
    const total = this.#files.read(`${dir}/cpuacct.usage`);
    if (total !== null) usage.total = u64(total.trim());
    const percpu = this.#files.read(`${dir}/cpuacct.usage_percpu`);
    if (percpu !== null) {
      const values: U64[] = [];
      for (const f of percpu.split(" ")) {
        const s = f.trim();
        if (s) values.push(u64(s));
      }
      usage.perCpu = values;
    }
    const stat = this.#files.read(`${dir}/cpuacct.stat`);
    if (stat !== null) {
      // "user <ticks>\nsystem <ticks>\n"
      forEachKV(stat, (k, v) => {
        if (k === "user") usage.user = Number(v) * NS_PER_TICK;
        else if (k === "system") usage.kernel = Number(v) * NS_PER_TICK;
      });
    }
  }

  #memory(dir: string, m: M): void {
    const memory: MemoryStat = { usage: {}, swap: {}, kernel: {}, kernelTcp: {} };
    let any = false;
    const stat = this.#files.read(`${dir}/memory.stat`);
    if (stat !== null) {
      any = true;
      forEachKV(stat, (k, v) => {
        const field = MEMORY_STAT[k];
        if (field) (memory as Record<string, U64>)[field] = u64(v);
      });
    }
    for (const [entryName, prefix] of MEMORY_ENTRIES) {
      const entry = memory[entryName]!;
      for (const [field, file] of MEMORY_ENTRY_FILES) {
        const text = this.#files.read(`${dir}/${prefix}${file}`);
        if (text === null) continue;
        any = true;
        (entry as Record<string, U64>)[field] = u64(text.trim());
      }
    }
    if (any) m.memory = memory;
    const oom = this.#files.read(`${dir}/memory.oom_control`);
    if (oom !== null) {
      const c: io.containerd.cgroups.v1.MemoryOomControl.$Properties = {};
      forEachKV(oom, (k, v) => {
        if (k === "oom_kill_disable") c.oomKillDisable = u64(v);
        else if (k === "under_oom") c.underOom = u64(v);
        else if (k === "oom_kill") c.oomKill = u64(v);
      });
      m.memoryOomControl = c;
    }
  }

  #blkio(dir: string, m: M): void {
    const blkio: BlkIOStat = {};
    m.blkio = blkio;
    let entries = 0;
    // containerd reads the CFQ files only when the cgroup has them, and falls back to the throttle files when they
    // report nothing (no device uses CFQ).
    if (!this.#files.knownMissing(`${dir}/blkio.io_serviced_recursive`)) {
      for (const [file, field] of BLKIO_CFQ) entries += this.#blkioFile(`${dir}/blkio.${file}`, blkio, field);
    }
    if (entries > 0) return;
    for (const [file, field] of BLKIO_THROTTLE) this.#blkioFile(`${dir}/blkio.${file}`, blkio, field);
  }

  /** Parses one blkio statistics file into `blkio[field]`; returns the number of entries. */
  #blkioFile(path: string, blkio: BlkIOStat, field: keyof BlkIOStat): number {
    const text = this.#files.read(path);
    if (text === null) return 0;
    const list: BlkIOEntry[] = [];
    for (const line of text.split("\n")) {
      // "<major>:<minor> <op> <value>", "<major>:<minor> <value>", or the "Total <value>" summary (skipped).
      const fields = line.split(/[ :]/).filter((f) => f !== "");
      if (fields.length < 3) continue;
      const major = Number(fields[0]), minor = Number(fields[1]);
      if (!Number.isInteger(major) || !Number.isInteger(minor)) continue;
      const hasOp = fields.length === 4;
      list.push({
        device: deviceName(this.#partitionsFile, major, minor),
        major,
        minor,
        op: hasOp ? fields[2] : "",
        value: u64(fields[hasOp ? 3 : 2]),
      });
    }
    (blkio as Record<string, BlkIOEntry[]>)[field] = list;
    return list.length;
  }

  #hugetlb(dir: string, m: M): void {
    const list: io.containerd.cgroups.v1.HugetlbStat.$Properties[] = [];
    for (const size of this.#hugePageSizes ?? hostHugePageSizes()) {
      const usage = this.#files.read(`${dir}/hugetlb.${size}.usage_in_bytes`);
      const max = this.#files.read(`${dir}/hugetlb.${size}.max_usage_in_bytes`);
      const failcnt = this.#files.read(`${dir}/hugetlb.${size}.failcnt`);
      if (usage === null && max === null && failcnt === null) continue;
      list.push({
        pagesize: size,
        usage: usage === null ? 0 : u64(usage.trim()),
        max: max === null ? 0 : u64(max.trim()),
        failcnt: failcnt === null ? 0 : u64(failcnt.trim()),
      });
    }
    m.hugetlb = list;
  }
}

/** `/proc/partitions` as "major:minor" → "/dev/<name>", per file; re-read when an unknown device shows up. */
const partitions = new Map<string, Map<string, string>>();

function deviceName(file: string, major: number, minor: number): string {
  const key = `${major}:${minor}`;
  let devices = partitions.get(file);
  let name = devices?.get(key);
  if (name !== undefined) return name;
  devices = readPartitions(file);
  partitions.set(file, devices);
  name = devices.get(key);
  if (name === undefined) {
    // Not a partition (e.g. a device that came and went): remember that, so every call does not re-read the file.
    devices.set(key, "");
    return "";
  }
  return name;
}

function readPartitions(file: string): Map<string, string> {
  const devices = new Map<string, string>();
  const text = readOptional(file);
  if (text === null) return devices;
  // "major minor  #blocks  name", a blank line, then one line per partition.
  for (const line of text.split("\n").slice(2)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    const key = `${f[0]}:${f[1]}`;
    if (!devices.has(key)) devices.set(key, `/dev/${f[3]}`);
  }
  return devices;
}
