/**
 * Which containerd runs `start`, for choosing the Task API version to report: 2.x takes version 3 (and then sends a
 * pod's further containers straight to the sandbox's server), 1.7 fails on 3, 1.6 wants a plain address. 1.7's and
 * 2.x's `start` environments look alike (GRPC_ADDRESS, NAMESPACE, MAX_SHIM_VERSION=2 in both), so the answer comes
 * from containerd's own `--version`, asked once per containerd binary and cached in a small file keyed by the
 * binary's device, inode, size and mtime, and for the parent process and `GRPC_ADDRESS`: later starts by the same
 * containerd pay one small read and need no libc. Only a miss there identifies the binary, through libc's statx
 * (`/proc` is closed to Deno's own file calls without `--allow-all`), loaded then.
 *
 * The binary asked is the parent's (`/proc/<ppid>/exe`: the containerd that runs us, even if its file was replaced
 * since), else `-publish-binary`; an answer that is not containerd's (a wrapper, a test harness) is not trusted.
 *
 * @example
 * ```ts
 * import { parseContainerdVersion } from "./containerd_version.ts";
 * parseContainerdVersion("containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7"); // { major: 2, minor: 1 }
 * ```
 * @module
 */
import { stateDir } from "./state_dir.ts";

/** A containerd release, major and minor. */
export interface ContainerdVersion {
  major: number;
  minor: number;
}

const CACHE_FILE = "containerd-versions.json";
/** Entries kept: one per containerd binary, and one per containerd process, seen (the newest). */
const CACHE_ENTRIES = 8;
const PROBE_TIMEOUT_MS = 5000;

/** Parses `containerd --version` output: `containerd <module path> <version> [<revision>]`. */
export function parseContainerdVersion(output: string): ContainerdVersion | undefined {
  const m = /^containerd\s+\S+\s+v?(\d+)\.(\d+)[.\s~+-]/.exec(output.trim() + " ");
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/** Parses BootstrapParams.containerd_version ("v2.3.0", "2.3.0-rc.1"). */
export function parseVersionString(v: string): ContainerdVersion | undefined {
  const m = /^v?(\d+)\.(\d+)/.exec(v.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/** `v` when it is a version as {@linkcode parseContainerdVersion} makes them (a cache file is outside input). */
function validVersion(v: unknown): ContainerdVersion | undefined {
  const o = v as ContainerdVersion | null;
  return o && Number.isInteger(o.major) && Number.isInteger(o.minor) ? { major: o.major, minor: o.minor } : undefined;
}

/**
 * The cache: per binary identity, its `--version` line, when it was asked, and the line parsed (null: not containerd);
 * per parent process ({@linkcode parentKey}), the parsed answer (its `version` is only "major.minor"). The parsed form
 * spares a `start` the regular expression (~0.15 ms a line for the first use in a process); a binary's entry written
 * before it existed is parsed when read, and rewritten.
 */
type Cache = Record<string, { version: string; at: number; parsed?: ContainerdVersion | null }>;

/**
 * The key for "this parent, for the containerd at `grpcAddress`, asking these candidates": the parent's pid, the
 * address and the candidates (`-publish-binary` among them). The pid names one process for as long as that process
 * lives: containerd itself when containerd runs `start`, or a harness or wrapper that runs it. A containerd that is
 * restarted (upgraded, downgraded) gets a new pid; only a pid reused after the kernel's pid counter wrapped, by a
 * containerd of another version on the same address, could find an answer that is not its own. No stat: a
 * `Deno.statSync` costs a fresh process ~0.6 ms (its `Date`s load the time zone).
 */
function parentKey(grpcAddress: string, candidates: string[]): string {
  return `parent:${Deno.ppid}:${grpcAddress}:${candidates.join("|")}`;
}

/**
 * The identity of the file at `path` (symlinks followed), or undefined when it cannot be stat'ed. Through statx, not
 * `Deno.statSync`, which `/proc/<pid>/exe` is closed to without `--allow-all`.
 */
async function fileKey(path: string): Promise<string | undefined> {
  // Only `start` asks (a short-lived command: no call trampolines to compile, libc.ts).
  const { statPath, useCallPointers } = await import("../sys/libc.ts");
  useCallPointers();
  try {
    const st = statPath(path);
    if (!st.isFile) return undefined;
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return undefined;
  }
}

function readCache(file: string): Cache {
  try {
    const raw = JSON.parse(Deno.readTextFileSync(file));
    return raw && typeof raw === "object" && !Array.isArray(raw) ? raw as Cache : {};
  } catch {
    return {};
  }
}

/** Writes the cache atomically (rename), keeping the newest entries; a failure only costs the next start a probe. */
function writeCache(dir: string, file: string, cache: Cache): void {
  const kept = Object.entries(cache).sort((a, b) => b[1].at - a[1].at).slice(0, CACHE_ENTRIES);
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${Deno.pid}`;
    Deno.writeTextFileSync(tmp, JSON.stringify(Object.fromEntries(kept)), { mode: 0o600 });
    Deno.renameSync(tmp, file);
  } catch {
    // read-only or missing /run: no cache, still correct
  }
}

/** Runs `<binary> --version` and returns its first line ("" when it fails or takes too long). */
async function askVersion(binary: string): Promise<string> {
  try {
    const out = await new Deno.Command(binary, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).split("\n")[0] : "";
  } catch {
    return "";
  }
}

/**
 * The version of the containerd running `start`: cached for the parent and `grpcAddress` (`GRPC_ADDRESS`), or by the
 * binary's identity, else asked and cached. `candidates` defaults to the parent's executable then
 * `publishBinary`. Undefined when no candidate answers as containerd.
 */
export async function containerdVersion(
  publishBinary: string | undefined,
  candidates: string[] = [`/proc/${Deno.ppid}/exe`, ...(publishBinary ? [publishBinary] : [])],
  grpcAddress?: string,
): Promise<ContainerdVersion | undefined> {
  const dir = stateDir();
  const file = `${dir}/${CACHE_FILE}`;
  const parent = grpcAddress ? parentKey(grpcAddress, candidates) : undefined;
  if (parent) {
    const hit = readCache(file)[parent];
    if (hit && hit.parsed !== undefined) return validVersion(hit.parsed);
  }
  const { version, definitive } = await byBinary(dir, file, candidates);
  if (parent && definitive) {
    const cache = readCache(file);
    cache[parent] = {
      version: version ? `${version.major}.${version.minor}` : "",
      at: Date.now(),
      parsed: version ?? null,
    };
    writeCache(dir, file, cache);
  }
  return version;
}

/**
 * The version by the candidates' binaries: cached by identity, else asked and cached. Not `definitive` when a probe
 * failed (it is asked again next time).
 */
async function byBinary(
  dir: string,
  file: string,
  candidates: string[],
): Promise<{ version?: ContainerdVersion; definitive: boolean }> {
  let definitive = true;
  let cache: Cache | undefined;
  for (const path of candidates) {
    const key = await fileKey(path);
    if (!key) continue;
    cache ??= readCache(file);
    const hit = cache[key];
    if (hit) {
      if (hit.parsed === undefined) {
        // An entry from before the parsed form: parsed once more, and kept parsed.
        hit.parsed = parseContainerdVersion(hit.version) ?? null;
        writeCache(dir, file, cache);
      }
      const v = validVersion(hit.parsed);
      if (v) return { version: v, definitive };
      continue; // cached as "not containerd"
    }
    const line = await askVersion(path);
    const v = parseContainerdVersion(line);
    if (line) {
      // A failed or slow probe is not remembered: the next start asks again.
      cache[key] = { version: line, at: Date.now(), parsed: v ?? null };
      writeCache(dir, file, cache);
    } else definitive = false;
    if (v) return { version: v, definitive };
  }
  return { definitive };
}
