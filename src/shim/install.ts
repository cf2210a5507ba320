/**
 * `containerd-shim-deno-v2 install [--prefix DIR] [--merge-config FILE]`: puts the shim on containerd's PATH and
 * prints (or merges) the containerd configuration for `ctr` and CRI.
 *
 * From a bundle build it copies the runtime and the bundle into `<prefix>/lib/containerd-shim-deno/` and writes the
 * launcher `<prefix>/bin/containerd-shim-deno-v2`; a compiled executable is copied as it is. The code cache is warmed
 * with one `-v` run so the first container does not pay for it.
 *
 * @module
 */
import { parseGoFlags } from "../cli/flags.ts";
import { BUNDLE_DIR, BUNDLE_FILE, CACHE_DIR, launcherScript, RUNTIME_FILE, SHIM_BINARY } from "./launcher.ts";
import { RUNTIME_NAME } from "../version.ts";

/** The CRI runtime handler sections, for containerd 1.x (config version 2) and 2.x (config version 3). */
export function criConfigSnippet(handler = "deno"): string {
  return [
    `# containerd 1.6/1.7 (config version 2):`,
    `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${handler}]`,
    `  runtime_type = "${RUNTIME_NAME}"`,
    ``,
    `# containerd 2.x (config version 3):`,
    `# [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.${handler}]`,
    `#   runtime_type = '${RUNTIME_NAME}'`,
  ].join("\n") + "\n";
}

/** Appends the 1.x handler section to a containerd config unless it has one; returns whether it changed. */
export async function mergeConfig(path: string, handler = "deno"): Promise<boolean> {
  const header = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${handler}]`;
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (text.includes(header)) return false;
  const block = `\n# Added by containerd-shim-deno-v2 install\n${header}\n  runtime_type = "${RUNTIME_NAME}"\n`;
  await Deno.writeTextFile(path, (text && !text.endsWith("\n") ? text + "\n" : text) + block);
  return true;
}

async function copyExecutable(from: string, to: string): Promise<void> {
  const tmp = `${to}.tmp-${Deno.pid}`;
  await Deno.copyFile(from, tmp);
  await Deno.chmod(tmp, 0o755);
  await Deno.rename(tmp, to);
}

/** Runs `install`; returns what it reports. */
export async function install(argv: string[]): Promise<string> {
  const { flags, args } = parseGoFlags(argv, { prefix: "string", "merge-config": "string" });
  if (args.length > 0) throw new Error(`install takes no arguments, got ${args.join(" ")}`);
  const prefix = (flags.prefix ?? "/usr/local").replace(/\/+$/, "");
  const bin = `${prefix}/bin/${SHIM_BINARY}`;
  await Deno.mkdir(`${prefix}/bin`, { recursive: true });
  const lines: string[] = [];
  if (Deno.build.standalone) {
    await copyExecutable(Deno.execPath(), bin);
    lines.push(`installed ${bin} (compiled executable)`);
  } else {
    const lib = `${prefix}/lib/containerd-shim-deno`;
    const main = decodeURIComponent(new URL(Deno.mainModule).pathname);
    if (!main.endsWith(`/${BUNDLE_FILE}`)) {
      throw new Error("install runs from a build (deno task build), not from source");
    }
    const chunks = main.slice(0, -"/main.js".length);
    await Deno.mkdir(`${lib}/${CACHE_DIR}`, { recursive: true });
    await copyExecutable(Deno.execPath(), `${lib}/${RUNTIME_FILE}`);
    await Deno.remove(`${lib}/${BUNDLE_DIR}`, { recursive: true }).catch(() => {});
    await Deno.mkdir(`${lib}/${BUNDLE_DIR}`);
    for await (const e of Deno.readDir(chunks)) {
      if (e.isFile) await Deno.copyFile(`${chunks}/${e.name}`, `${lib}/${BUNDLE_DIR}/${e.name}`);
    }
    const tmp = `${bin}.tmp-${Deno.pid}`;
    await Deno.writeTextFile(tmp, launcherScript(lib), { mode: 0o755 });
    await Deno.chmod(tmp, 0o755);
    await Deno.rename(tmp, bin);
    lines.push(`installed ${bin} (launcher) and ${lib}/`);
  }
  const warm = await new Deno.Command(bin, { args: ["-v"], stdout: "null", stderr: "piped" }).output();
  if (!warm.success) throw new Error(`the installed shim does not run: ${new TextDecoder().decode(warm.stderr)}`);
  if (flags["merge-config"]) {
    const changed = await mergeConfig(flags["merge-config"]);
    lines.push(
      changed
        ? `added the CRI runtime handler "deno" to ${flags["merge-config"]}: restart containerd to load it`
        : `${flags["merge-config"]} already has the "deno" runtime handler`,
    );
  }
  lines.push(
    "",
    `ctr: make sure ${prefix}/bin is on containerd's PATH, then`,
    `  ctr run --rm --runtime ${RUNTIME_NAME} docker.io/library/busybox:latest hello echo hello`,
    `or name the binary: --runtime ${bin}`,
    "",
    'CRI (Kubernetes RuntimeClass handler "deno"), in containerd\'s config.toml:',
    criConfigSnippet(),
  );
  return lines.join("\n");
}
