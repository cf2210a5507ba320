/**
 * Temporarily selects our shim's grouping mode through its host-wide config file
 * (`/etc/containerd/containerd-shim-deno.json`; containerd's environment is fixed at lab start, so
 * `$CONTAINERD_SHIM_DENO_CONFIG` cannot be used). The file is read by the `start` subcommand only, so it needs to
 * exist only while containers are being started; every other test on the host assumes the default (`pod`), which is
 * why the window is kept short and the previous state is always put back:
 *
 * - writes are atomic (temporary file + rename), so a concurrent `start` never reads half a file;
 * - the previous file (content and mode) is restored, or the file removed if there was none;
 * - a journal next to the lab records the previous state before the write, so a run killed inside the window is
 *   repaired by the next run ({@linkcode repairShimConfig});
 * - SIGINT/SIGTERM inside the window restore before exiting.
 *
 * @example
 * ```ts
 * import { withShimConfig } from "./shim_config.ts";
 * await withShimConfig({ grouping: "node" }, "/tmp/benchlab", async () => {
 *   // ctr run -d … : these containers join the node-wide server
 * });
 * ```
 * @module
 */
import { dirname } from "node:path";

/** Where our shim looks for its config when neither CRI nor the environment names one. */
export const SHIM_CONFIG_PATH = "/etc/containerd/containerd-shim-deno.json";

/** What was there before we wrote. */
interface Journal {
  path: string;
  existed: boolean;
  content?: string;
  mode?: number;
}

function journalPath(labDir: string): string {
  return `${labDir}/shim-config.journal.json`;
}

async function writeAtomic(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${dirname(path)}/.${path.split("/").pop()}.bench-tmp`;
  await Deno.writeTextFile(tmp, content, { mode });
  await Deno.chmod(tmp, mode); // the umask may have narrowed `mode`
  await Deno.rename(tmp, path);
}

async function restore(j: Journal): Promise<void> {
  if (j.existed) await writeAtomic(j.path, j.content ?? "", j.mode ?? 0o644);
  else await Deno.remove(j.path).catch((e) => e instanceof Deno.errors.NotFound ? undefined : Promise.reject(e));
}

/** Puts back what a run killed inside a config window left behind; true when something had to be repaired. */
export async function repairShimConfig(labDir: string): Promise<boolean> {
  let j: Journal;
  try {
    j = JSON.parse(await Deno.readTextFile(journalPath(labDir)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
  await restore(j);
  await Deno.remove(journalPath(labDir));
  return true;
}

/**
 * Runs `fn` while `path` (default {@linkcode SHIM_CONFIG_PATH}) holds `config`, then restores the previous state,
 * whatever `fn` does.
 */
export async function withShimConfig<T>(
  config: Record<string, unknown>,
  labDir: string,
  fn: () => Promise<T>,
  path = SHIM_CONFIG_PATH,
): Promise<T> {
  const before = await Deno.stat(path).catch(() => null);
  const j: Journal = before
    ? { path, existed: true, content: await Deno.readTextFile(path), mode: (before.mode ?? 0o644) & 0o7777 }
    : { path, existed: false };
  await Deno.mkdir(labDir, { recursive: true });
  await Deno.writeTextFile(journalPath(labDir), JSON.stringify(j));
  const onSignal = () => {
    restore(j).then(() => Deno.remove(journalPath(labDir))).finally(() => Deno.exit(130));
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  try {
    await Deno.mkdir(dirname(path), { recursive: true });
    await writeAtomic(path, JSON.stringify(config) + "\n", 0o644);
    return await fn();
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    await restore(j);
    await Deno.remove(journalPath(labDir));
  }
}
