/**
 * The runtime's floor (issue 11), measured in the same run as the shims so that every target can be read both as
 * ours / Go and as its distance to what Deno allows:
 *
 * - D: an empty script run by the deno that `dist/` runs, with the shim's own flags and environment (the permission
 *   and V8 flags from `dist/BUILD-INFO.json`, the launcher's `DENO_DIR`), exec → exit;
 * - G: the Go shim's `-v`, exec → exit, interleaved with D;
 * - an idle Deno process (same deno, same flags) that only listens on a unix socket: its RSS, PSS, USS and private
 *   dirty memory after a settle time.
 *
 * @module
 */
import { join } from "node:path";
import { distDir, type Lab } from "../../tests/lab/mod.ts";
import { memoryOf } from "../../tests/lab/proc.ts";
import { firstLineReady, privateDirtyOf, timed } from "./procs.ts";
import { ENTRY_VAR, RUNTIME_FILE } from "../../src/shim/launcher.ts";
import type { FloorSamples, ProcessMemory } from "./results.ts";
import { abOrder } from "./stats.ts";

const WARMUP = 3;

/** What `dist/BUILD-INFO.json` says about how the shim runs (tools/build.ts). */
interface BuildInfoFlags {
  flavour: "bundle" | "compile";
  flags: string[];
}

/** Flags `deno run` needs besides the shim's own when they are missing (the compile flavour records only some). */
const RUN_DEFAULTS = ["--no-config", "--no-lock", "--no-remote", "--no-npm"];

/**
 * The command that runs `script` like the shim runs its own code: dist's deno (the running one for the compile
 * flavour, which has no separate runtime) with the flags the build recorded, and the launcher's code cache directory.
 */
export function floorCommand(
  info: BuildInfoFlags,
  script: string,
  dist = distDir,
  fallbackDeno = Deno.execPath(),
): { cmd: string; args: string[]; env: Record<string, string> } {
  const flags = [...info.flags];
  for (const f of RUN_DEFAULTS) if (!flags.includes(f)) flags.push(f);
  if (info.flavour === "bundle") {
    return {
      cmd: join(dist, "lib", RUNTIME_FILE),
      args: ["run", ...flags, script],
      env: { DENO_DIR: join(dist, "lib/cache"), DENO_NO_UPDATE_CHECK: "1" },
    };
  }
  return { cmd: fallbackDeno, args: ["run", ...flags, script], env: { DENO_NO_UPDATE_CHECK: "1" } };
}

async function buildInfo(): Promise<BuildInfoFlags> {
  const info = JSON.parse(await Deno.readTextFile(join(distDir, "BUILD-INFO.json")));
  if (!Array.isArray(info.flags)) throw new Error(`${distDir}/BUILD-INFO.json records no flags: rebuild`);
  return { flavour: info.flavour === "compile" ? "compile" : "bundle", flags: info.flags };
}

/** The idle listener: binds, says so, and accepts (and drops) connections until it is killed. */
const LISTENER_SCRIPT = `const l = Deno.listen({ transport: "unix", path: Deno.args[0] });
console.log("ready");
for await (const c of l) c.close();
`;

async function listenerMemory(
  lab: Lab,
  info: BuildInfoFlags,
  settleSeconds: number,
): Promise<ProcessMemory> {
  const dir = `${lab.dir}/floor`;
  await Deno.mkdir(dir, { recursive: true });
  const script = `${dir}/listener.js`, sock = `${dir}/listener.sock`;
  await Deno.writeTextFile(script, LISTENER_SCRIPT);
  await Deno.remove(sock).catch(() => {});
  // Deno.listen on a unix socket also needs net permission (the shim binds through libc and needs none).
  const c = floorCommand({ ...info, flags: ["--allow-net", ...info.flags] }, script);
  const child = new Deno.Command(c.cmd, {
    args: [...c.args, sock],
    env: c.env,
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    if (!await firstLineReady(child)) {
      throw new Error(`the idle listener did not start: ${JSON.stringify(await child.status)}`);
    }
    await new Promise((r) => setTimeout(r, settleSeconds * 1000));
    const m = await memoryOf(child.pid);
    const dirty = await privateDirtyOf(child.pid);
    if (!m || dirty === null) throw new Error("the idle listener exited before its memory was read");
    return { rssKiB: m.rssKiB, pssKiB: m.pssKiB, ussKiB: m.ussKiB, privateDirtyKiB: dirty };
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await Deno.remove(sock).catch(() => {});
  }
}

/**
 * A runner of D (an empty `deno run` like the shim's, in `lab`'s scratch directory) for phases that interleave it with
 * what they measure, so that a target and its floor see the same load.
 */
export async function emptyDenoRunner(lab: Lab): Promise<{ run: () => Promise<number>; command: string }> {
  const info = await buildInfo();
  const dir = `${lab.dir}/floor`;
  await Deno.mkdir(dir, { recursive: true });
  const empty = `${dir}/empty.js`;
  await Deno.writeTextFile(empty, "");
  const d = floorCommand(info, empty);
  return {
    command: `${d.cmd} ${d.args.join(" ")}`,
    run: async () => {
      const r = await timed(d.cmd, d.args, { env: d.env, cwd: dir });
      if (r.code !== 0) throw new Error(`floor: empty deno run: ${r.stderr}`);
      return r.ms;
    },
  };
}

/**
 * The bundle flavour's launcher (`launcher`, its text) made to run `script` instead of a command's bundle: D plus the
 * launcher's `/bin/sh` step, which a compiled shim does not have. Null when the text is not such a launcher.
 */
export function emptyLauncherScript(launcher: string, script: string): string | null {
  const entry = `"$${ENTRY_VAR}"`;
  if (!launcher.startsWith("#!/bin/sh\n") || !launcher.includes(entry)) return null;
  return launcher.replace(entry, JSON.stringify(script));
}

/**
 * Writes `dir/launcher-empty`: `shimBinary`'s launcher running `dir/empty.js` (written too) instead of a command's
 * bundle (see {@link emptyLauncherScript}). Returns its path; null for a compiled shim, which has no launcher.
 */
export async function writeEmptyLauncher(shimBinary: string, dir: string): Promise<string | null> {
  const empty = `${dir}/empty.js`;
  await Deno.writeTextFile(empty, "");
  const text = emptyLauncherScript(await Deno.readTextFile(shimBinary), empty);
  if (text === null) return null;
  const launcher = `${dir}/launcher-empty`;
  await Deno.writeTextFile(launcher, text, { mode: 0o755 });
  return launcher;
}

/**
 * A runner of L, dist's launcher running an empty script (see {@link emptyLauncherScript}), for the `start` phase to
 * time beside D; null for a compiled shim, which has no launcher.
 */
export async function emptyLauncherRunner(lab: Lab): Promise<(() => Promise<number>) | null> {
  const dir = `${lab.dir}/floor`;
  await Deno.mkdir(dir, { recursive: true });
  const launcher = await writeEmptyLauncher(lab.shimBinary, dir);
  if (launcher === null) return null;
  return async () => {
    const r = await timed(launcher, [], { cwd: dir });
    if (r.code !== 0) throw new Error(`floor: the launcher with an empty script: ${r.stderr}`);
    return r.ms;
  };
}

/** `n` interleaved samples of D and G, then the idle listener's memory. */
export async function measureFloor(
  lab: Lab,
  n: number,
  settleSeconds: number,
  progress: (msg: string) => void,
): Promise<FloorSamples> {
  const info = await buildInfo();
  const dir = `${lab.dir}/floor`;
  const d = await emptyDenoRunner(lab);
  const run = {
    deno: d.run,
    go: async () => {
      const r = await timed(lab.goShimBinary, ["-v"], { cwd: dir });
      if (r.code !== 0) throw new Error(`floor: the Go shim's -v: ${r.stderr}`);
      return r.ms;
    },
  };
  const out: FloorSamples = { emptyDeno: [], goVersion: [], emptyCommand: d.command };
  for (let i = 0; i < WARMUP + n; i++) {
    for (const side of abOrder<"go" | "deno">(i, "go", "deno")) {
      const ms = await run[side]();
      if (i >= WARMUP) (side === "go" ? out.goVersion : out.emptyDeno).push(ms);
    }
    if (i >= WARMUP && (i - WARMUP + 1) % 10 === 0) progress(`floor ${i - WARMUP + 1}/${n}`);
  }
  out.listener = await listenerMemory(lab, info, settleSeconds);
  progress(
    `floor: idle listener PSS ${(out.listener.pssKiB / 1024).toFixed(1)} MiB, private dirty ` +
      `${(out.listener.privateDirtyKiB / 1024).toFixed(1)} MiB`,
  );
  return out;
}
