/**
 * `containerd-shim-deno-v2 install [--prefix DIR] [--merge-config FILE] [--containerd PATH] [--runtime-form type|path]`:
 * puts the shim on containerd's PATH and prints (or merges) the containerd configuration for `ctr` and CRI, in the
 * shape of the containerd it finds (`containerd --version`, or the one `--containerd` names): config version 2 with
 * `runtime_type = "io.containerd.deno.v2"` for 1.x; config version 3 for 2.x, by default in the `runtime_path` form
 * (`runtime_type = "io.containerd.runc.v2"` + `runtime_path` = the installed binary), because containerd 2.x asks a
 * runtime for its OCI features only when its type is io.containerd.runc.v2 (see docs/kubernetes.md).
 *
 * From a bundle build it copies the runtime and the bundle into `<prefix>/lib/containerd-shim-deno/` and writes the
 * launcher `<prefix>/bin/containerd-shim-deno-v2`; a compiled executable is copied as it is. The code cache is warmed
 * with `-v` runs (the launcher's, and the server bundle's for its module analysis) so the first container does not pay
 * for it.
 *
 * @module
 */
import { parseGoFlags } from "../cli/flags.ts";
import { BUNDLE_DIR, CACHE_DIR, launcherScript, RUNTIME_FILE, SHIM_BINARY, warmUpCommandLines } from "./launcher.ts";
import { type BundledCommand, bundleLibDir, COMMAND_BUNDLES, commandBundleFile } from "./bundle_layout.ts";
import { RUNTIME_NAME } from "../version.ts";
import { warmServer } from "./warm.ts";

/** How a CRI runtime handler names our shim. */
export type RuntimeForm =
  /** `runtime_type = "io.containerd.deno.v2"`: containerd finds `containerd-shim-deno-v2` on its PATH. */
  | "type"
  /**
   * `runtime_type = "io.containerd.runc.v2"` + `runtime_path = <our binary>`: containerd runs our binary as if it
   * were runc's shim. containerd 2.x asks a runtime for its OCI features (`-info`) only for this runtime type;
   * containerd ≤ 1.6.20 ignores `runtime_path` (it would run the Go shim).
   */
  | "path";

/** The containerd an installation is configured for. */
export interface ContainerdTarget {
  /** As `containerd --version` reports it, e.g. `1.6.20~ds1`, `2.1.9+unknown`. */
  version: string;
  major: number;
  minor: number;
  /** The config file version this containerd writes (`containerd config default`): 2 for 1.x, 3 for 2.x. */
  configVersion: 2 | 3;
}

/** Parses `containerd --version` output (`containerd github.com/containerd/containerd[/v2] <version> <revision>`). */
export function parseContainerdVersion(output: string): ContainerdTarget {
  const m = /^containerd \S+ v?((\d+)\.(\d+)\.\d+\S*)/m.exec(output.trim());
  if (!m) throw new Error(`not containerd --version output: ${JSON.stringify(output.trim().slice(0, 200))}`);
  const major = Number(m[2]);
  return { version: m[1], major, minor: Number(m[3]), configVersion: major >= 2 ? 3 : 2 };
}

/** Runs `<binary> --version` (default: `containerd` on PATH) and parses it. */
export async function detectContainerd(binary = "containerd"): Promise<ContainerdTarget> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(binary, { args: ["--version"], stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
  } catch (err) {
    throw new Error(
      `cannot run ${binary} --version to tell which containerd to configure (${(err as Error).message}); ` +
        `name it with --containerd PATH`,
    );
  }
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${binary} --version failed (exit ${out.code}): ${text.trim()}`);
  return parseContainerdVersion(text);
}

/** The form to use with `target` when none is asked for: `path` on 2.x (its features come through `-info`). */
export function defaultForm(target: ContainerdTarget): RuntimeForm {
  return target.major >= 2 ? "path" : "type";
}

/** Throws when `form` cannot work on `target`. */
export function checkForm(target: ContainerdTarget, form: RuntimeForm): void {
  if (form === "path" && target.major === 1 && target.minor <= 6) {
    throw new Error(
      `containerd ${target.version} ignores runtime_path (1.6 runs the Go shim for runtime_type io.containerd.runc.v2); ` +
        `use --runtime-form type`,
    );
  }
}

/** The CRI plugin's runtimes table in config version `configVersion`. */
function runtimesTable(configVersion: 2 | 3): string {
  return configVersion === 3
    ? `plugins."io.containerd.cri.v1.runtime".containerd.runtimes`
    : `plugins."io.containerd.grpc.v1.cri".containerd.runtimes`;
}

/** The handler section, e.g. for config 3 and the `path` form. */
export function handlerSection(configVersion: 2 | 3, form: RuntimeForm, binary: string, handler = "deno"): string {
  const lines = [`[${runtimesTable(configVersion)}.${handler}]`];
  if (form === "path") {
    lines.push(`  runtime_type = "io.containerd.runc.v2"`, `  runtime_path = ${JSON.stringify(binary)}`);
  } else {
    lines.push(`  runtime_type = "${RUNTIME_NAME}"`);
  }
  return lines.join("\n") + "\n";
}

/** The registration snippets for every containerd series; the one `target` needs first when it is known. */
export function criConfigSnippet(binary: string, handler = "deno", target?: ContainerdTarget): string {
  const v2 = [
    `# containerd 1.6 / 1.7 (config version = 2):`,
    handlerSection(2, "type", binary, handler),
  ].join("\n");
  const v3 = [
    `# containerd 2.x (config version = 3); runtime_path form, so containerd asks our shim for its OCI features`,
    `# (-info, used e.g. for recursive read-only mounts):`,
    handlerSection(3, "path", binary, handler),
    `# or, without the features query:`,
    handlerSection(3, "type", binary, handler).replace(/^/gm, "# ").replace(/# $/, ""),
  ].join("\n");
  return (target?.major !== undefined && target.major >= 2 ? [v3, v2] : [v2, v3]).join("\n");
}

/** The top-level `version = N` of a containerd config, or null when it has none (containerd then reads version 1). */
export function configFileVersion(text: string): number | null {
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (line.startsWith("[")) return null; // top-level keys come before the first table
    const m = /^version\s*=\s*(\d+)$/.exec(line);
    if (m) return Number(m[1]);
  }
  return null;
}

/** True when `text` already defines `handler` in `configVersion`'s runtimes table (either TOML quoting). */
function hasHandler(text: string, configVersion: 2 | 3, handler: string): boolean {
  const plugin = configVersion === 3 ? "io.containerd.cri.v1.runtime" : "io.containerd.grpc.v1.cri";
  const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const re = new RegExp(
    `^\\s*\\[\\s*plugins\\.(["'])${esc(plugin)}\\1\\.containerd\\.runtimes\\.(["']?)${esc(handler)}\\2\\s*\\]`,
    "m",
  );
  return re.test(text);
}

/** What {@linkcode mergeConfig} did. */
export interface MergeResult {
  changed: boolean;
  /** The config version the section was written in. */
  configVersion: 2 | 3;
  form: RuntimeForm;
}

/** Copies the files under `from` into `to` (created), subdirectories included (the command bundles'). */
async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    else if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

/**
 * Adds the CRI handler for our shim to the containerd config at `path` unless it has one, in the shape `target`
 * reads: config version 2 for containerd 1.x, 3 for 2.x. A missing or empty file gets a `version` line first. An
 * existing file keeps its own version: containerd 2.x also reads (and migrates) version 2 files, so a version 2 file
 * gets a version 2 section; containerd 1.x cannot read version 3, which is an error, as is a file without a
 * `version` line (containerd reads it as the long-deprecated version 1).
 */
export async function mergeConfig(
  path: string,
  target: ContainerdTarget,
  binary: string,
  opts: { handler?: string; form?: RuntimeForm } = {},
): Promise<MergeResult> {
  const handler = opts.handler ?? "deno";
  const form = opts.form ?? defaultForm(target);
  checkForm(target, form);
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const empty = text.trim() === "";
  const fileVersion = empty ? null : configFileVersion(text);
  if (!empty && fileVersion === null) {
    throw new Error(
      `${path} has no top-level "version" line, so containerd reads it as config version 1; ` +
        `add version = ${target.configVersion} (and that version's layout) first`,
    );
  }
  const configVersion = (fileVersion ?? target.configVersion) as 2 | 3;
  if (configVersion !== 2 && configVersion !== 3) throw new Error(`${path}: unsupported config version ${fileVersion}`);
  if (configVersion === 3 && target.major < 2) {
    throw new Error(`${path} is a version 3 config, which containerd ${target.version} cannot read (it needs 2.x)`);
  }
  if (hasHandler(text, configVersion, handler)) return { changed: false, configVersion, form };
  const head = empty ? `version = ${configVersion}\n` : text.endsWith("\n") ? text : text + "\n";
  const block = `\n# Added by containerd-shim-deno-v2 install for containerd ${target.version}\n` +
    handlerSection(configVersion, form, binary, handler);
  await Deno.writeTextFile(path, head + block);
  return { changed: true, configVersion, form };
}

async function copyExecutable(from: string, to: string): Promise<void> {
  const tmp = `${to}.tmp-${Deno.pid}`;
  await Deno.copyFile(from, tmp);
  await Deno.chmod(tmp, 0o755);
  await Deno.rename(tmp, to);
}

/** Runs `install`; returns what it reports. */
export async function install(argv: string[]): Promise<string> {
  const { flags, args } = parseGoFlags(argv, {
    prefix: "string",
    "merge-config": "string",
    containerd: "string",
    "runtime-form": "string",
  });
  const formFlag = flags["runtime-form"];
  if (formFlag !== undefined && formFlag !== "type" && formFlag !== "path") {
    throw new Error(`--runtime-form must be type or path, not ${JSON.stringify(formFlag)}`);
  }
  if (args.length > 0) throw new Error(`install takes no arguments, got ${args.join(" ")}`);
  const prefix = (flags.prefix ?? "/usr/local").replace(/\/+$/, "");
  const bin = `${prefix}/bin/${SHIM_BINARY}`;
  // Which containerd to configure, found before anything is written so that a wrong --containerd changes nothing.
  const target = flags["merge-config"] || flags.containerd
    ? await detectContainerd(flags.containerd)
    : await detectContainerd().catch(() => undefined);
  if (target && formFlag) checkForm(target, formFlag);
  await Deno.mkdir(`${prefix}/bin`, { recursive: true });
  const lines: string[] = [];
  // The launcher runs a command's own bundle only when the build has it (builds of other entries have none).
  const commands: BundledCommand[] = [];
  let lib: string | undefined; // the library directory of a bundle install
  if (Deno.build.standalone) {
    await copyExecutable(Deno.execPath(), bin);
    lines.push(`installed ${bin} (compiled executable)`);
  } else {
    lib = `${prefix}/lib/containerd-shim-deno`;
    const from = bundleLibDir(decodeURIComponent(new URL(Deno.mainModule).pathname));
    if (!from) throw new Error("install runs from a build (deno task build), not from source");
    await Deno.mkdir(`${lib}/${CACHE_DIR}`, { recursive: true });
    await copyExecutable(Deno.execPath(), `${lib}/${RUNTIME_FILE}`);
    await Deno.remove(`${lib}/${BUNDLE_DIR}`, { recursive: true }).catch(() => {});
    await copyTree(`${from}/${BUNDLE_DIR}`, `${lib}/${BUNDLE_DIR}`);
    for (const c of COMMAND_BUNDLES) {
      if (await Deno.stat(`${lib}/${commandBundleFile(c)}`).then((s) => s.isFile, () => false)) commands.push(c);
    }
    const tmp = `${bin}.tmp-${Deno.pid}`;
    await Deno.writeTextFile(tmp, launcherScript(lib, commands), { mode: 0o755 });
    await Deno.chmod(tmp, 0o755);
    await Deno.rename(tmp, bin);
    lines.push(`installed ${bin} (launcher) and ${lib}/`);
  }
  // Each warm-up run also stores V8's code cache for what it loaded (launcher.ts, warmUpCommandLines).
  for (const args of warmUpCommandLines(commands)) {
    const warm = await new Deno.Command(bin, { args, stdout: "null", stderr: "piped" }).output();
    if (!warm.success) throw new Error(`the installed shim does not run: ${new TextDecoder().decode(warm.stderr)}`);
  }
  // The server's module analysis, so that the first container's server does not parse its bundle (warm.ts).
  if (lib) await warmServer(lib);
  if (flags["merge-config"]) {
    const file = flags["merge-config"];
    const r = await mergeConfig(file, target!, bin, { form: formFlag });
    const how = `config version ${r.configVersion}, ${
      r.form === "path" ? "runtime_type io.containerd.runc.v2 + runtime_path" : `runtime_type ${RUNTIME_NAME}`
    }`;
    lines.push(
      r.changed
        ? `added the CRI runtime handler "deno" to ${file} for containerd ${target!.version} (${how}): ` +
          `restart containerd to load it`
        : `${file} already has the "deno" runtime handler (containerd ${target!.version})`,
    );
  }
  lines.push(
    "",
    `ctr: make sure ${prefix}/bin is on containerd's PATH, then`,
    `  ctr run --rm --runtime ${RUNTIME_NAME} docker.io/library/busybox:latest hello echo hello`,
    `or name the binary: --runtime ${bin}`,
    "",
    `CRI (Kubernetes RuntimeClass handler "deno"), in containerd's config.toml` +
      (target ? ` (found containerd ${target.version}):` : ":"),
    criConfigSnippet(bin, "deno", target),
  );
  return lines.join("\n");
}
