/**
 * The part of `start` that runs only when no live server of the group took the container (reserve.ts): bind the
 * group's socket, hand it to a spare server of this build or spawn a new server on it, and move that server next to
 * containerd (OOM score, shim cgroup). `start` loads this module only then, so that a `start` that reuses a running
 * server loads none of it (posix_spawn, the spare hand-off, the launcher's flags). With unix_socket.ts no longer
 * loading the poller, such a `start` took 2.8 ms less on a slow day (70.0 → 67.2 ms against an empty `deno run` of
 * 55.5; bench/analysis.md, session 9).
 *
 * @example
 * ```ts
 * import { bootServer } from "./start_boot.ts";
 * declare const ctx: import("./start_boot.ts").BootContext;
 * const result = await bootServer(ctx, { kind: "absent" }); // throws when no server would take the container
 * ```
 * @module
 */
import { formatLine, logEnabled, type LogLevel } from "../log.ts";
import { SHIM_ENV, shimRunFlags } from "../permissions.ts";
import { formatGoFlags } from "../cli/flags.ts";
import { DEFAULT_SOCKET_DIR, LISTEN_BACKLOG } from "./address.ts";
import type { ShimArgs } from "./flags.ts";
import type { StartInput } from "./start_input.ts";
import type { ShimConfig } from "./config.ts";
import { reservePlace, type ReserveResult } from "./reserve.ts";
import { cstr, libc, statPath, useCallPointers } from "../sys/libc.ts";
import { O_CLOEXEC, O_NONBLOCK, O_WRONLY } from "../sys/abi.ts";
import { listenReplacingDead } from "../sys/unix_socket.ts";
import { devNull, posixSpawn } from "../sys/posix_spawn.ts";
import { serverEnv } from "./launcher.ts";
import { bundleLibDir, bundleMainPath, bundleServerPath } from "./bundle_layout.ts";
import { handToSpare, sparePath } from "./spare.ts";
import { buildId } from "./build_id.ts";
import type { StartResult } from "./start.ts";

/** The command that runs this same program as the server, with the same permissions (and its environment). */
export function serverCommand(args: string[]): { cmd: string; args: string[]; env?: Record<string, string> } {
  if (Deno.build.standalone) return { cmd: Deno.execPath(), args };
  const main = new URL(Deno.mainModule);
  if (main.protocol !== "file:") throw new Error(`cannot re-spawn the shim from ${Deno.mainModule}`);
  const path = decodeURIComponent(main.pathname);
  const libDir = bundleLibDir(path);
  // From a bundle the runtime flags are fixed; from source (development) the project's deno.json is needed.
  const flags = path.endsWith(".js")
    ? shimRunFlags("server")
    : shimRunFlags("server").filter((f) => f !== "--no-config");
  // From a bundle the server runs its own one-file bundle (js/server/server.js), or main.js in a build without one.
  const script = libDir ? serverScript(libDir) : path;
  return {
    cmd: Deno.execPath(),
    args: ["run", ...flags, script, ...args],
    env: libDir ? serverEnv(libDir) : undefined,
  };
}

/** The server's own bundle in `libDir` when the build has one, else its main.js (which serves as well). */
function serverScript(libDir: string): string {
  const own = bundleServerPath(libDir);
  try {
    if (statPath(own).isFile) return own;
  } catch { /* a build without it (another entry's) */ }
  return bundleMainPath(libDir);
}

/**
 * glibc's malloc settings for the server, unless containerd's environment sets its own `GLIBC_TUNABLES` (a no-op under
 * another libc): one arena for all threads, and 16 KiB of padding kept above the heap's top instead of 128. By default
 * each thread that allocates gets a malloc heap of its own, whose free end `malloc_trim` never returns, and the padding
 * leaves the boot's live blocks spread over more pages. A per-pod server with one container: 10.65 → 10.32 MiB private
 * dirty, with its boot as fast (bench/analysis.md, session 11; no padding at all cost the boot ~5 ms of `brk` calls,
 * and the same settings made only once the server had booted gave nothing). runc, which the server spawns, inherits
 * the variable as glibc's loader left it (it parses it in place); the containers' processes do not (runc starts them
 * with their spec's environment).
 */
export const SERVER_MALLOC_TUNABLES = { GLIBC_TUNABLES: "glibc.malloc.arena_max=1:glibc.malloc.top_pad=16384" };

/** The fd the server finds its listening socket on (`-socket-fd`). */
const SERVER_SOCKET_FD = 3;
const SIGUSR1 = 10;

/**
 * Spawns the server on the bound socket `listenFd` and returns its pid without waiting for it: the server gets the
 * socket as fd 3, /dev/null on 0–2 (it never inherits the stdout containerd reads, and logs to the bundle's fifo), a
 * session of its own, and SIGUSR1 blocked from its first instruction (Deno would open its inspector on it; see
 * src/sys/process.ts, guardInspectorSignal).
 */
function spawnServer(
  a: ShimArgs,
  config: ShimConfig,
  socket: string,
  bundle: string,
  listenFd: number,
  spare: Spare,
): number {
  const serverArgs = formatGoFlags({
    namespace: a.namespace,
    id: a.id,
    address: a.address,
    "publish-binary": a.publishBinary,
    debug: a.debug,
    socket,
    "socket-fd": String(SERVER_SOCKET_FD),
    ...(spare.path && spare.ms > 0 ? { spare: spare.path, "spare-ms": String(spare.ms) } : {}),
    ...(config.execDeleteEvents ? { "exec-delete-events": true } : {}),
  });
  const { cmd, args, env } = serverCommand(serverArgs);
  const nul = devNull();
  return posixSpawn(cmd, {
    args,
    env,
    envDefaults: SERVER_MALLOC_TUNABLES,
    cwd: bundle,
    fds: [nul, nul, nul, listenFd],
    setsid: true,
    blockedSignals: [SIGUSR1],
  });
}

/** Where spares of this build wait ("" when spares are off), and how long the group's server waits as one. */
interface Spare {
  path: string;
  ms: number;
}

/**
 * The spare socket `start` looks for and the wait it asks of the group's server (spare.ts). A server moved into a
 * shim cgroup never waits as a spare: it would keep that pod's cgroup busy after the pod is gone.
 */
async function spareFor(a: ShimArgs, config: ShimConfig, input: StartInput): Promise<Spare> {
  if (config.spareSeconds <= 0) return { path: "", ms: 0 };
  const env: Record<string, string> = {};
  for (const k of SHIM_ENV) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  const path = sparePath(input.socketDir ?? DEFAULT_SOCKET_DIR, a.address, await buildId(), env);
  return { path, ms: input.shimCgroup ? 0 : Math.round(config.spareSeconds * 1000) };
}

/** How many times `start` spawns a server when the group's socket keeps changing hands under it. */
const SPAWN_ATTEMPTS = 5;

/** Moves the server next to containerd's OOM score: containerd's own + 1, capped at 1000 (Go shim behaviour). */
async function adjustOomScore(pid: number): Promise<void> {
  const { getOomScoreAdj, setOomScoreAdj } = await import("../sys/process.ts");
  const score = Math.min(getOomScoreAdj(Deno.ppid) + 1, 1000);
  setOomScoreAdj(pid, score);
}

/**
 * Writes a line to containerd's log: the bundle's `log` fifo, which containerd reads for the shim. Not stderr:
 * containerd parses `start`'s stdout and stderr together as its answer. Nothing is written when nobody reads the fifo.
 */
function note(bundle: string, msg: string, fields: Record<string, unknown>, level: LogLevel = "info"): void {
  if (!logEnabled(level)) return;
  const C = libc();
  const fd = C.open(cstr(`${bundle}/log`), O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) return;
  const line = new TextEncoder().encode(formatLine(level, msg, fields));
  C.write(fd, line, BigInt(line.length));
  C.close(fd);
}

/** What `start` worked out before it found no server to reuse. */
export interface BootContext {
  a: ShimArgs;
  bundle: string;
  config: ShimConfig;
  input: StartInput;
  /** The group's socket path and the address containerd will dial. */
  path: string;
  address: string;
}

/**
 * Gets the container a server when reserving a place on the group's socket did not (`reserved`): binds the socket
 * (replacing a dead one) and hands it to a spare or a new server; when another `start` bound it first, asks that
 * server instead. Throws when no server would take the container after {@link SPAWN_ATTEMPTS} tries.
 */
export async function bootServer(ctx: BootContext, reserved: ReserveResult): Promise<StartResult> {
  // In the bundle `start`'s entry is one file and this module's graph has copies of what it shares with it, libc's
  // binding among them (tools/build.ts, inlineStaticImports): this copy opens libc on its own, the way start_main.ts
  // opened the entry's. Elsewhere libc is open by now and this does nothing.
  useCallPointers();
  const { a, bundle, config, input, path, address } = ctx;
  let result: StartResult | undefined;
  let spare: Spare | undefined;
  for (let attempt = 0; !result && attempt < SPAWN_ATTEMPTS; attempt++) {
    if (reserved.kind === "reserved") {
      result = { address, reused: true };
      break;
    }
    if (reserved.kind === "refused") note(bundle, "group server refused the container", { reason: reserved.reason });
    Deno.mkdirSync(input.socketDir ?? DEFAULT_SOCKET_DIR, { recursive: true, mode: 0o711 });
    // As the Go shim's `start` does: the socket is bound here and handed over (see the module comment).
    const listenFd = listenReplacingDead(path, LISTEN_BACKLOG);
    if (listenFd === undefined) {
      // Another start's server bound the path first (or an exiting one still held it): ask that one.
      reserved = reservePlace(path, a.namespace, a.id);
      continue;
    }
    let pid: number | undefined;
    let viaSpare = false;
    try {
      Deno.chmodSync(path, 0o600);
      // A spare of this build takes the group if one waits; else a new server. Either holds a reservation for `-id`
      // from the start.
      spare ??= await spareFor(a, config, input);
      if (spare.path) {
        const handoff = {
          namespace: a.namespace,
          id: a.id,
          bundle,
          socket: path,
          debug: a.debug,
          spareMs: spare.ms,
          execDeleteEvents: config.execDeleteEvents,
        };
        const h = handToSpare(spare.path, listenFd, handoff);
        if (h.kind === "adopted") {
          pid = h.pid;
          viaSpare = true;
        } else if (h.kind === "declined") note(bundle, "spare server did not take the group", { ...h });
      }
      pid ??= spawnServer(a, config, path, bundle, listenFd, spare);
    } catch (err) {
      Deno.remove(path).catch(() => {}); // nobody will ever serve it
      throw err;
    } finally {
      libc().close(listenFd); // the server holds its own copy
    }
    result = { address, reused: false, serverPid: pid, spare: viaSpare };
    try {
      await adjustOomScore(pid);
    } catch (err) {
      note(bundle, "failed to adjust the shim's oom score", { error: err }, "warn");
    }
    if (input.shimCgroup) {
      const { moveToCgroup } = await import("../sys/cgroup_move.ts");
      moveToCgroup(pid, input.shimCgroup);
    }
  }
  if (!result) {
    const why = reserved.kind === "refused" ? reserved.reason : "no server listens";
    throw new Error(`no shim server would take container ${a.id} at ${path} (${why})`);
  }
  return result;
}
