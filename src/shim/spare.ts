/**
 * Spare servers. A server whose last container is gone does not exit at once: it waits as a spare, for
 * `spareSeconds` (shim config, default 10), on a socket of its own. The next `start` that
 * would spawn a server for a new group binds the group's socket as usual and hands it to the spare instead
 * (SCM_RIGHTS, with the new group's namespace, container id and bundle); the spare answers "ok" and serves the new
 * group. A pod's `start` then costs no server boot, and its first Create runs on code that is already compiled: this
 * is what a node churning through pods pays per pod, and what the Go shim pays in full for each.
 *
 * Only a server of the same build, for the same containerd, in the same environment is found: the spare's socket
 * name is a hash of the build, containerd's address and the environment the shim reads (all but NAMESPACE, which
 * containerd sets per container). So an upgrade never hands new containers to old code, and a test's environment
 * never meets another's. A spare takes one handoff (it stops listening before it answers), serves at most
 * {@link SPARE_MAX_REUSES} groups in its life, and exits when its time is up or on SIGTERM. A server that `start`
 * moved into a shim cgroup (CRI's `ShimCgroup`) is never a spare: it would keep that pod's cgroup busy after the pod.
 *
 * The exchange, over a unix stream socket (`start` is synchronous and lean, see start.ts):
 * - `start` connects and sends one message: the {@link Handoff} as JSON, with the listening socket attached;
 * - the spare answers one line: `ok`, or `no <reason>` (the fd is closed, nothing was taken);
 * - no answer within {@link HANDOFF_TIMEOUT_MS}: `start` kills the spare (it may hold the listener) and spawns a
 *   server itself. A connection still in the backlog when the spare stopped listening is reset (ECONNRESET): the
 *   spare never saw it, and the fd went with it.
 *
 * @example
 * ```ts
 * import { handToSpare, sparePath } from "./spare.ts";
 * const env = { TTRPC_ADDRESS: "/run/containerd/containerd.sock.ttrpc" };
 * const path = sparePath("/run/containerd/s", "/run/containerd/containerd.sock", "3f9c0a12d4e5", env);
 * const handoff = {
 *   namespace: "default",
 *   id: "c1",
 *   bundle: "/run/…/c1",
 *   socket,
 *   debug: false,
 *   spareMs: 10_000,
 *   execDeleteEvents: false,
 * };
 * const r = handToSpare(path, listenFd, handoff);
 * // { kind: "adopted", pid } | { kind: "absent" } | { kind: "declined", reason, killed }
 * ```
 * @module
 */
import { sha256Hex } from "./sha256.ts";
import { joinPath } from "./address.ts";
import { unixExchange } from "../sys/unix_socket.ts";
import { ECONNRESET } from "../sys/errno.ts";
import { libc } from "../sys/libc.ts";

/**
 * What `ps` shows for a server while it waits as a spare (`/proc/<pid>/comm`); serving, it has its usual name again.
 * Its command line still names the group it was spawned for.
 */
export const SPARE_PROCESS_NAME = "shim-spare";
/**
 * How many groups one server process serves in its life, the first included; then it exits when it is done. Each
 * group leaves a little native memory behind (≈ 20–50 KiB measured, as a long-lived node server keeps per container
 * it ran), so the bound keeps a much reused server within ~2.5 MiB of a new one.
 */
export const SPARE_MAX_REUSES = 50;
/** How long `start` waits for a spare's answer. The spare is idle; it answers before doing any work. */
export const HANDOFF_TIMEOUT_MS = 5000;
/** The largest handoff message a spare reads. */
export const MAX_HANDOFF_BYTES = 16 * 1024;

/** What a spare needs to serve a new group (the rest of its settings are in the spare's socket name). */
export interface Handoff {
  namespace: string;
  /** The container the new group starts with; the spare reserves a place for it. */
  id: string;
  /** That container's bundle: the spare logs to its `log` fifo. */
  bundle: string;
  /** The group's socket path, which the attached listener is bound to. */
  socket: string;
  debug: boolean;
  /** How long to wait as a spare again when this group is done (0: exit then). */
  spareMs: number;
  /** The shim config's `execDeleteEvents` for the new group. */
  execDeleteEvents: boolean;
}

/**
 * The spare socket for servers of `build` serving the containerd at `address`, whose `start` saw the environment `env`
 * (the variables the shim reads, src/permissions.ts; NAMESPACE is left out, containerd sets it per container).
 */
export function sparePath(socketDir: string, address: string, build: string, env: Record<string, string>): string {
  const environment = Object.entries(env)
    .filter(([k]) => k !== "NAMESPACE")
    .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    .map(([k, v]) => `${k}=${v}`)
    .join("\0");
  return `${socketDir}/${sha256Hex(joinPath(address, "deno-spare", build, sha256Hex(environment)))}`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The handoff message. */
export function encodeHandoff(h: Handoff): Uint8Array {
  return encoder.encode(JSON.stringify(h));
}

/** Parses a handoff message; throws on anything malformed. */
export function decodeHandoff(data: Uint8Array): Handoff {
  const raw = JSON.parse(decoder.decode(data)) as Record<string, unknown>;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new Error("handoff is not an object");
  const text = (k: string, required: boolean): string => {
    const v = raw[k];
    if (typeof v !== "string" || (required && v === "")) throw new Error(`handoff: ${k} must be a non-empty string`);
    return v;
  };
  const spareMs = raw.spareMs;
  if (typeof spareMs !== "number" || !Number.isInteger(spareMs) || spareMs < 0) {
    throw new Error("handoff: spareMs must be a non-negative integer");
  }
  if (typeof raw.debug !== "boolean") throw new Error("handoff: debug must be a boolean");
  if (typeof raw.execDeleteEvents !== "boolean") throw new Error("handoff: execDeleteEvents must be a boolean");
  const h: Handoff = {
    namespace: text("namespace", true),
    id: text("id", true),
    bundle: text("bundle", true),
    socket: text("socket", true),
    debug: raw.debug,
    spareMs,
    execDeleteEvents: raw.execDeleteEvents,
  };
  if (!h.bundle.startsWith("/") || !h.socket.startsWith("/")) throw new Error("handoff: paths must be absolute");
  return h;
}

/** What handing a group's socket to a spare gave. */
export type HandoffResult =
  /** A spare took the socket and serves the group: `pid` is its process. */
  | { kind: "adopted"; pid: number }
  /** No spare waits (no socket, or nobody listens on it). */
  | { kind: "absent" }
  /** A spare was there but did not take it; `killed` when it did not answer in time and was killed for safety. */
  | { kind: "declined"; reason: string; killed: boolean };

const SIGKILL = 9;

/**
 * Offers the listening socket `listenFd` to the spare at `path`, synchronously (see the module comment for the
 * exchange). On anything but "adopted" the caller still owns the group and spawns a server itself.
 */
export function handToSpare(path: string, listenFd: number, h: Handoff, timeoutMs = HANDOFF_TIMEOUT_MS): HandoffResult {
  const ex = unixExchange(path, encodeHandoff(h), (r) => r.includes(10), timeoutMs, { fds: [listenFd] });
  if (ex.kind === "absent") return { kind: "absent" };
  const line = decoder.decode(ex.data).split("\n")[0];
  if (ex.complete && line === "ok") return { kind: "adopted", pid: ex.peerPid };
  if (ex.complete) return { kind: "declined", reason: line.replace(/^no /, ""), killed: false };
  // Reset: still in the backlog when the spare stopped listening (it took another handoff, or its time was up).
  // End of file: it refused the connection or died. Either way it does not hold the socket.
  if (ex.error === ECONNRESET) return { kind: "declined", reason: "the spare stopped listening", killed: false };
  if (ex.eof) return { kind: "declined", reason: "the spare closed the connection", killed: false };
  if (ex.error) return { kind: "declined", reason: `exchange failed (errno ${ex.error})`, killed: false };
  // No answer in time: it may hold the listener and serve it later, next to the server the caller spawns now.
  if (ex.peerPid > 0) libc().kill(ex.peerPid, SIGKILL);
  return { kind: "declined", reason: `no answer in ${timeoutMs} ms`, killed: ex.peerPid > 0 };
}
