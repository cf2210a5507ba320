/**
 * `containerd-shim-deno-v2 check [-address SOCK]`: can this machine run containers through the shim? Each line says
 * ok or what to do, naming what it looked at (the containerd socket it tried, the config file it read); the exit
 * status is 1 when anything essential is missing.
 *
 * @module
 */
import { parseGoFlags } from "../cli/flags.ts";
import { Runc } from "../runc/mod.ts";
import { libc } from "../sys/libc.ts";
import { isChildSubreaper, setChildSubreaper } from "../sys/process.ts";
import { readFileOrNull } from "../sys/procfs.ts";
import { unixListening } from "../sys/unix_socket.ts";
import { DEFAULT_SOCKET_DIR } from "./address.ts";
import { DEFAULT_CONFIG_PATH, loadConfig } from "./config.ts";
import { VERSION } from "../version.ts";
import { permissionFindings } from "./manifest.ts";

/** One finding. */
export interface Finding {
  ok: boolean;
  essential: boolean;
  what: string;
  detail: string;
}

async function probe(what: string, essential: boolean, fn: () => Promise<string> | string, fix: string) {
  try {
    return { ok: true, essential, what, detail: await fn() };
  } catch (err) {
    return { ok: false, essential, what, detail: `${(err as Error).message} — ${fix}` };
  }
}

/** Runs every check. */
export async function runChecks(argv: string[]): Promise<Finding[]> {
  const { flags } = parseGoFlags(argv, { address: "string", "runc-binary": "string" });
  const address = flags.address ?? "/run/containerd/containerd.sock";
  const binary = flags["runc-binary"] ?? "runc";
  const out: Finding[] = [];
  out.push(await probe("shim", true, () => `containerd-shim-deno-v2 ${VERSION} on Deno ${Deno.version.deno}`, ""));
  out.push(
    await probe("libc", true, () => {
      libc();
      return "opened through FFI";
    }, "install glibc, or run with --allow-ffi"),
  );
  out.push(
    await probe("subreaper", true, () => {
      setChildSubreaper();
      if (!isChildSubreaper()) throw new Error("PR_SET_CHILD_SUBREAPER did not stick");
      return "the shim can become the parent of its containers";
    }, "the kernel must support PR_SET_CHILD_SUBREAPER (Linux 3.4+)"),
  );
  out.push(
    await probe("runc", true, async () => {
      const v = await new Runc({ binary, root: "/run/containerd/runc" }).version();
      return `${binary} ${v.runc} (spec ${v.spec})`;
    }, `install runc (apt-get install runc) or name it with Options.BinaryName / --runc-binary`),
  );
  out.push(
    await probe("cgroups", true, () => {
      if (readFileOrNull("/sys/fs/cgroup/cgroup.controllers") !== null) return "v2 (unified)";
      if (readFileOrNull("/sys/fs/cgroup/memory/memory.limit_in_bytes") !== null) return "v1 (memory controller found)";
      throw new Error("no cgroup v2 mount and no v1 memory controller at /sys/fs/cgroup");
    }, "mount cgroups (cgroup2 at /sys/fs/cgroup, or the v1 controllers)"),
  );
  out.push(
    await probe("socket directory", true, async () => {
      await Deno.mkdir(DEFAULT_SOCKET_DIR, { recursive: true, mode: 0o711 });
      const probeFile = `${DEFAULT_SOCKET_DIR}/.deno-shim-check-${Deno.pid}`;
      await Deno.writeTextFile(probeFile, "");
      await Deno.remove(probeFile);
      return `${DEFAULT_SOCKET_DIR} is writable`;
    }, "run the shim as root (containerd does)"),
  );
  out.push(
    await probe("containerd", false, () => {
      // A libc probe: the shim has no net permission.
      if (!unixListening(address)) throw new Error(`tried ${address}: nothing listens there`);
      return `${address} answers`;
    }, `is containerd running? pass -address <socket> for a non-default one`),
  );
  out.push(...await configFindings());
  return out;
}

/**
 * Which shim config file `start` reads (unless CRI names one with `config_path`), what it says, and a warning when
 * `CONTAINERD_SHIM_DENO_CONFIG` names a file that does not exist: that silently means the defaults.
 */
async function configFindings(): Promise<Finding[]> {
  const fromEnv = Deno.env.get("CONTAINERD_SHIM_DENO_CONFIG") || "";
  const path = fromEnv || DEFAULT_CONFIG_PATH;
  const why = fromEnv ? "named by CONTAINERD_SHIM_DENO_CONFIG" : "the default location";
  const present = await Deno.stat(path).then(() => true, (e) => {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }).catch(() => true); // unreadable: loadConfig below says why
  const out: Finding[] = [];
  if (fromEnv && !present) {
    out.push({
      ok: false,
      essential: false,
      what: "shim config",
      detail: `CONTAINERD_SHIM_DENO_CONFIG names ${fromEnv}, which does not exist, so the shim uses the defaults — ` +
        `create that file or unset the variable`,
    });
  }
  out.push(
    await probe("shim config", true, () => {
      const c = loadConfig();
      const settings = `grouping=${c.grouping} startOutput=${c.startOutput} taskApiVersion=${c.taskApiVersion} ` +
        `spareSeconds=${c.spareSeconds} execDeleteEvents=${c.execDeleteEvents}`;
      return present ? `read ${path} (${why}): ${settings}` : `no file at ${path} (${why}): defaults ${settings}`;
    }, `fix or remove the shim config file ${path}`),
  );
  out.push(...permissionFindings());
  return out;
}

/** Renders findings; the second value is the exit status. */
export function report(findings: Finding[]): [string, number] {
  const text = findings.map((f) => `${f.ok ? "ok  " : f.essential ? "FAIL" : "warn"}  ${f.what}: ${f.detail}`).join(
    "\n",
  );
  return [text + "\n", findings.some((f) => !f.ok && f.essential) ? 1 : 0];
}
