/**
 * The one permission set the shim runs under, in every subcommand and in both build flavours (`deno task build`'s
 * launcher and `deno task compile`'s executable embed exactly these flags). Why each flag is needed is in the README.
 *
 * FFI is granted (reaping, SCM_RIGHTS, /proc reads need libc), and FFI can do anything the process can, so these
 * flags guard against accidents, not against hostile code: the shim is trusted code, as containerd's Go shim is.
 *
 * @module
 */

/** Environment variables the shim reads: containerd's shim contract plus our own config override. */
export const SHIM_ENV = [
  "NAMESPACE",
  "TTRPC_ADDRESS",
  "GRPC_ADDRESS",
  "MAX_SHIM_VERSION",
  "SCHED_CORE",
  "CONTAINERD_SHIM_DENO_CONFIG",
  "CONTAINERD_SHIM_DENO_DEBUG",
  // where `start` caches containerd's version (src/shim/containerd_version.ts), and the server's timers for tests
  "CONTAINERD_SHIM_DENO_STATE_DIR",
  "CONTAINERD_SHIM_DENO_RESERVATION_MS",
  "CONTAINERD_SHIM_DENO_IDLE_EXIT_MS",
];

/** One permission the shim runs under: the flag, what it is for, and why it cannot be narrower. */
export interface PermissionGrant {
  /** The `deno run` / `deno compile` flag. */
  flag: string;
  /** What the running process is asked (`Deno.permissions.querySync`) to show it holds this grant. */
  probe: Deno.PermissionDescriptor;
  /** What the shim uses it for. */
  why: string;
  /** The configuration that keeps it unscoped; undefined when it is scoped. */
  broadBecause?: string;
}

/**
 * The permission set, in flag order: the flags (both flavours), the README's table and `check`'s manifest
 * (src/shim/manifest.ts) are all read from this one list.
 */
export const SHIM_PERMISSIONS: readonly PermissionGrant[] = [
  {
    flag: "--allow-ffi",
    probe: { name: "ffi" },
    why: "libc: PR_SET_CHILD_SUBREAPER, waitid/waitpid, recvmsg with SCM_RIGHTS (console socket), mount, " +
      "nonblocking fifo opens, epoll, signal masks, and reads of /proc and /sys (Deno refuses those without -A)",
    broadBecause: "Deno checks pointer operations (UnsafePointer.of, UnsafePointerView) against the unscoped ffi " +
      "permission: a flag scoped to libc's path lets dlopen succeed and then fails the first struct access",
  },
  {
    flag: "--allow-run",
    probe: { name: "run" },
    why: "runc (create, start, exec, kill, delete…), binary:// logging drivers, and the server `start` spawns",
    broadBecause: "Options.binary_name (a runc wrapper named per container) and binary:// log URIs name any program",
  },
  {
    flag: "--allow-read",
    probe: { name: "read" },
    why: "bundles (config.json, options.json, pid files, runc's log.json), stdio fifos, the shim config",
    broadBecause: "the CRI config_path and CONTAINERD_SHIM_DENO_CONFIG, checkpoint/restore image paths and " +
      "containerd's root/state directories (set in its config) are paths named at run time",
  },
  {
    flag: "--allow-write",
    probe: { name: "write" },
    why: "bundles (options.json, pid files), stdio fifos, file:// logs, checkpoint images, the shim socket",
    broadBecause: "file:// log URIs and checkpoint image/work paths name any file",
  },
  {
    flag: `--allow-env=${SHIM_ENV.join(",")}`,
    probe: { name: "env", variable: SHIM_ENV[0] },
    why: "containerd's shim contract (NAMESPACE, TTRPC_ADDRESS, GRPC_ADDRESS, MAX_SHIM_VERSION, SCHED_CORE) and " +
      "our config override and debug switch; where `start` caches containerd's version, and the server's " +
      "reservation and idle timers (tests shorten them)",
  },
];

/** Permissions the shim must not hold (the manifest shows they are absent). */
export const SHIM_WITHOUT: readonly { flag: string; probe: Deno.PermissionDescriptor }[] = [
  // The shim's two unix sockets (its own, containerd's ttrpc socket) are served and reached through libc
  // (src/sys/unix_stream.ts), so any TCP, UDP or unix socket use through Deno's APIs is denied.
  { flag: "--allow-net", probe: { name: "net" } },
  { flag: "--allow-sys", probe: { name: "sys" } },
  { flag: "--allow-import", probe: { name: "import" } },
  { flag: "--allow-env (unscoped)", probe: { name: "env" } },
];

/** The `deno run` flags of the shim, in a stable order. */
export function shimPermissionFlags(): string[] {
  return ["--no-prompt", ...SHIM_PERMISSIONS.map((p) => p.flag)];
}

/**
 * V8 settings of the shim, embedded in both flavours. `--max-semi-space-size=1` caps the young generation at 1 MiB
 * per semi-space: a shim allocates little, and the default lets the young generation grow by several MiB of RSS that a
 * per-node server would carry for nothing (measured over 10,000 execs: the step disappears, the heap stays flat).
 * `--expose-gc` gives the server `gc()`, which `src/shim/heap.ts` runs every few hundred released processes and
 * once whenever the server goes quiet after work: without it V8 lets promoted garbage pile up and RSS creeps by
 * ~500 B per exec. `--no-memory-reducer`: V8's memory reducer ran a full collection on its own timer about 30 s after
 * a server started (~30 ms of CPU on the main thread and two workers, in the middle of an idle node; 37–39 ms in the
 * 20–40 s window of an idle server against 7–9 ms without it, measured twice each); the heap keeper's collection when
 * quiet does that job at a time the server chooses.
 *
 * `--no-turbofan --no-maglev`: the shim's JS runs in V8's interpreter and Sparkplug baseline code, never in the two
 * optimizing compilers. What a node server kept growing by over a churn of container lifecycles (+14.6 MiB RSS in 300,
 * issue 14) was their memory, not the containers': the executable's pages holding Maglev and TurboFan faulted in as
 * more functions tiered up (+4.3 MiB), their compile zones freed into the malloc arenas of V8's two worker threads and
 * kept there (+2.2 MiB, 90–94% of those arenas free in `malloc_info`, fragmented, so no trim threshold returns it),
 * and optimized code (+0.8 MiB), still creeping at lifecycle 300. Without them those three grow < 1 MiB in all, and the
 * peak is +6–7 MiB, JS garbage up to the heap keeper's next collection (bench/analysis.md, issue 14). The cost is CPU
 * in long hot loops: over 30,000 sequential Connect calls the server used 16% more CPU (1073 → 1243 ms per 10,000),
 * over its first 5,000 29% less (1560 → 1100), as it compiles nothing; over the churn, 5% more.
 */
export const SHIM_V8_FLAGS = [
  "--v8-flags=--max-semi-space-size=1,--expose-gc,--no-memory-reducer,--no-turbofan,--no-maglev",
];

/**
 * V8 settings of the short-lived commands of the bundle flavour (`start`, `delete`, and what people type): the
 * server's, plus `--no-lazy` and `--no-sparkplug`.
 *
 * `--no-lazy`: V8 compiles a function on its first call, and Deno's code cache holds only what was compiled before it
 * was written, so every `start` and `delete` compiled each function it ran, again; with `--no-lazy` all of them come
 * from the cache. Side by side: `start` with a server running 52.3 → 47.1 ms and `delete` 44.2 → 40.5 ms against an
 * empty `deno run` of 31.8 ms. Not for the server: there it cost 1.2 MiB of private dirty memory for 15–20 ms of its
 * boot (bench/analysis.md, session 6); the server reads no code cache at all ({@linkcode SERVER_RUN_FLAGS}).
 *
 * `--no-sparkplug`: a loop run a few dozen times (the socket name's SHA-256, libc's first calls) made V8 compile
 * baseline code, and a process's first baseline compile cost ~1 ms: hashing the socket name took 1.5 ms the first time
 * and 0.5 without it. A `start` reusing a server spent 1.3 ms less (30 pairs, bench/analysis.md, session 12). The
 * server keeps Sparkplug, whose code its hot RPC paths run in.
 */
export const COMMAND_V8_FLAGS = SHIM_V8_FLAGS.map((f) =>
  f.startsWith("--v8-flags=") ? `${f},--no-lazy,--no-sparkplug` : f
);

/**
 * The server's flags beyond the permissions and V8's: no V8 code cache. The server compiles lazily, so the cache holds
 * little more than each module's top level, and its boot was no faster with it (`bench/ab_server.ts`, 6 pairs: from
 * `start`'s exit to the first answer 90.8 against 91.2 ms); but reading it kept the cache's database pages in the
 * malloc heap for the life of the server: 0.35 MiB more private dirty memory per server (bench/analysis.md, session
 * 11).
 */
export const SERVER_RUN_FLAGS = ["--no-code-cache"];

/**
 * The complete `deno run` flags of the shim when it runs from a bundle: the launcher written by `deno task build`
 * (`command`: what containerd runs, `start` and `delete`), and `start` spawning itself as the server (`server`, with
 * {@linkcode SERVER_RUN_FLAGS}). `--no-config` and `--no-lock`: containerd runs the shim with the bundle directory as
 * cwd, where no deno.json or deno.lock must be looked up; `--no-remote` and `--no-npm`: the bundle is self-contained
 * and must never resolve or fetch anything.
 */
export function shimRunFlags(role: "command" | "server"): string[] {
  const v8 = role === "command" ? COMMAND_V8_FLAGS : SHIM_V8_FLAGS;
  const own = role === "server" ? SERVER_RUN_FLAGS : [];
  return [...shimPermissionFlags(), ...v8, "--no-config", "--no-lock", "--no-remote", "--no-npm", ...own];
}
