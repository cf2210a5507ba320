/**
 * Small Linux process helpers for the lab: reading `/proc`, signalling by PID after checking who the PID is, waiting
 * for conditions, running commands with a deadline, and per-process memory from `smaps_rollup`.
 *
 * Reading `/proc` needs `--allow-all` in Deno (see deno-platform.md Q10); tests, demo and benchmarks run with it.
 *
 * @example
 * ```ts
 * import { findProcesses, memoryOf } from "./proc.ts";
 * for (const p of await findProcesses((argv) => argv[0].endsWith("containerd"))) {
 *   console.log(p.pid, (await memoryOf(p.pid))?.pssKiB);
 * }
 * ```
 * @module
 */

/** A live process and its argv. */
export interface ProcessInfo {
  pid: number;
  argv: string[];
}

/** Memory figures of one process, in KiB, from `/proc/<pid>/smaps_rollup` (and `status` for threads). */
export interface MemoryInfo {
  rssKiB: number;
  pssKiB: number;
  /** Private_Clean + Private_Dirty. */
  ussKiB: number;
  /** Anonymous memory (heap, stacks, JIT code); Rss minus this is file-backed (mostly the executable's pages). */
  anonKiB: number;
  threads: number;
}

const decoder = new TextDecoder();

/** argv of `pid`, or null when it is gone or a zombie (a zombie's cmdline is empty). */
export async function readCmdline(pid: number): Promise<string[] | null> {
  try {
    const raw = decoder.decode(await Deno.readFile(`/proc/${pid}/cmdline`));
    if (raw === "") return null;
    return raw.replace(/\0$/, "").split("\0");
  } catch {
    return null;
  }
}

/** Every live (non-zombie) process for which `match(argv)` holds, sorted by PID. */
export async function findProcesses(match: (argv: string[], pid: number) => boolean): Promise<ProcessInfo[]> {
  const out: ProcessInfo[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    if (pid === Deno.pid) continue;
    const argv = await readCmdline(pid);
    if (argv && match(argv, pid)) out.push({ pid, argv });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** Parent PID of `pid`, or null when it is gone. */
export async function parentPid(pid: number): Promise<number | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(rest[1]);
  } catch {
    return null;
  }
}

/** Memory of `pid`, or null when it is gone. */
export async function memoryOf(pid: number): Promise<MemoryInfo | null> {
  try {
    const rollup = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`);
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const field = (text: string, name: string) => Number(text.match(new RegExp(`^${name}:\\s+(\\d+)`, "m"))?.[1] ?? 0);
    return {
      rssKiB: field(rollup, "Rss"),
      pssKiB: field(rollup, "Pss"),
      ussKiB: field(rollup, "Private_Clean") + field(rollup, "Private_Dirty"),
      anonKiB: field(rollup, "Anonymous"),
      threads: field(status, "Threads"),
    };
  } catch {
    return null;
  }
}

/** Sends `signal` to `pid`; false when the process is already gone. */
export function signalPid(pid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(pid, signal);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `intervalMs` until it returns true; false when `timeoutMs` passed first. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/**
 * Signals the process `pid` only while `isStill(argv)` confirms it is the one we mean (PIDs get reused), then waits
 * up to `graceMs` for it to go and SIGKILLs it after that. Returns true when it is gone.
 */
export async function terminate(
  pid: number,
  isStill: (argv: string[]) => boolean,
  graceMs = 10_000,
): Promise<boolean> {
  const alive = async () => {
    const argv = await readCmdline(pid);
    return argv !== null && isStill(argv);
  };
  if (!await alive()) return true;
  signalPid(pid, "SIGTERM");
  if (await waitFor(async () => !await alive(), graceMs)) return true;
  if (await alive()) signalPid(pid, "SIGKILL");
  return await waitFor(async () => !await alive(), 5_000);
}

/** Result of {@linkcode runCommand}. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode runCommand}. */
export interface RunOptions {
  stdin?: string | Uint8Array;
  timeoutMs?: number;
  env?: Record<string, string>;
  cwd?: string;
}

/** Thrown by {@linkcode runCommand} when the deadline passes; the child has been SIGKILLed. */
export class CommandTimeoutError extends Error {
  constructor(readonly command: string[], readonly timeoutMs: number, readonly partial: CommandResult) {
    super(`${command.join(" ")} did not finish within ${timeoutMs} ms; stderr so far: ${partial.stderr.trim()}`);
    this.name = "CommandTimeoutError";
  }
}

/** Runs `cmd args` to completion with captured output, killing it (and throwing) after `timeoutMs` (default 60 s). */
export async function runCommand(cmd: string, args: string[], opts: RunOptions = {}): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const child = new Deno.Command(cmd, {
    args,
    env: opts.env,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
  }, timeoutMs);
  try {
    if (opts.stdin !== undefined) {
      const data = typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin;
      const writer = child.stdin.getWriter();
      // The child may exit without reading all of it; its exit status is what matters then.
      await writer.write(data).catch(() => {});
      await writer.close().catch(() => {});
    }
    const out = await child.output();
    const result = { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
    if (timedOut) throw new CommandTimeoutError([cmd, ...args], timeoutMs, result);
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** Unmounts every mount point at or below `dir` (deepest first); returns the paths unmounted. */
export async function unmountBelow(dir: string): Promise<string[]> {
  const prefix = dir.replace(/\/$/, "");
  const info = await Deno.readTextFile("/proc/self/mountinfo");
  // Field 5 is the mount point, with space, tab, newline and backslash escaped as \ooo octal.
  const points = info.split("\n").filter(Boolean).map((l) =>
    l.split(" ")[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))
  ).filter((p) => p === prefix || p.startsWith(prefix + "/"));
  const done: string[] = [];
  for (const p of [...new Set(points)].sort((a, b) => b.length - a.length)) {
    let r = await runCommand("umount", [p], { timeoutMs: 10_000 });
    if (r.code !== 0) r = await runCommand("umount", ["-l", p], { timeoutMs: 10_000 });
    if (r.code === 0) done.push(p);
  }
  return done;
}
