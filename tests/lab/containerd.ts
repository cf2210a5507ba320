/**
 * Which containerd the lab runs (containerd-2x-lab.md): the system's package (series `1.6`, Debian 12's 1.6.20, the
 * default), or a newer containerd taken from Debian's newer suites without installing it: series `2` from `sid`
 * (whatever sid has, required to be ≥ 2) and series `1.7` from `trixie` (for manual runs). Those are downloaded on
 * first use with a private apt configuration against the mirror the system's own sources name, extracted with
 * `dpkg-deb -x` into a cache directory, and reused afterwards without network. runc stays the system's.
 *
 * Needs apt-get, apt-cache, dpkg-deb and Debian's archive keyring (any Debian or Debian-based system has them) and
 * network access to the mirror, on first use only.
 *
 * The series comes from `$SHIM_LAB_CONTAINERD` (`1.6`, `1.7` or `2`; default `1.6`) or from the caller.
 *
 * @example
 * ```ts
 * import { ensureContainerd, labSeries } from "./containerd.ts";
 * const c = await ensureContainerd(labSeries(), "/tmp/cache");
 * console.log(c.version, c.containerd, c.ctr); // "2.1.9+unknown" ".../x/usr/bin/containerd" ".../x/usr/bin/ctr"
 * ```
 * @module
 */
import { join } from "node:path";
import { runCommand } from "./proc.ts";

/** The containerd series a lab can run. */
export type LabSeries = "1.6" | "1.7" | "2";

/** Every series, in the order reports list them. */
export const LAB_SERIES: readonly LabSeries[] = ["1.6", "2", "1.7"];

/** The environment variable that selects the series. */
export const SERIES_ENV = "SHIM_LAB_CONTAINERD";

/** Where a series' binaries come from: the system, or a Debian suite. */
export type ContainerdSource = "system" | "sid" | "trixie";

/** A containerd the lab can start. */
export interface ContainerdBinaries {
  series: LabSeries;
  /** The version as `containerd --version` reports it (e.g. `1.6.20~ds1`, `2.1.9+unknown`). */
  version: string;
  source: ContainerdSource;
  /** The Debian package version it came from (e.g. `2.1.9+ds1-5`); for the system's, as dpkg knows it, if any. */
  packageVersion: string | null;
  /** Absolute path of the daemon. */
  containerd: string;
  /** Absolute path of the matching `ctr`. */
  ctr: string;
  /** Absolute path of the same release's Go shim, `containerd-shim-runc-v2` (`io.containerd.runc.v2`). */
  goShim: string;
  /** Directory holding this series' `containerd-shim-runc-v2`, to put on the daemon's PATH; null for the system's. */
  binDir: string | null;
}

/** Parses a series name (accepting `2.x`, `2.1`, `1.6.20` style spellings); throws on anything else. */
export function parseSeries(value: string): LabSeries {
  const v = value.trim().toLowerCase();
  if (/^1\.6(\.|$)/.test(v)) return "1.6";
  if (/^1\.7(\.|$)/.test(v)) return "1.7";
  if (/^2(\.|$|x$)/.test(v)) return "2";
  throw new Error(
    `${SERIES_ENV} must be 1.6 (the system's containerd), 2 (Debian sid's) or 1.7 (trixie's), not ${value}`,
  );
}

/** The series `$SHIM_LAB_CONTAINERD` selects; `1.6` when it is unset or empty. */
export function labSeries(): LabSeries {
  const v = Deno.env.get(SERIES_ENV);
  return v ? parseSeries(v) : "1.6";
}

/** The Debian suite a downloaded series comes from. */
export function suiteOf(series: LabSeries): ContainerdSource {
  return series === "2" ? "sid" : series === "1.7" ? "trixie" : "system";
}

/** The version in `containerd --version` output (`containerd <module> <version> [<revision>]`). */
export function parseContainerdVersion(output: string): string | null {
  const m = /^(?:containerd|ctr) \S+ v?(\d+\.\d+\.\d+\S*)/m.exec(output.trim());
  return m ? m[1] : null;
}

/** True when `version` belongs to `series` (`2` means any major version ≥ 2). */
export function versionFits(series: LabSeries, version: string): boolean {
  const m = /^(\d+)\.(\d+)\./.exec(version);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (series === "2") return major >= 2;
  return major === 1 && minor === Number(series.split(".")[1]);
}

async function versionOf(binary: string): Promise<string> {
  const r = await runCommand(binary, ["--version"], { timeoutMs: 15_000 }).catch((e) => {
    throw new Error(`cannot run ${binary} --version: ${e instanceof Error ? e.message : e}`);
  });
  const v = parseContainerdVersion(r.stdout);
  if (r.code !== 0 || !v) throw new Error(`${binary} --version failed (exit ${r.code}): ${r.stdout}${r.stderr}`);
  return v;
}

async function which(cmd: string): Promise<string> {
  for (const d of (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/bin", "/usr/sbin", "/bin", "/sbin"])) {
    if (!d) continue;
    const p = join(d, cmd);
    const st = await Deno.stat(p).catch(() => null);
    if (st?.isFile && (st.mode ?? 0) & 0o111) return p;
  }
  throw new Error(`${cmd} not found on PATH: install containerd (bash scripts/bootstrap.sh does)`);
}

/** What the cache directory records about an extracted download. */
interface CacheRecord {
  series: LabSeries;
  suite: ContainerdSource;
  packageVersion: string;
  version: string;
  downloadedAt: string;
}

/** Paths of one series' download cache. */
export function cachePaths(cacheDir: string) {
  return {
    dir: cacheDir,
    record: join(cacheDir, "containerd.json"),
    lock: join(cacheDir, "download.lock"),
    bin: join(cacheDir, "x/usr/bin"),
  };
}

/**
 * The Debian mirror to download from: `$SHIM_LAB_DEBIAN_MIRROR`, else the first `URIs:` of the system's Debian sources
 * (deb822), else the first one-line `deb` source, else deb.debian.org.
 */
export async function debianMirror(): Promise<string> {
  const override = Deno.env.get("SHIM_LAB_DEBIAN_MIRROR");
  if (override) return override;
  const deb822 = await Deno.readTextFile("/etc/apt/sources.list.d/debian.sources").catch(() => "");
  const uri = /^URIs:\s*(\S+)/m.exec(deb822)?.[1];
  if (uri) return uri;
  const list = await Deno.readTextFile("/etc/apt/sources.list").catch(() => "");
  return /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s/m.exec(list)?.[1] ?? "http://deb.debian.org/debian";
}

async function mustRun(what: string, cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await runCommand(cmd, args, { cwd, timeoutMs: 300_000 }).catch((e) => {
    throw new Error(`${what}: cannot run ${cmd}: ${e instanceof Error ? e.message : e}`);
  });
  if (r.code !== 0) throw new Error(`${what}: ${cmd} ${args.join(" ")} failed (exit ${r.code}):\n${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * Downloads the `containerd` package of `suite` with a private apt configuration (its own sources, lists and cache
 * under `cacheDir/apt`, the system's keyring; nothing of the system's apt state is touched) and extracts it into
 * `cacheDir/x`. Returns the package version.
 */
async function download(series: LabSeries, cacheDir: string): Promise<CacheRecord> {
  const suite = suiteOf(series);
  const apt = join(cacheDir, "apt");
  for (const d of ["lists/partial", "cache/archives/partial", "debs"]) {
    await Deno.mkdir(join(apt, d), { recursive: true });
  }
  const mirror = await debianMirror();
  const keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
  if (!await Deno.stat(keyring).then(() => true, () => false)) {
    throw new Error(`cannot download containerd ${series} from Debian ${suite}: ${keyring} is missing`);
  }
  await Deno.writeTextFile(
    join(apt, `${suite}.sources`),
    `Types: deb\nURIs: ${mirror}\nSuites: ${suite}\nComponents: main\nSigned-By: ${keyring}\n`,
  );
  const opts = [
    `Dir::Etc::sourcelist=${join(apt, `${suite}.sources`)}`,
    "Dir::Etc::sourceparts=/dev/null",
    `Dir::State::Lists=${join(apt, "lists")}`,
    `Dir::Cache=${join(apt, "cache")}`,
    "APT::Sandbox::User=root",
  ].flatMap((o) => ["-o", o]);
  const what = `downloading containerd ${series} from Debian ${suite} (mirror ${mirror})`;
  const update = await runCommand("apt-get", [...opts, "-q", "update"], { timeoutMs: 300_000 });
  // apt-get update may exit 0 when a fetch failed; without the suite's package list the candidate would silently be
  // the system's installed version.
  const lists = [...Deno.readDirSync(join(apt, "lists"))].map((e) => e.name);
  if (!lists.some((n) => n.includes(`_dists_${suite}_`) && n.includes("Packages"))) {
    throw new Error(
      `${what}: could not fetch the package list of Debian ${suite} (no network, or the mirror is unreachable?); ` +
        `set SHIM_LAB_DEBIAN_MIRROR to another mirror. apt-get update said:\n${(update.stdout + update.stderr).trim()}`,
    );
  }
  const policy = await mustRun(what, "apt-cache", [...opts, "policy", "containerd"]);
  // The candidate of the private configuration is the suite's (the system's dpkg status ranks lower: 100 vs 500).
  const candidate = /Candidate:\s*(\S+)/.exec(policy)?.[1];
  if (!candidate || candidate === "(none)") throw new Error(`${what}: ${suite} has no containerd package:\n${policy}`);
  const debs = join(apt, "debs");
  for await (const e of Deno.readDir(debs)) await Deno.remove(join(debs, e.name));
  await mustRun(what, "apt-get", [...opts, "-qq", "download", `containerd=${candidate}`], debs);
  const deb = [...Deno.readDirSync(debs)].find((e) => e.name.endsWith(".deb"))?.name;
  if (!deb) throw new Error(`${what}: apt-get download left no .deb in ${debs}`);
  const tmp = join(cacheDir, "x.tmp");
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await mustRun(what, "dpkg-deb", ["-x", join(debs, deb), tmp]);
  const version = await versionOf(join(tmp, "usr/bin/containerd"));
  if (!versionFits(series, version)) {
    throw new Error(`${what}: ${suite}'s containerd ${candidate} reports ${version}, not a ${series}.x release`);
  }
  await Deno.remove(join(cacheDir, "x"), { recursive: true }).catch(() => {});
  await Deno.rename(tmp, join(cacheDir, "x"));
  await Deno.remove(join(debs, deb));
  await Deno.remove(join(apt, "lists"), { recursive: true }).catch(() => {}); // ~25 MB, needed only to download
  return { series, suite, packageVersion: candidate, version, downloadedAt: new Date().toISOString() };
}

/** Thrown by {@linkcode ensureContainerd} with `download: false` when the series was never downloaded. */
export class ContainerdNotCachedError extends Error {
  constructor(readonly series: LabSeries, readonly cacheDir: string) {
    super(`containerd ${series} has not been downloaded into ${cacheDir}`);
    this.name = "ContainerdNotCachedError";
  }
}

/**
 * The containerd of `series`: the system's for `1.6`; for `2` and `1.7` the cached extraction in `cacheDir`,
 * downloading it first when it is not there (serialized on a lock file, so concurrent callers download once).
 * Throws with a clear message when the download fails (no network, mirror unreachable, no package); with
 * `download: false`, throws {@linkcode ContainerdNotCachedError} instead of downloading.
 */
export async function ensureContainerd(
  series: LabSeries,
  cacheDir: string,
  opts: { download?: boolean } = {},
): Promise<ContainerdBinaries> {
  if (series === "1.6") {
    const containerd = await which("containerd");
    const version = await versionOf(containerd);
    const dpkg = await runCommand("dpkg-query", ["-W", "-f=${Version}", "containerd"]).catch(() => null);
    return {
      series,
      version,
      source: "system",
      packageVersion: dpkg?.code === 0 && dpkg.stdout ? dpkg.stdout.trim() : null,
      containerd,
      ctr: await which("ctr"),
      goShim: await which("containerd-shim-runc-v2"),
      binDir: null,
    };
  }
  const p = cachePaths(cacheDir);
  await Deno.mkdir(p.dir, { recursive: true });
  const file = await Deno.open(p.lock, { create: true, write: true });
  try {
    await file.lock(true);
    let record: CacheRecord | null = null;
    try {
      record = JSON.parse(await Deno.readTextFile(p.record));
    } catch { /* not downloaded yet */ }
    const present = await Deno.stat(join(p.bin, "containerd")).then(() => true, () => false);
    if (!record || record.series !== series || !present) {
      if (opts.download === false) throw new ContainerdNotCachedError(series, p.dir);
      console.error(`lab: downloading containerd ${series} from Debian ${suiteOf(series)} into ${p.dir} (once)`);
      record = await download(series, p.dir);
      await Deno.writeTextFile(p.record, JSON.stringify(record, null, 2) + "\n");
    }
    return {
      series,
      version: record.version,
      source: record.suite,
      packageVersion: record.packageVersion,
      containerd: join(p.bin, "containerd"),
      ctr: join(p.bin, "ctr"),
      goShim: join(p.bin, "containerd-shim-runc-v2"),
      binDir: p.bin,
    };
  } finally {
    file.close();
  }
}
