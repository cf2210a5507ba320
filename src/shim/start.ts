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
 * A running server of the group is reused only after a place was reserved on it for this container: through files
 * when the server holds its group's live file (reserve_file.ts: no libc, no round trip), else over its socket
 * (reserve.ts), where one that is exiting refuses, and a new server is spawned instead. A new group goes to a spare server of this build when one
 * waits (a server whose containers are all gone, spare.ts): the socket is handed to it instead of a new process.
 * That second half lives in start_boot.ts and loads only when needed: a `start` that reuses a server loads neither it
 * nor the poller (unix_socket.ts's synchronous exchange does without it).
 *
 * What is printed depends on the containerd: a BootstrapResult to 2.3+, JSON with Task API version 3 to 2.0–2.2, a
 * plain address to 1.6 and 1.7 (1.7 fails on version 3), unless the shim config says otherwise.
 *
 * @module
 */
import type { ShimArgs } from "./flags.ts";
import { DEFAULT_SOCKET_DIR, socketAddress, socketPath } from "./address.ts";
import { decodeStartInput, type StartInput } from "./start_input.ts";
import { groupKey } from "./grouping.ts";
import { loadConfig, type ShimConfig } from "./config.ts";
import { type ContainerdVersion, containerdVersion } from "./containerd_version.ts";
import { groupFiles, reserveByFile } from "./reserve_file.ts";
import { stateDir } from "./state_dir.ts";

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

/** Runs `start` and returns what it printed. */
export async function start(a: ShimArgs, stdin: Uint8Array): Promise<StartResult> {
  if (!a.namespace) throw new Error("shim namespace cannot be empty");
  if (!a.id) throw new Error("shim id cannot be empty");
  const bundle = Deno.cwd();
  // Small files, read and written synchronously: no blocking-pool thread has to start for a few hundred bytes.
  const input: StartInput = decodeStartInput(stdin, a.id, a.namespace);
  const spec = JSON.parse(Deno.readTextFileSync(`${bundle}/config.json`)) as { annotations?: Record<string, string> };
  const config = loadConfig(input.configPath);
  const key = await groupKey(config, spec.annotations ?? {}, a.id, a.namespace);
  const path = socketPath(a.address, key.namespace, key.group, input.socketDir ?? DEFAULT_SOCKET_DIR);
  const address = socketAddress(path);
  const grpcAddress = Deno.env.get("GRPC_ADDRESS");
  const answerNow = () =>
    chooseAnswer(config, input, { grpcAddress }, () => containerdVersion(a.publishBinary, undefined, grpcAddress));
  // Whether the running server takes the container or a new one is booted on the same socket path, the address is
  // this one (a stale file is harmless if `start` fails: `delete` only removes a socket nothing listens on).
  const bundleAddress = `${bundle}/address`;
  if (reserveByFile(groupFiles(stateDir(), path), a.namespace, a.id)) {
    const answer = await answerNow();
    writeSmallFile(bundleAddress, address);
    return { address, reused: true, ...answerFields(input, answer) };
  }
  // No live server took it through files: ask over the socket, a synchronous exchange over libc (Deno.connect needs
  // `--allow-net`; with a timeout timer it also loaded Deno's Node timers module, ~7 ms). Sent first, and read once the
  // answer to give containerd is known: the server handles the request (~1 ms) while this process looks up the
  // containerd version.
  const [{ sendReserve }, { useCallPointers }] = await Promise.all([import("./reserve.ts"), import("../sys/libc.ts")]);
  useCallPointers(); // a short-lived command: no call trampolines to compile (libc.ts)
  const reservation = sendReserve(path, a.namespace, a.id);
  const answer = await answerNow();
  writeSmallFile(bundleAddress, address);
  const reserved = reservation.finish();
  let result: StartResult;
  if (reserved.kind === "reserved") result = { address, reused: true };
  else {
    // Only plain data crosses: in the bundle the boot path runs on copies of the modules it shares with this one.
    const { bootServer } = await import("./start_boot.ts");
    result = await bootServer({ a, bundle, config, input, path, address }, reserved);
  }
  return { ...result, ...answerFields(input, answer) };
}

function answerFields(input: StartInput, answer: { format: "plain" | "json"; version: 2 | 3 }) {
  return { bootstrap: input.bootstrap !== undefined, format: answer.format, version: answer.version };
}

/**
 * Writes `text` to `path` over what is there, then cuts it to length. Not O_TRUNC: truncating a file that has data
 * frees its blocks and the write allocates them again, which ext4 journals (0.5 ms of `open` when a `start` writes
 * `address` over the one the last `start` in the same bundle left; never a problem on tmpfs).
 */
export function writeSmallFile(path: string, text: string): void {
  const bytes = new TextEncoder().encode(text);
  const f = Deno.openSync(path, { write: true, create: true });
  try {
    for (let off = 0; off < bytes.length;) off += f.writeSync(bytes.subarray(off));
    f.truncateSync(bytes.length);
  } finally {
    f.close();
  }
}
