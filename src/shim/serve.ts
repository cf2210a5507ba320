/**
 * The long-lived shim server: binds the socket, becomes the child subreaper, serves the Task API over ttrpc and
 * publishes events, until Shutdown arrives with no container left (or the last container is deleted and nothing new
 * arrives within a grace period), or SIGTERM/SIGINT.
 *
 * It reports to the `start` process that spawned it with one line on stdout ("ready", "exists", or an error) and
 * then closes stdout; from then on it writes only to stderr, which is the bundle's `log` fifo containerd reads.
 *
 * @module
 */
import { log, setLogLevel } from "../log.ts";
import { TASK_SERVICE, TASK_SERVICE_V3 } from "../proto/mod.ts";
import { Server } from "../ttrpc/server.ts";
import { reaper } from "../sys/reaper.ts";
import { close, dup2, guardInspectorSignal, redirectStderrToFifo } from "../sys/process.ts";
import { check, cstr, libc } from "../sys/libc.ts";
import { O_CLOEXEC, O_WRONLY } from "../sys/abi.ts";
import { unixListening } from "../sys/unix_socket.ts";
import { TaskService } from "../task/service.ts";
import type { ShimArgs } from "./flags.ts";
import { HeapKeeper } from "./heap.ts";
import { Publisher } from "./publisher.ts";
import { VERSION } from "../version.ts";

/** After the last container is deleted without a Shutdown, exit after this long unless a new one arrives. */
const IDLE_EXIT_MS = 5000;

/** Tells `start` how it went, then lets go of the pipe (fd 1 becomes /dev/null) so no later write can reach it. */
function report(line: string): void {
  try {
    Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
  } catch {
    // started by hand without a reader: nothing to tell
  }
  try {
    const fd = check(libc().open(cstr("/dev/null"), O_WRONLY | O_CLOEXEC, 0), "open", "/dev/null");
    dup2(fd, 1);
    close(fd);
  } catch (err) {
    log.warn("cannot detach stdout", { error: err });
  }
}

async function listen(path: string): Promise<Deno.UnixListener | undefined> {
  try {
    return Deno.listen({ transport: "unix", path });
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse)) throw err;
  }
  // Another server may own it (a concurrent start of the same group); only a dead socket is replaced.
  if (unixListening(path)) return undefined;
  await Deno.remove(path).catch(() => {});
  return Deno.listen({ transport: "unix", path });
}

/** Runs the server until it decides to exit; never returns. */
export async function serve(a: ShimArgs): Promise<never> {
  setLogLevel(a.debug ? "debug" : "info");
  if (!a.socket) {
    report("error: the server needs -socket");
    Deno.exit(1);
  }
  try {
    redirectStderrToFifo("log");
  } catch (err) {
    // containerd creates the fifo before start; started by hand there may be none.
    log.debug("no log fifo in the bundle; logging to inherited stderr", { error: err });
  }

  // The first container's bundle is the cwd containerd gave us; it is removed when that container goes, and a
  // grouped server outlives it (spawning runc from a deleted cwd fails). Every path the server uses is absolute.
  Deno.chdir("/");

  let listener: Deno.UnixListener | undefined;
  try {
    listener = await listen(a.socket);
  } catch (err) {
    report(`error: listen ${a.socket}: ${(err as Error).message}`);
    Deno.exit(1);
  }
  if (!listener) {
    report("exists");
    Deno.exit(0);
  }
  await Deno.chmod(a.socket, 0o600);

  const ttrpcAddress = Deno.env.get("TTRPC_ADDRESS") || `${a.address}.ttrpc`;
  const publisher = new Publisher(ttrpcAddress);
  const heap = new HeapKeeper();
  const server = new Server();
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let exiting = false;

  const exit = async (reason: string, code = 0): Promise<never> => {
    if (exiting) return new Promise<never>(() => {});
    exiting = true;
    log.info("shim server exiting", { reason, socket: a.socket });
    await Deno.remove(a.socket).catch(() => {});
    listener!.close();
    await publisher.flush(3000);
    await server.shutdown({ graceful: true, timeoutMs: 1000 }).catch(() => {});
    Deno.exit(code);
  };

  const service = new TaskService({
    reaper: reaper(),
    events: publisher,
    namespace: a.namespace,
    version: VERSION,
    onShutdown: () => void exit("shutdown requested"),
    onContainerCount: (n) => {
      clearTimeout(idleTimer);
      idleTimer = undefined;
      if (n === 0) idleTimer = setTimeout(() => void exit("no containers left"), IDLE_EXIT_MS);
    },
    onProcessDeleted: () => heap.released(),
  });
  const handlers = service.handlers();
  server.register(TASK_SERVICE, handlers);
  server.register(TASK_SERVICE_V3, handlers);

  // SIGUSR1 would open Deno's inspector (root code execution for any local user): it never reaches Deno's handler
  // (src/sys/process.ts, guardInspectorSignal). Diagnostics, which
  // the Go shim gives on SIGUSR1 (a stack dump), are on SIGUSR2: what a stuck or growing shim holds, in containerd's log.
  guardInspectorSignal();
  Deno.addSignalListener("SIGUSR2", () => {
    log.info("shim state", {
      containers: service.containers.size,
      ...Object.fromEntries(Object.entries(Deno.memoryUsage()).map(([k, v]) => [k, Math.round(v / 1024) + "KiB"])),
    });
  });
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => void exit(sig));
  }
  report("ready");
  log.debug("shim server serving", { socket: a.socket, pid: Deno.pid, namespace: a.namespace, id: a.id });
  await server.serve(listener);
  return await exit("listener closed");
}
