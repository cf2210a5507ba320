/**
 * `containerd-shim-deno-v2 … start`: find or spawn the server for this container's group and print its address.
 *
 * containerd runs this with the bundle as cwd, reads the combined stdout+stderr until EOF, and dials what it got.
 * So this path is kept lean (no protobufjs, no ttrpc, no task code), and the server it spawns never inherits our
 * stdout/stderr. A new server gets the group's socket already bound and listening, as fd 3 (the Go shim does the
 * same), and `start` returns without waiting for it: containerd's dial waits in the listen backlog until the server
 * accepts, and a server that dies takes the only copy of the listener with it (the dial is refused; the next `start`
 * replaces the dead socket).
 *
 * A running server of the group is reused only after it reserved a place for this container (reserve.ts); one that
 * is exiting refuses, and a new server is spawned instead. A new group goes to a spare server of this build when one
 * waits (a server whose containers are all gone, spare.ts): the socket is handed to it instead of a new process.
 *
 * What is printed depends on the containerd: a BootstrapResult to 2.3+, JSON with Task API version 3 to 2.0–2.2, a
 * plain address to 1.6 and 1.7 (1.7 fails on version 3), unless the shim config says otherwise.
 *
 * @module
 */
import { formatLine, logEnabled, type LogLevel } from "../log.ts";
import { SHIM_ENV, shimRunFlags } from "../permissions.ts";
import { formatGoFlags } from "../cli/flags.ts";
import { DEFAULT_SOCKET_DIR, LISTEN_BACKLOG, socketAddress, socketPath } from "./address.ts";
import type { ShimArgs } from "./flags.ts";
import { decodeStartInput, type StartInput } from "./start_input.ts";
import { groupKey } from "./grouping.ts";
import { loadConfig, type ShimConfig } from "./config.ts";
import { reservePlace } from "./reserve.ts";
import { type ContainerdVersion, containerdVersion } from "./containerd_version.ts";
import { cstr, libc } from "../sys/libc.ts";
import { O_CLOEXEC, O_NONBLOCK, O_WRONLY } from "../sys/abi.ts";
import { writeFileSync } from "../sys/fdio.ts";
import { listenReplacingDead } from "../sys/unix_socket.ts";
import { devNull, posixSpawn } from "../sys/posix_spawn.ts";
import { bundleLibDir, serverEnv } from "./launcher.ts";
import { handToSpare, sparePath } from "./spare.ts";
import { buildId } from "./build_id.ts";

/** What `start` prints and writes, plus what tests like to know. */
export interface StartResult {
  address: string;
  reused: boolean;
  serverPid?: number;
  /** The server is a spare that took the group (spare.ts), not one spawned for it. */
  spare?: boolean;
  /** containerd 2.3+ sent BootstrapParams: answer with a BootstrapResult. */
  bootstrap?: boolean;
  /** The configured answer for 1.x–2.2 and the Task API version to report. */
  format?: "plain" | "json";
  version?: 2 | 3;
}

/**
 * Everything on stdin, read synchronously: containerd writes the options (or nothing) and closes the pipe. `start`
 * is a short-lived command, and the first use of `Deno.stdin.readable` alone costs 6–13 ms here (stream machinery
 * and a blocking-pool thread), against 0.1 ms for `readSync`. A terminal (someone typing the command) has no input.
 */
export function readStdinSync(stdin: { readSync(p: Uint8Array): number | null; isTerminal(): boolean }): Uint8Array {
  if (stdin.isTerminal()) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(64 * 1024);
  let total = 0;
  for (;;) {
    const n = stdin.readSync(buf);
    if (!n) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

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
  return { cmd: Deno.execPath(), args: ["run", ...flags, path, ...args], env: libDir ? serverEnv(libDir) : undefined };
}

/** The fd the server finds its listening socket on (`-socket-fd`). */
const SERVER_SOCKET_FD = 3;
const SIGUSR1 = 10;

/**
 * Spawns the server on the bound socket `listenFd` and returns its pid without waiting for it: the server gets the
 * socket as fd 3, /dev/null on 0–2 (it never inherits the stdout containerd reads, and logs to the bundle's fifo), a
 * session of its own, and SIGUSR1 blocked from its first instruction (Deno would open its inspector on it; see
 * src/sys/process.ts, guardInspectorSignal).
 */
function spawnServer(a: ShimArgs, socket: string, bundle: string, listenFd: number, spare: Spare): number {
  const serverArgs = formatGoFlags({
    namespace: a.namespace,
    id: a.id,
    address: a.address,
    "publish-binary": a.publishBinary,
    debug: a.debug,
    socket,
    "socket-fd": String(SERVER_SOCKET_FD),
    ...(spare.path && spare.ms > 0 ? { spare: spare.path, "spare-ms": String(spare.ms) } : {}),
  });
  const { cmd, args, env } = serverCommand(serverArgs);
  const nul = devNull();
  return posixSpawn(cmd, {
    args,
    env,
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
function spareFor(a: ShimArgs, config: ShimConfig, input: StartInput): Spare {
  if (config.spareSeconds <= 0) return { path: "", ms: 0 };
  const env: Record<string, string> = {};
  for (const k of SHIM_ENV) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  const path = sparePath(input.socketDir ?? DEFAULT_SOCKET_DIR, a.address, buildId(), env);
  return { path, ms: input.shimCgroup ? 0 : Math.round(config.spareSeconds * 1000) };
}

/** How many times `start` spawns a server when the group's socket keeps changing hands under it. */
const SPAWN_ATTEMPTS = 5;

/**
 * The answer containerd gets: format and Task API version. `auto` (the default) reports version 3 to containerd 2.x
 * and the plain address (version 2) to 1.6 and 1.7; containerd 1.6 is recognised without asking (it sets no
 * GRPC_ADDRESS), 1.7 and 2.0–2.2 by containerd's own version (`version()`, cached), 2.3+ by its BootstrapParams.
 */
export async function chooseAnswer(
  config: ShimConfig,
  input: StartInput,
  env: { grpcAddress?: string },
  version: () => Promise<ContainerdVersion | undefined>,
): Promise<{ format: "plain" | "json"; version: 2 | 3; containerd?: ContainerdVersion }> {
  const plain = { format: config.startOutput, version: 2 as const };
  if (input.bootstrap) {
    // 2.3+: a BootstrapResult either way; its version field is what matters.
    return { format: config.startOutput, version: config.taskApiVersion === 2 ? 2 : 3 };
  }
  if (config.taskApiVersion === 3) return { format: "json", version: 3 };
  if (config.taskApiVersion === 2 || !env.grpcAddress) return plain;
  const v = await version();
  if (v && v.major >= 2) return { format: "json", version: 3, containerd: v };
  return { ...plain, containerd: v };
}

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

/** Runs `start` and returns what it printed. */
export async function start(a: ShimArgs, stdin: Uint8Array): Promise<StartResult> {
  if (!a.namespace) throw new Error("shim namespace cannot be empty");
  if (!a.id) throw new Error("shim id cannot be empty");
  const bundle = Deno.cwd();
  // Small files, read and written synchronously: no blocking-pool thread has to start for a few hundred bytes.
  const input: StartInput = decodeStartInput(stdin, a.id, a.namespace);
  const spec = JSON.parse(Deno.readTextFileSync(`${bundle}/config.json`)) as { annotations?: Record<string, string> };
  const config = loadConfig(input.configPath);
  const key = groupKey(config, spec.annotations ?? {}, a.id, a.namespace);
  const path = socketPath(a.address, key.namespace, key.group, input.socketDir ?? DEFAULT_SOCKET_DIR);
  const address = socketAddress(path);
  let result: StartResult | undefined;
  // A synchronous exchange over libc: Deno.connect plus a timeout timer made the first `setTimeout` load Deno's Node
  // timers module, ~7 ms of every `start` that reuses a server.
  let reserved = reservePlace(path, a.namespace, a.id);
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
      spare ??= spareFor(a, config, input);
      if (spare.path) {
        const handoff = { namespace: a.namespace, id: a.id, bundle, socket: path, debug: a.debug, spareMs: spare.ms };
        const h = handToSpare(spare.path, listenFd, handoff);
        if (h.kind === "adopted") {
          pid = h.pid;
          viaSpare = true;
        } else if (h.kind === "declined") note(bundle, "spare server did not take the group", { ...h });
      }
      pid ??= spawnServer(a, path, bundle, listenFd, spare);
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
  // Through libc (start has it open anyway): a process's first Deno.writeTextFileSync costs ~0.75 ms.
  writeFileSync(`${bundle}/address`, new TextEncoder().encode(address));
  const grpcAddress = Deno.env.get("GRPC_ADDRESS");
  const answer = await chooseAnswer(config, input, { grpcAddress }, () => containerdVersion(a.publishBinary));
  result.bootstrap = input.bootstrap !== undefined;
  result.format = answer.format;
  result.version = answer.version;
  return result;
}
