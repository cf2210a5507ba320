/**
 * What a test run leaves behind on the host, and its removal (used by `tools/test.ts`).
 *
 * Other checkouts of this project may run their own labs and tests on the same machine at the same time, so only
 * what belongs to this run counts:
 * - processes started during the run whose argv or executable names one of the run's marks, and their descendants (this checkout's `dist/`, its lab directories,
 *   the run's private temp directory), or whose `TTRPC_ADDRESS` does (a shim server started by our lab's containerd);
 * - runc state directories (`/run/containerd/runc/<ns>/<id>`) that appeared during the run and whose `state.json`
 *   names a mark (the bundle or rootfs lives in our lab or our temp directory); their container is still running or
 *   at least its state is;
 * - shim sockets in `/run/containerd/s` that appeared during the run and are served by one of our processes, or by
 *   nobody while one of our shim servers was seen with it as its `-socket` during the run ({@linkcode SocketWatch});
 * - mounts at or below a mark;
 * - anything left in the run's private temp directory (`TMPDIR` of every test process).
 *
 * @module
 */
import { basename } from "node:path";
import { findProcesses, parentPid, readCmdline, runCommand, terminate } from "../tests/lab/proc.ts";
import { SPARE_PROCESS_NAME } from "../src/shim/spare.ts";
import { DEFAULT_SPARE_SECONDS } from "../src/shim/config.ts";

/** How long a run's spare servers may take to exit by themselves (their wait, and a margin). */
export const SPARE_EXIT_MS = (DEFAULT_SPARE_SECONDS + 2) * 1000;

export const RUNC_ROOT = "/run/containerd/runc";
export const SOCKET_DIR = "/run/containerd/s";

/** What existed before the run, so that only what appeared during it is attributed to it. */
export interface Snapshot {
  runcStates: Set<string>;
  sockets: Set<string>;
  /** Clock ticks after boot when the snapshot was taken (a process started before it is not the run's). */
  since: number;
}

/** One thing left behind. */
export interface Leftover {
  kind: "process" | "container" | "socket" | "mount" | "temp";
  /** Absolute path, or `pid <n>: argv`. */
  what: string;
  pid?: number;
  /** For containers: runc's root and the container id. */
  runc?: { root: string; id: string };
}

/** Where to look and what belongs to the run. */
export interface Scope {
  /** Path prefixes that mark something as the run's (no trailing slash needed). */
  marks: string[];
  /** The run's private temp directory; everything inside it is a leftover (the directory itself stays). */
  tempDir: string;
  /** PIDs never to count (the runner and its ancestors). */
  ignorePids: Set<number>;
  /** Also ignore the lab's containerd daemons (SHIM_KEEP_LAB=1 keeps them on purpose). */
  keepLab?: boolean;
}

async function listDir(path: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(path)) out.push(e.name);
  } catch { /* missing: nothing there */ }
  return out.sort();
}

async function runcStateDirs(): Promise<string[]> {
  const out: string[] = [];
  for (const ns of await listDir(RUNC_ROOT)) {
    for (const id of await listDir(`${RUNC_ROOT}/${ns}`)) out.push(`${RUNC_ROOT}/${ns}/${id}`);
  }
  return out;
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks after boot; null when it is gone. */
export async function startTime(pid: number | "self"): Promise<number | null> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => null);
  if (stat === null) return null;
  // The command name is in parentheses and may contain spaces: fields after it start at 3 (state).
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
}

/** Records what exists now. */
export async function snapshot(): Promise<Snapshot> {
  // A process started in this very tick is as new as this one: the snapshot counts from the runner's own start.
  return {
    runcStates: new Set(await runcStateDirs()),
    sockets: new Set((await listDir(SOCKET_DIR)).map((n) => `${SOCKET_DIR}/${n}`)),
    since: (await startTime("self")) ?? 0,
  };
}

/** The PIDs from `pid` up to init: a runner never counts its own ancestry. */
export async function ancestors(pid: number): Promise<Set<number>> {
  const out = new Set<number>();
  for (let p: number | null = pid; p !== null && p > 1 && !out.has(p);) {
    out.add(p);
    const stat: string | null = await Deno.readTextFile(`/proc/${p}/stat`).catch(() => null);
    p = stat === null ? null : Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  }
  return out;
}

function mentions(text: string, marks: string[]): boolean {
  return marks.some((m) => text.includes(m));
}

function isLabDaemon(argv: string[]): boolean {
  return basename(argv[0]) === "containerd" && argv[1] === "--config";
}

/** True when process `pid` (with `argv`) is the run's: started during it, and naming one of its marks. */
async function ownedProcess(pid: number, argv: string[], scope: Scope, since: number): Promise<boolean> {
  if (scope.ignorePids.has(pid)) return false;
  const started = await startTime(pid);
  if (started === null || started < since) return false;
  if (scope.keepLab && isLabDaemon(argv)) return false;
  if (mentions(argv.join(" "), scope.marks)) return true;
  const exe = await Deno.readLink(`/proc/${pid}/exe`).catch(() => "");
  if (exe && mentions(exe, scope.marks)) return true;
  const env = await Deno.readTextFile(`/proc/${pid}/environ`).catch(() => "");
  const ttrpc = env.split("\0").find((e) => e.startsWith("TTRPC_ADDRESS="));
  return ttrpc !== undefined && mentions(ttrpc, scope.marks);
}

/** Listening unix sockets by path → inode, from /proc/net/unix. */
export async function listeningSockets(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const text = await Deno.readTextFile("/proc/net/unix").catch(() => "");
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening.
    if (f.length >= 8 && (parseInt(f[3], 16) & 0x10000) !== 0) out.set(f.slice(7).join(" "), f[6]);
  }
  return out;
}

/** PIDs holding a descriptor of each socket inode in `inodes`. */
async function socketHolders(inodes: Set<string>): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  if (inodes.size === 0) return out;
  for (const name of await listDir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    for (const fd of await listDir(`/proc/${name}/fd`)) {
      const link = await Deno.readLink(`/proc/${name}/fd/${fd}`).catch(() => "");
      const m = link.match(/^socket:\[(\d+)\]$/);
      if (m && inodes.has(m[1])) out.set(m[1], [...(out.get(m[1]) ?? []), Number(name)]);
    }
  }
  return out;
}

function mountPoints(): string[] {
  const info = Deno.readTextFileSync("/proc/self/mountinfo");
  return info.split("\n").filter(Boolean).map((l) =>
    l.split(" ")[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))
  );
}

/** The `-socket` argument of a shim server's argv, if any. */
function socketArg(argv: string[]): string | undefined {
  const i = argv.findIndex((a) => a === "-socket" || a === "--socket");
  if (i >= 0) return argv[i + 1];
  return argv.find((a) => a.startsWith("-socket=") || a.startsWith("--socket="))?.split("=").slice(1).join("=");
}

/**
 * Watches, during the run, which shim sockets our servers listen on (their `-socket` argument), so that a socket file
 * left behind without a server afterwards can be told apart from other checkouts' sockets.
 */
export class SocketWatch {
  readonly owned = new Set<string>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #busy = false;

  constructor(readonly before: Snapshot, readonly scope: Scope, readonly intervalMs = 1000) {}

  start(): void {
    this.#timer = setInterval(() => void this.scan(), this.intervalMs);
  }

  /** One look at the running processes. */
  async scan(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (const p of await findProcesses((argv) => socketArg(argv) !== undefined)) {
        const sock = socketArg(p.argv)!;
        if (!this.owned.has(sock) && await ownedProcess(p.pid, p.argv, this.scope, this.before.since)) {
          this.owned.add(sock);
        }
      }
    } finally {
      this.#busy = false;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Everything of the run that is still there; `ownedSockets`: sockets our servers were seen with during the run. */
/**
 * Waits (up to `maxMs`) until no server of this run is still waiting as a spare (src/shim/spare.ts: `comm` is
 * `shim-spare` for up to `spareSeconds` after its last container went): such a server exits by itself, and counting
 * it as left behind only says that the run ended within that window (a run of a few harness files did, reporting 3–6
 * leftovers). Returns how many were still there at the end.
 */
export async function waitForSpares(before: Snapshot, scope: Scope, maxMs: number): Promise<number> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    let spares = 0;
    for (const p of await findProcesses(() => true)) {
      const comm = await Deno.readTextFile(`/proc/${p.pid}/comm`).catch(() => "");
      if (comm.trim() === SPARE_PROCESS_NAME && await ownedProcess(p.pid, p.argv, scope, before.since)) spares++;
    }
    if (spares === 0 || Date.now() >= deadline) return spares;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function findLeftovers(
  before: Snapshot,
  scope: Scope,
  ownedSockets: Set<string> = new Set(),
): Promise<Leftover[]> {
  const out: Leftover[] = [];

  for (const dir of await runcStateDirs()) {
    if (before.runcStates.has(dir)) continue;
    const state = await Deno.readTextFile(`${dir}/state.json`).catch(() => "");
    if (!mentions(state, scope.marks)) continue;
    const root = dir.slice(0, dir.lastIndexOf("/"));
    out.push({ kind: "container", what: dir, runc: { root, id: basename(dir) } });
  }

  const procs = await findProcesses(() => true);
  const owned = new Set<number>();
  for (const p of procs) {
    if (await ownedProcess(p.pid, p.argv, scope, before.since)) {
      owned.add(p.pid);
      const sock = socketArg(p.argv);
      if (sock) ownedSockets.add(sock);
    }
  }
  // Their descendants too (a logger's `cat` under its `sh -c`, a container under its server): they name no mark.
  const parents = new Map<number, number>();
  for (const p of procs) parents.set(p.pid, await parentPid(p.pid) ?? 0);
  for (const p of procs) {
    if (owned.has(p.pid) || scope.ignorePids.has(p.pid)) continue;
    for (let q = parents.get(p.pid) ?? 0, hops = 0; q > 1 && hops < 64; q = parents.get(q) ?? 0, hops++) {
      if (owned.has(q)) {
        if (((await startTime(p.pid)) ?? 0) >= before.since) owned.add(p.pid);
        break;
      }
    }
  }
  for (const p of procs) {
    if (owned.has(p.pid)) {
      out.push({ kind: "process", what: `pid ${p.pid}: ${p.argv.join(" ").slice(0, 200)}`, pid: p.pid });
    }
  }

  const fresh = [...(await listDir(SOCKET_DIR)).map((n) => `${SOCKET_DIR}/${n}`)].filter((s) => !before.sockets.has(s));
  if (fresh.length > 0) {
    const listening = await listeningSockets();
    const inodes = new Set(fresh.map((s) => listening.get(s)).filter((i): i is string => i !== undefined));
    const holders = await socketHolders(inodes);
    for (const s of fresh) {
      const inode = listening.get(s);
      const pids = inode === undefined ? [] : holders.get(inode) ?? [];
      const ours = pids.length === 0 ? ownedSockets.has(s) : pids.some((p) => owned.has(p));
      if (ours) out.push({ kind: "socket", what: s });
    }
  }

  for (const m of mountPoints()) {
    if (scope.marks.some((mark) => m === mark || m.startsWith(mark.replace(/\/$/, "") + "/"))) {
      out.push({ kind: "mount", what: m });
    }
  }

  for (const name of await listDir(scope.tempDir)) out.push({ kind: "temp", what: `${scope.tempDir}/${name}` });
  return out;
}

/** Removes what {@linkcode findLeftovers} found: containers, then processes, mounts, sockets and temp entries. */
export async function removeLeftovers(found: Leftover[]): Promise<string[]> {
  const problems: string[] = [];
  for (const l of found.filter((l) => l.kind === "container")) {
    const r = await runCommand("runc", ["--root", l.runc!.root, "delete", "--force", l.runc!.id], { timeoutMs: 20_000 })
      .catch((e) => ({ code: 1, stdout: "", stderr: String(e) }));
    if (r.code !== 0 && await Deno.lstat(l.what).then(() => true, () => false)) {
      problems.push(`runc delete --force ${l.runc!.id}: ${r.stderr.trim()}`);
    }
  }
  await Promise.all(
    found.filter((l) => l.kind === "process").map(async (l) => {
      const argv = await readCmdline(l.pid!);
      if (argv === null) return;
      const same = argv.join("\0");
      if (!await terminate(l.pid!, (a) => a.join("\0") === same, 3_000)) problems.push(`${l.what} would not exit`);
    }),
  );
  const mounts = found.filter((l) => l.kind === "mount").map((l) => l.what).sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    let r = await runCommand("umount", [m], { timeoutMs: 10_000 });
    if (r.code !== 0) r = await runCommand("umount", ["-l", m], { timeoutMs: 10_000 });
    if (r.code !== 0) problems.push(`umount ${m}: ${r.stderr.trim()}`);
  }
  for (const l of found.filter((l) => l.kind === "socket" || l.kind === "temp")) {
    await Deno.remove(l.what, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) problems.push(`remove ${l.what}: ${e.message}`);
    });
  }
  return problems;
}
