/**
 * File-system helpers for cgroup trees, through libc because Deno refuses any access below /sys without
 * `--allow-all`: reading a cgroup file that may be missing, testing that a directory exists, and the host's hugepage
 * sizes (read once per process). Directories are listed with procfs.ts's `listDirectory`.
 *
 * @example
 * ```ts
 * import { isDirectory, readOptional } from "./fs.ts";
 * isDirectory("/sys/fs/cgroup/memory/default/c1"); // false once the container is deleted
 * readOptional("/sys/fs/cgroup/memory/default/c1/memory.memsw.usage_in_bytes"); // null without swap accounting
 * ```
 * @module
 */

import { S_IFMT } from "../abi.ts";
import { ENODEV, ENOENT, ENOTDIR, ESRCH, isErrno } from "../errno.ts";
import { statPath } from "../libc.ts";
import { listDirectory, readFile } from "../procfs.ts";
import { log } from "../../log.ts";
import { hugePageSizeName } from "./parse.ts";

const S_IFDIR = 0o040000;

/**
 * The content of a cgroup (or /proc) file, or `null` when it does not exist: ENOENT, or ENODEV/ESRCH, which
 * kernfs and procfs return when the cgroup or process goes away between open and read. Other errors throw.
 */
export function readOptional(path: string): string | null {
  try {
    return readFile(path);
  } catch (e) {
    if (isErrno(e, ENOENT, ENODEV, ESRCH)) return null;
    throw e;
  }
}

/** Whether `path` is an existing directory (following symlinks). Errors other than "missing" throw SysError. */
export function isDirectory(path: string): boolean {
  try {
    return (statPath(path).mode & S_IFMT) === S_IFDIR;
  } catch (err) {
    if (isErrno(err, ENOENT, ENOTDIR)) return false;
    throw err;
  }
}

let hugePages: readonly string[] | undefined;

/**
 * The host's hugepage sizes as the kernel names them in hugetlb files ("1GB", "2MB"), sorted by the name of their
 * `/sys/kernel/mm/hugepages` entry as containerd sorts them. Read once: the set is fixed at boot. Empty when the
 * kernel has no hugepage support.
 */
export function hostHugePageSizes(): readonly string[] {
  if (hugePages) return hugePages;
  let entries: string[] = [];
  try {
    entries = listDirectory("/sys/kernel/mm/hugepages");
  } catch (e) {
    // Missing: no hugepage support. Anything else (e.g. FFI scoped so tightly that pointers cannot be read) must not
    // fail every Stats call: report no hugetlb statistics, once, loudly.
    if (!isErrno(e, ENOENT)) log.warn("cannot list hugepage sizes; hugetlb statistics are left out", { error: e });
  }
  hugePages = entries.sort().flatMap((name) => {
    const m = /^hugepages-(\d+)kB$/.exec(name);
    return m ? [hugePageSizeName(Number(m[1]))] : [];
  });
  return hugePages;
}

/** How long a missing cgroup file is not tried again, by default. */
export const MISSING_FILE_RETRY_MS = 60_000;

/**
 * Reads cgroup files, remembering which ones are missing for a while so that steady-state calls only open files
 * that exist, and counting the files read so that "nothing there" can be told from "cgroup gone".
 */
export class FileReader {
  readonly #retryMs: number;
  readonly #missing = new Set<string>();
  #missingSince = 0;
  /** Files read since the last {@linkcode FileReader.begin}. */
  found = 0;

  constructor(retryMs = MISSING_FILE_RETRY_MS) {
    this.#retryMs = retryMs;
  }

  /** Starts one round of reads (one metrics() call). */
  begin(): void {
    this.found = 0;
    const now = performance.now();
    if (this.#missing.size > 0 && now - this.#missingSince >= this.#retryMs) this.#missing.clear();
    if (this.#missing.size === 0) this.#missingSince = now;
  }

  /** The content of `path`, or null when it does not exist (or was recently found missing). */
  read(path: string): string | null {
    if (this.#missing.has(path)) return null;
    const text = readOptional(path);
    if (text === null) this.#missing.add(path);
    else this.found++;
    return text;
  }

  /** Whether `path` was found missing recently. */
  knownMissing(path: string): boolean {
    return this.#missing.has(path);
  }
}
