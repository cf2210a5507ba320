/**
 * Builds the shim into `dist/`, in one of two flavours.
 *
 * - `bundle` (default, works offline): `deno bundle --platform deno --code-splitting --minify --keep-names` turns
 *   `main.ts` and its npm dependencies into self-contained chunks under `dist/lib/js/` (entry `main.js`); the deno
 *   runtime is placed at `dist/lib/containerd-shim-deno-runtime` (a hard link to the running deno when possible);
 *   `dist/containerd-shim-deno-v2` is a short `/bin/sh` launcher that `exec`s that runtime with
 *   {@linkcode launcherFlags}. `start` and `delete`, which containerd runs for every container, are also bundled on
 *   their own (`dist/lib/js/<command>/<command>.js`, one file, and the chunks of what it loads only when needed:
 *   src/shim/bundle_layout.ts, {@linkcode inlineStaticImports}), and the launcher runs those for them.
 * - `compile` (`--compile`, needs the `denort` base binary: downloaded from dl.deno.land, or named by `DENORT_BIN`):
 *   `deno compile` writes a single executable `dist/containerd-shim-deno-v2`.
 *
 * Either way `dist/BUILD-INFO.json` records which flavour was built ({@linkcode BuildInfo}), and a failed build leaves
 * the previous `dist/` as it was: every output is written to a temporary name first and renamed into place.
 *
 * @example
 * ```sh
 * deno task build                       # bundle flavour from main.ts
 * deno task build --entry other.ts      # any entry point (e.g. a stub while main.ts is being written)
 * deno task compile                     # single executable; fails offline unless DENORT_BIN names a denort binary
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SHIM_V8_FLAGS, shimPermissionFlags, shimRunFlags } from "../src/permissions.ts";
import { type BundledCommand, SERVER_BUNDLE } from "../src/shim/bundle_layout.ts";
import { warmServer } from "../src/shim/warm.ts";
import { BUILD_ID_PLACEHOLDER } from "../src/shim/build_id.ts";
import {
  BUNDLE_DIR,
  BUNDLE_FILE,
  CACHE_DIR,
  COMMAND_BUNDLES,
  launcherEnv as sharedLauncherEnv,
  launcherScript as sharedLauncherScript,
  RUNTIME_FILE,
  SHIM_BINARY,
  warmUpCommandLines,
} from "../src/shim/launcher.ts";

/** Which artifact `dist/containerd-shim-deno-v2` is. */
export type Flavour = "bundle" | "compile";

/** Contents of `dist/BUILD-INFO.json`. */
export interface BuildInfo {
  flavour: Flavour;
  /** `Deno.version.deno` of the runtime that built (and, for `bundle`, runs) the shim. */
  denoVersion: string;
  /** ISO 8601 build time. */
  time: string;
  /** Absolute path of the entry module. */
  entry: string;
  /** Git commit of the checkout, with `-dirty` when it has local changes; null outside a git checkout. */
  revision: string | null;
  /** The `deno run` flags baked into the launcher (bundle) or the permission flags given to `deno compile`. */
  flags: string[];
  /** The commands bundled on their own, which the launcher runs from their own files (bundle flavour). */
  commands?: BundledCommand[];
  /** Whether the server has its own one-file bundle, which `start` spawns it from (bundle flavour). */
  server?: boolean;
  /** The id the build wrote into its files (bundle flavour; src/shim/build_id.ts). */
  buildId?: string;
}

/** Absolute path of the repository (this file lives in `<repo>/tools/`). */
export const repoRoot: string = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

export { SHIM_BINARY };
/** The bundled script, relative to `dist/`. */
export const BUNDLE_PATH = `lib/${BUNDLE_FILE}`;
/** The deno runtime placed next to the bundle, relative to `dist/`. */
export const RUNTIME_PATH = `lib/${RUNTIME_FILE}`;
/** V8 code cache directory used by the launcher (`DENO_DIR`), relative to `dist/`. */
export const CACHE_PATH = `lib/${CACHE_DIR}`;

/**
 * The `deno run` flags of the bundle launcher: `shimRunFlags("command")` from `src/permissions.ts`, the list whose
 * `"server"` form `start` uses to spawn the server (the same permissions; `--no-lazy` and `--no-code-cache` differ).
 * Besides the permission set: `--no-config` and `--no-lock`
 * (containerd runs the shim with the container's bundle directory as cwd: no deno.json or deno.lock lookups there),
 * `--no-remote` and `--no-npm` (the bundle is self-contained; the runtime must never resolve or fetch anything).
 */
export function launcherFlags(): string[] {
  return shimRunFlags("command");
}

/** Environment the launcher sets before `exec` (see src/shim/launcher.ts). */
export function launcherEnv(dist: string): Record<string, string> {
  return sharedLauncherEnv(join(dist, "lib"));
}

/** The launcher of `dist/` (see src/shim/launcher.ts), for a build with these command bundles. */
export function launcherScript(dist: string, commands: readonly BundledCommand[] = COMMAND_BUNDLES): string {
  return sharedLauncherScript(join(dist, "lib"), commands);
}

/** A temporary name next to `path`, so that the final rename stays on one filesystem and is atomic. */
function tmpName(path: string): string {
  return join(dirname(path), `.${path.slice(dirname(path).length + 1)}.tmp-${Deno.pid}`);
}

async function removeQuietly(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch(() => {});
}

/** Writes `data` to `path` with `mode` through a temporary file and a rename. */
async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = tmpName(path);
  try {
    await Deno.writeTextFile(tmp, data, { mode });
    await Deno.chmod(tmp, mode); // the umask may have cut the mode
    await Deno.rename(tmp, path);
  } catch (e) {
    await removeQuietly(tmp);
    throw e;
  }
}

/** Runs a command, returning its exit code and combined output. */
async function run(cmd: string, args: string[], env?: Record<string, string>): Promise<{ code: number; out: string }> {
  const p = await new Deno.Command(cmd, { args, cwd: repoRoot, env, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: p.code, out: (dec.decode(p.stdout) + dec.decode(p.stderr)).trim() };
}

/** Deno colours its diagnostics even into pipes; strip that for our messages. */
function plain(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "");
}

async function gitRevision(): Promise<string | null> {
  try {
    const head = await run("git", ["rev-parse", "HEAD"]);
    if (head.code !== 0) return null;
    const status = await run("git", ["status", "--porcelain", "--untracked-files=no"]);
    return head.out + (status.out ? "-dirty" : "");
  } catch {
    return null; // git not installed
  }
}

/**
 * Places the running deno at `dest`: a hard link when on the same filesystem (no copy of ~100 MB), else a copy.
 * Already linked to the same inode: nothing to do.
 */
async function placeRuntime(dest: string): Promise<void> {
  const src = Deno.execPath();
  const s = await Deno.stat(src);
  const d = await Deno.stat(dest).catch(() => null);
  if (d && d.dev === s.dev && d.ino === s.ino) return;
  const tmp = tmpName(dest);
  await removeQuietly(tmp);
  try {
    try {
      await Deno.link(src, tmp);
    } catch {
      await Deno.copyFile(src, tmp); // EXDEV (another filesystem) or a filesystem without hard links
    }
    const mode = (await Deno.stat(tmp)).mode ?? 0;
    if ((mode & 0o777) !== 0o755) await Deno.chmod(tmp, 0o755);
    await Deno.rename(tmp, dest);
  } catch (e) {
    await removeQuietly(tmp);
    throw e;
  }
}

async function writeBuildInfo(dist: string, info: BuildInfo): Promise<void> {
  await writeAtomic(join(dist, "BUILD-INFO.json"), JSON.stringify(info, null, 2) + "\n", 0o644);
}

/** Options of {@linkcode buildBundle} and {@linkcode buildCompile}. */
export interface BuildOptions {
  /** Entry module; default `<repo>/main.ts`. */
  entry?: string;
  /** Output directory; default `<repo>/dist`. */
  dist?: string;
  /**
   * The entry modules of the commands bundled on their own (bundle flavour only). Default: the shim's
   * (`src/shim/<command>_main.ts`) for the default entry, none for another entry.
   */
  commands?: Partial<Record<BundledCommand, string>>;
  /**
   * The entry module of the server's own bundle, one file (bundle flavour only). Default: the shim's
   * (`src/shim/server_main.ts`) for the default entry, none for another entry (`start` then spawns main.js).
   */
  server?: string;
}

/** The shim's own entry modules of the commands in COMMAND_BUNDLES. */
function shimCommandEntries(): Record<BundledCommand, string> {
  return Object.fromEntries(
    COMMAND_BUNDLES.map((c) => [c, join(repoRoot, "src/shim", `${c}_main.ts`)]),
  ) as Record<BundledCommand, string>;
}

function resolveOptions(
  opts: BuildOptions,
): { entry: string; dist: string; commands: [BundledCommand, string][]; server?: string } {
  const commands = opts.commands ?? (opts.entry === undefined ? shimCommandEntries() : {});
  const server = opts.server ?? (opts.entry === undefined ? join(repoRoot, "src/shim/server_main.ts") : undefined);
  return {
    server: server === undefined ? undefined : resolve(server),
    entry: resolve(opts.entry ?? join(repoRoot, "main.ts")),
    dist: resolve(opts.dist ?? join(repoRoot, "dist")),
    commands: (Object.entries(commands) as [BundledCommand, string][]).map(([c, e]) => [c, resolve(e)]),
  };
}

async function requireEntry(entry: string): Promise<void> {
  const st = await Deno.stat(entry).catch(() => null);
  if (!st?.isFile) throw new Error(`entry module ${entry} does not exist (pass --entry <file>)`);
}

/** `import("./x.js")` with a literal specifier, as `deno bundle --code-splitting` writes dynamic imports. */
const LITERAL_DYNAMIC_IMPORT = /\bimport\("(\.\/[\w.-]+\.js)"\)/g;

/** `code` with every literal relative dynamic import made a computed one (same module, resolved at run time). */
export function computedImports(code: string): string {
  return code.replace(LITERAL_DYNAMIC_IMPORT, 'import(new URL("$1", import.meta.url).href)');
}

/** Applies {@linkcode computedImports} to every chunk in `dir`. */
async function computeDynamicImports(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.endsWith(".js")) continue;
    const path = join(dir, e.name);
    const code = await Deno.readTextFile(path);
    const next = computedImports(code);
    if (next !== code) await Deno.writeTextFile(path, next);
  }
}

/**
 * `deno bundle` of `entry` into `outdir`, its entry chunk renamed `entryName`. With code splitting the entry chunk
 * holds what the entry imports statically, and each module imported only dynamically (the server's code in main's
 * bundle, the boot path in `start`'s, runc and the unmount in `delete`'s) goes into chunks loaded when used. Without
 * (the server's bundle), dynamically imported modules are inlined too: one file.
 */
async function denoBundle(entry: string, outdir: string, entryName: string, split = true): Promise<void> {
  const args = [
    "bundle",
    "--config",
    join(repoRoot, "deno.json"),
    "--frozen",
    "--platform",
    "deno",
    ...(split ? ["--code-splitting"] : []),
    // Minified: every chunk is source that V8 keeps in the heap and scans again to compile each function on its first
    // call (the code cache holds only what was compiled before it was written). Measured against the plain bundle: a
    // server 0.7 MiB less private dirty (12.98 -> 12.28 MiB), `start` with a server running 2 ms and `delete` 1.5 ms
    // faster. Names are kept: stack traces in containerd's log still name the functions, and code that checks a
    // function's name (src/proto/runtime.ts, the Long stand-in) keeps working.
    "--minify",
    "--keep-names",
    // protobufjs takes `long` only when no `dcodeIO.Long` global exists, and the shim gives it a stand-in
    // (src/shim/node_globals.ts): the package is never evaluated, so it is not shipped (13 KB less to load). Without
    // the stand-in protobufjs' own try/catch around its require would simply find no Long.
    "--external",
    "long",
    "--outdir",
    outdir,
    entry,
  ];
  const res = await run(Deno.execPath(), args, { NO_COLOR: "1" });
  if (res.code !== 0) throw new Error(`deno bundle of ${entry} failed (exit ${res.code}):\n${plain(res.out)}`);
  const entryChunk = join(outdir, entry.slice(entry.lastIndexOf("/") + 1).replace(/\.ts$/, ".js"));
  if (entryChunk !== join(outdir, entryName)) await Deno.rename(entryChunk, join(outdir, entryName));
}

/**
 * Rewrites the chunk `file` with the chunks it imports statically inlined (a second `deno bundle`, of the chunk),
 * leaving its computed dynamic imports as they are. A module's first statement runs ~1 ms later for each file Deno
 * loads for it; `start` reusing a server: 2.3 ms less with its three files made one (30 pairs, bench/analysis.md,
 * session 12). The inlined chunks stay where they are for the modules loaded dynamically, which then run on copies of
 * their own: the module state they share with the entry (libc's binding, say) is not shared. Whatever crosses from
 * the entry to them must be plain data. Without `--keep-names` this time: the first bundle's calls already name every
 * function, and a second set would only rename them to the first bundle's short names (94 more `defineProperty`
 * calls in `start`'s top-level code).
 */
async function inlineStaticImports(file: string): Promise<void> {
  const tmp = `${file}.one.js`;
  const res = await run(Deno.execPath(), [
    "bundle",
    "--no-config",
    "--platform",
    "deno",
    "--minify",
    "--output",
    tmp,
    file,
  ], { NO_COLOR: "1" });
  if (res.code !== 0) {
    throw new Error(`deno bundle of ${file} into one file failed (exit ${res.code}):\n${plain(res.out)}`);
  }
  await Deno.rename(tmp, file);
}

/**
 * Names the build in `dir` (the bundle's chunk directory, before it goes into place): twelve hex digits of the
 * SHA-256 of every file in it, by path, and of the runtime's version; written into every file in place of
 * {@linkcode BUILD_ID_PLACEHOLDER}, where src/shim/build_id.ts finds it. So `start` knows its build without reading a
 * file, and two builds share servers only when they would run the same code.
 */
export async function stampBuildId(dir: string): Promise<string> {
  const files: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(join(dir, rel))) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(path);
      else if (e.isFile) files.push(path);
    }
  };
  await walk("");
  files.sort();
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [enc.encode(`deno ${Deno.version.deno}\0`)];
  const texts = new Map<string, string>();
  for (const f of files) {
    const bytes = await Deno.readFile(join(dir, f));
    parts.push(enc.encode(`${f}\0${bytes.length}\0`), bytes);
    if (f.endsWith(".js")) texts.set(f, new TextDecoder().decode(bytes));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  const id = [...digest.slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
  for (const [f, text] of texts) {
    if (text.includes(BUILD_ID_PLACEHOLDER)) {
      await Deno.writeTextFile(join(dir, f), text.replaceAll(BUILD_ID_PLACEHOLDER, id));
    }
  }
  return id;
}

/** Builds the `bundle` flavour into `dist/` and returns what was written to `BUILD-INFO.json`. */
export async function buildBundle(opts: BuildOptions = {}): Promise<BuildInfo> {
  const { entry, dist, commands, server } = resolveOptions(opts);
  for (const e of [entry, ...commands.map(([, e]) => e), ...server ? [server] : []]) await requireEntry(e);
  await Deno.mkdir(join(dist, "lib"), { recursive: true });

  const chunks = join(dist, "lib", BUNDLE_DIR);
  const tmp = tmpName(chunks);
  const commandTmp = (c: BundledCommand) => `${tmp}-${c}`;
  const serverTmp = `${tmp}-server`;
  const temporaries = [tmp, serverTmp, ...commands.map(([c]) => commandTmp(c))];
  for (const t of temporaries) await removeQuietly(t);
  try {
    // Each command's bundle goes to a directory of its own, then into the main bundle's as `<command>/<command>.js`;
    // the server's likewise, as `server/server.js` (SERVER_BUNDLE_FILE).
    await Promise.all([
      denoBundle(entry, tmp, "main.js"),
      ...commands.map(([c, e]) => denoBundle(e, commandTmp(c), `${c}.js`)),
      ...server ? [denoBundle(server, serverTmp, `${SERVER_BUNDLE}.js`, false)] : [],
    ]);
    for (const [c] of commands) await Deno.rename(commandTmp(c), join(tmp, c));
    if (server) await Deno.rename(serverTmp, join(tmp, SERVER_BUNDLE));
  } catch (err) {
    for (const t of temporaries) await removeQuietly(t);
    throw err;
  }
  // Deno loads every module a literal `import("./x.js")` names before running anything, which would read the server's
  // chunks in `start` too (~3 ms less per `start`), and the server's serving code (codecs, Task service) before it
  // could report "ready": a computed specifier is loaded only when the import runs. Every chunk, not only the entry.
  // (So a dynamic import in code a long-lived server runs later would read its chunk only then, possibly from a newer
  // dist/ that no longer has it: the server's own graph, serve_run.ts and below, has none and should keep it so.)
  for (const dir of [tmp, ...commands.map(([c]) => join(tmp, c))]) await computeDynamicImports(dir);
  // Each command's entry is made one file: it holds what the common case runs (a `start` reusing a server, a `delete`
  // after a normal task Delete); what it imports dynamically (the server's boot path; runc, the unmount, the socket
  // probe) keeps its chunks. Nothing with state crosses: the boot path gets plain data, and `delete`'s entry neither
  // opens libc nor checks the class of an error its dynamic parts throw.
  for (const [c] of commands) await inlineStaticImports(join(tmp, c, `${c}.js`));
  const buildId = await stampBuildId(tmp);
  // Swap the chunk directory: running shims keep their open files; new ones see a complete tree.
  const old = `${chunks}.old-${Deno.pid}`;
  await Deno.rename(chunks, old).catch(() => {});
  await Deno.rename(tmp, chunks);
  await removeQuietly(old);
  await removeQuietly(join(dist, "lib/containerd-shim-deno.js")); // the single-file layout of earlier builds
  await placeRuntime(join(dist, RUNTIME_PATH));
  // A fresh code cache per build: entries of old bundles would only grow it (running shims keep their open files).
  await removeQuietly(join(dist, CACHE_PATH));
  await Deno.mkdir(join(dist, CACHE_PATH), { recursive: true });
  await writeAtomic(join(dist, SHIM_BINARY), launcherScript(dist, commands.map(([c]) => c)), 0o755);

  const info: BuildInfo = {
    flavour: "bundle",
    denoVersion: Deno.version.deno,
    time: new Date().toISOString(),
    entry,
    revision: await gitRevision(),
    flags: launcherFlags(),
    commands: commands.map(([c]) => c),
    server: server !== undefined,
    buildId,
  };
  await writeBuildInfo(dist, info);
  return info;
}

/**
 * Runs the launcher with `-v` and each command's warm-up command line (launcher.ts, warmUpCommandLines) so that V8's
 * code cache for the bundle exists before containerd's first `start`, and the server's bundle with `-v` so that the
 * first server finds its module analysis stored. Returns the first output on one line, or null when the entry does
 * not answer `-v` (yet).
 */
export async function warmLauncher(
  dist: string = join(repoRoot, "dist"),
  commands: readonly BundledCommand[] = COMMAND_BUNDLES,
): Promise<string | null> {
  let first: string | null | undefined;
  for (const args of warmUpCommandLines(commands)) {
    const child = new Deno.Command(join(dist, SHIM_BINARY), {
      args,
      cwd: "/",
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    try {
      const out = await child.output();
      first ??= out.success ? new TextDecoder().decode(out.stdout).replace(/\s+/g, " ").trim() : null;
    } finally {
      clearTimeout(timer);
    }
  }
  await warmServer(join(dist, "lib")); // the server's module analysis too (src/shim/warm.ts)
  return first ?? null;
}

/** Error thrown when `deno compile` cannot get its `denort` base binary. */
export class DenortUnavailableError extends Error {
  constructor(detail: string) {
    super(
      "deno compile needs the denort base binary, which it downloads from dl.deno.land (unreachable here) unless " +
        "DENORT_BIN names a denort " + Deno.version.deno + " binary. Use `deno task build` (bundle + deno runtime, " +
        "works offline) instead.\n" + detail,
    );
    this.name = "DenortUnavailableError";
  }
}

/**
 * Builds the `compile` flavour: `deno compile` of the entry with the shim's permission flags into
 * `dist/containerd-shim-deno-v2`, then removes the bundle flavour's `dist/lib/`. Honours `DENORT_BIN`.
 * On any failure `dist/` is left untouched.
 */
export async function buildCompile(opts: BuildOptions = {}): Promise<BuildInfo> {
  const { entry, dist } = resolveOptions(opts);
  await requireEntry(entry);
  const denort = Deno.env.get("DENORT_BIN");
  if (denort && !(await Deno.stat(denort).catch(() => null))?.isFile) {
    throw new DenortUnavailableError(`DENORT_BIN=${denort} does not exist.`);
  }
  await Deno.mkdir(dist, { recursive: true });
  const out = join(dist, SHIM_BINARY);
  const tmp = tmpName(out);
  const flags = [...shimPermissionFlags(), ...SHIM_V8_FLAGS];
  try {
    const res = await run(Deno.execPath(), [
      "compile",
      "--config",
      join(repoRoot, "deno.json"),
      "--frozen",
      "-o",
      tmp,
      ...flags,
      entry,
    ], { NO_COLOR: "1" });
    if (res.code !== 0) {
      const text = plain(res.out);
      if (/denort|dl\.deno\.land|base binary/i.test(text)) throw new DenortUnavailableError(text);
      throw new Error(`deno compile failed (exit ${res.code}):\n${text}`);
    }
    // DENORT_BIN pointing at the deno CLI "works" but yields the plain CLI, which answers `-v` with "deno x.y.z".
    const smoke = await run(tmp, ["-v"]);
    if (/^deno \d/.test(smoke.out)) {
      throw new DenortUnavailableError(`the compiled file is the deno CLI itself (is DENORT_BIN the deno binary?).`);
    }
    await Deno.rename(tmp, out);
  } catch (e) {
    await removeQuietly(tmp);
    throw e;
  }
  await removeQuietly(join(dist, "lib"));
  const info: BuildInfo = {
    flavour: "compile",
    denoVersion: Deno.version.deno,
    time: new Date().toISOString(),
    entry,
    revision: await gitRevision(),
    flags,
  };
  await writeBuildInfo(dist, info);
  return info;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { compile: { type: "boolean" }, entry: { type: "string" }, out: { type: "string" } },
  });
  const opts: BuildOptions = { entry: values.entry, dist: values.out };
  const t0 = performance.now();
  try {
    if (values.compile) {
      const info = await buildCompile(opts);
      console.log(`built ${join(resolveOptions(opts).dist, SHIM_BINARY)} (compile, deno ${info.denoVersion})`);
    } else {
      const info = await buildBundle(opts);
      const dist = resolveOptions(opts).dist;
      const version = await warmLauncher(dist, info.commands);
      const ms = Math.round(performance.now() - t0);
      console.log(`built ${join(dist, SHIM_BINARY)} (bundle, deno ${info.denoVersion}, ${ms} ms)`);
      if (version === null) console.log("note: the launcher did not answer -v; V8 code cache not warmed");
    }
    return 0;
  } catch (e) {
    console.error(`build failed: ${e instanceof Error ? e.message : e}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main());
