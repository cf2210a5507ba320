/**
 * cgroup v2 (the unified hierarchy): `io.containerd.cgroups.v2.Metrics` from one directory, with the semantics of
 * containerd's cgroups library: cpu.stat in microseconds, memory.stat keys under their own names, `max` limits
 * (memory, swap, pids, hugetlb) as 2^64-1, memory_events only when memory.events exists, one io entry per io.stat
 * line. Like the Go shim, pids, cpu, memory, io and rdma are always present (rdma is never filled: no container
 * runtime sets RDMA limits, and kubelet does not read them).
 *
 * Missing files are skipped and not tried again (see v1.ts).
 *
 * @example
 * ```ts
 * import { V2Cgroup } from "./v2.ts";
 * const cg = new V2Cgroup("/default/c1", "/sys/fs/cgroup/default/c1");
 * const { typeUrl, value } = cg.metrics(); // "io.containerd.cgroups.v2.Metrics", protobuf bytes
 * ```
 * @module
 */

import { cgroupsV2, encodeMessage, type io } from "../../proto/mod.ts";
import { FileReader, hostHugePageSizes, isDirectory, readOptional } from "./fs.ts";
import { forEachKV, kvValue, type U64, u64, U64_MAX, u64OrMax } from "./parse.ts";
import { type Cgroup, type CgroupMetrics, CgroupNotFoundError, type CgroupOptions } from "./types.ts";

type M = io.containerd.cgroups.v2.Metrics.$Properties;
type MemoryStat = io.containerd.cgroups.v2.MemoryStat.$Properties;
type IOEntry = io.containerd.cgroups.v2.IOEntry.$Properties;

const TYPE_URL = "io.containerd.cgroups.v2.Metrics";

/** memory.stat key → MemoryStat field: every key the message has (the kernel's names, camel-cased). */
const MEMORY_STAT: Readonly<Record<string, keyof MemoryStat>> = Object.fromEntries(
  [
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
  ].map((k) => [k, k.replace(/_(\w)/g, (_, c: string) => c.toUpperCase()) as keyof MemoryStat]),
);

/** Single-value memory files → MemoryStat field (`max` = 2^64-1). peak files exist since Linux 5.19 / 6.5. */
const MEMORY_FILES: readonly [string, keyof MemoryStat][] = [
  ["memory.current", "usage"],
  ["memory.max", "usageLimit"],
  ["memory.swap.current", "swapUsage"],
  ["memory.swap.max", "swapLimit"],
  ["memory.peak", "maxUsage"],
  ["memory.swap.peak", "swapMaxUsage"],
];

/** A cgroup on a unified (v2) host; see the module documentation. */
export class V2Cgroup implements Cgroup {
  readonly version = 2 as const;
  readonly path: string;
  /** The cgroup's directory. */
  readonly dir: string;
  readonly #hugePageSizes: readonly string[] | undefined;
  readonly #files: FileReader;

  /** `path` is the cgroup path for reports (`0::<path>`), `dir` its absolute directory. */
  constructor(path: string, dir: string, options: CgroupOptions = {}) {
    this.path = path;
    this.dir = dir;
    this.#hugePageSizes = options.hugePageSizes;
    this.#files = new FileReader(options.missingFileRetryMs);
  }

  /** v2 has every controller's files in the one directory (memory.* only while the controller is enabled). */
  get memoryDir(): string {
    return this.dir;
  }

  exists(): boolean {
    return isDirectory(this.dir);
  }

  oomKillCount(): number {
    const text = readOptional(`${this.dir}/memory.events`);
    const v = text === null ? undefined : kvValue(text, "oom_kill");
    return v === undefined ? 0 : Number(v);
  }

  metrics(): CgroupMetrics {
    this.#files.begin();
    const dir = this.dir;
    const m: M = {
      pids: this.#pids(),
      cpu: {},
      memory: {},
      io: { usage: this.#io() },
      rdma: {},
    };
    const cpu = this.#files.read(`${dir}/cpu.stat`);
    if (cpu !== null) {
      const c = m.cpu!;
      forEachKV(cpu, (k, v) => {
        switch (k) {
          case "usage_usec":
            c.usageUsec = u64(v);
            break;
          case "user_usec":
            c.userUsec = u64(v);
            break;
          case "system_usec":
            c.systemUsec = u64(v);
            break;
          case "nr_periods":
            c.nrPeriods = u64(v);
            break;
          case "nr_throttled":
            c.nrThrottled = u64(v);
            break;
          case "throttled_usec":
            c.throttledUsec = u64(v);
            break;
        }
      });
    }
    const memory = m.memory!;
    const stat = this.#files.read(`${dir}/memory.stat`);
    if (stat !== null) {
      forEachKV(stat, (k, v) => {
        const field = MEMORY_STAT[k];
        if (field) (memory as Record<string, U64>)[field] = u64(v);
      });
    }
    for (const [file, field] of MEMORY_FILES) {
      const text = this.#files.read(`${dir}/${file}`);
      if (text !== null) (memory as Record<string, U64>)[field] = u64OrMax(text, U64_MAX);
    }
    const events = this.#files.read(`${dir}/memory.events`);
    if (events !== null && events.length > 0) {
      const e: io.containerd.cgroups.v2.MemoryEvents.$Properties = {};
      forEachKV(events, (k, v) => {
        if (k === "low") e.low = u64(v);
        else if (k === "high") e.high = u64(v);
        else if (k === "max") e.max = u64(v);
        else if (k === "oom") e.oom = u64(v);
        else if (k === "oom_kill") e.oomKill = u64(v);
      });
      m.memoryEvents = e;
    }
    m.hugetlb = this.#hugetlb();
    if (this.#files.found === 0 && !this.exists()) throw new CgroupNotFoundError(this.path);
    return { typeUrl: TYPE_URL, value: encodeMessage(cgroupsV2.Metrics, m) };
  }

  #pids(): io.containerd.cgroups.v2.PidsStat.$Properties {
    const current = this.#files.read(`${this.dir}/pids.current`);
    const max = this.#files.read(`${this.dir}/pids.max`);
    return {
      current: current === null ? 0 : u64OrMax(current, U64_MAX),
      limit: max === null ? 0 : u64OrMax(max, U64_MAX),
    };
  }

  /** io.stat: "<major>:<minor> rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" per device. */
  #io(): IOEntry[] {
    const text = this.#files.read(`${this.dir}/io.stat`);
    const list: IOEntry[] = [];
    if (text === null) return list;
    for (const line of text.split("\n")) {
      const parts = line.split(" ");
      if (parts.length < 2) continue;
      const mm = /^(\d+):(\d+)$/.exec(parts[0]);
      if (!mm) continue;
      const entry: IOEntry = { major: Number(mm[1]), minor: Number(mm[2]) };
      for (let i = 1; i < parts.length; i++) {
        const eq = parts[i].indexOf("=");
        if (eq < 0) continue;
        const value = parts[i].slice(eq + 1);
        if (!/^\d+$/.test(value)) continue;
        switch (parts[i].slice(0, eq)) {
          case "rbytes":
            entry.rbytes = u64(value);
            break;
          case "wbytes":
            entry.wbytes = u64(value);
            break;
          case "rios":
            entry.rios = u64(value);
            break;
          case "wios":
            entry.wios = u64(value);
            break;
        }
      }
      list.push(entry);
    }
    return list;
  }

  /** hugetlb.<size>.current and .max for each hugepage size of the host (absent without the hugetlb controller). */
  #hugetlb(): io.containerd.cgroups.v2.HugeTlbStat.$Properties[] {
    const list: io.containerd.cgroups.v2.HugeTlbStat.$Properties[] = [];
    for (const size of this.#hugePageSizes ?? hostHugePageSizes()) {
      const current = this.#files.read(`${this.dir}/hugetlb.${size}.current`);
      const max = this.#files.read(`${this.dir}/hugetlb.${size}.max`);
      if (current === null && max === null) continue;
      list.push({
        pagesize: size,
        current: current === null ? 0 : u64OrMax(current, U64_MAX),
        max: max === null ? 0 : u64OrMax(max, U64_MAX),
      });
    }
    return list;
  }
}
