/**
 * Linux through Deno FFI (libc), knowing nothing of containers: errno and SysError, process and signal calls,
 * posix_spawn'ed children, /proc and /sys file access, the child subreaper, an epoll poller, non-blocking fd I/O, fifos, runc's console
 * socket, and eventfds.
 *
 * Every fd these functions create is O_CLOEXEC, so none leaks into runc or other children, unless a function says
 * otherwise (only `dup2`'s target, as in C). Requires `--allow-ffi` for the libc paths of `libcCandidates()`.
 *
 * @example
 * ```ts
 * import { copy, openFifo, poller, reaper } from "./mod.ts";
 * const r = reaper();
 * r.onExit((e) => console.log("orphan exited", e));
 * const out = openFifo("/run/x/stdout", "r");
 * await poller().wait(out, "read"); // a writer connected
 * await copy(out, 1);
 * ```
 * @module
 */

export * from "./errno.ts";
export { addressOf, check, cstr, errno, lastError, type Libc, libc, setNonblocking, statPath } from "./libc.ts";
export {
  close,
  dup2,
  getOomScoreAdj,
  getpid,
  isChildSubreaper,
  kill,
  MAX_PROCESS_NAME,
  processName,
  redirectStderrToFifo,
  setChildSubreaper,
  setOomScoreAdj,
  setProcessName,
  signalName,
  signalNumber,
} from "./process.ts";
export { readBytes, readFile, readFileOrNull, writeFile } from "./procfs.ts";
export { type Exit, exitStatus, type Reaper, reaper } from "./reaper.ts";
export { type Child, type ChildStatus, spawn, type SpawnOptions, type StdioMode } from "./spawn.ts";
export { type Direction, existingPoller, Poller, poller } from "./poller.ts";
export {
  closeFd,
  copy,
  type CopyOptions,
  openAppend,
  pipe,
  read,
  readAsync,
  write,
  writeAll,
  YIELD_AFTER_MS,
} from "./fdio.ts";
export { type FifoMode, isFifo, mkfifo, openFifo } from "./fifo.ts";
export { ConsoleSocket, getPtySize, type PtySize, type ReceivedConsole, resizePty } from "./console.ts";
export { eventfd, eventfdRead, eventfdWrite } from "./eventfd.ts";
export { listenUnix, sockaddrUn, unixListening } from "./unix_socket.ts";
