/**
 * glibc's `posix_spawn` (a CLONE_VFORK child, safe from a multithreaded process) with the child's fds, signal mask,
 * session and working directory spelled out, and nothing else: no pipes, no status, no poller. {@link spawn.ts}
 * builds runc's children on it (pipes, exit statuses); `start` uses it alone to hand the shim server its listening
 * socket as fd 3, which `Deno.Command` cannot do, in a new session, with SIGUSR1 blocked from its first instruction.
 *
 * What the child gets:
 * - fd `i` = our `fds[i]` for every `fds[i] ≥ 0` (a `-1` leaves that fd as inherited; only sensible for 0–2), and no
 *   other fd: everything from `fds.length` up is closed in the child (`posix_spawn_file_actions_addclosefrom_np`,
 *   glibc ≥ 2.34), on top of every fd of ours being O_CLOEXEC;
 * - the signal mask `blockedSignals` (default none) and every signal at its default action: Deno ignores SIGPIPE, and
 *   runc would hand that on to the container's processes;
 * - our environment (read from `environ` at each spawn, since `Deno.env` needs unscoped --allow-env), plus `env`;
 * - `cwd` through `posix_spawn_file_actions_addchdir_np` (glibc ≥ 2.29), and `setsid()` when asked.
 *
 * @example
 * ```ts
 * import { posixSpawn } from "./posix_spawn.ts";
 * const pid = posixSpawn("/bin/true", { fds: [-1, -1, -1], setsid: true });
 * ```
 * @module
 */

import { O_CLOEXEC, O_RDWR } from "./abi.ts";
import { ENOENT, SysError } from "./errno.ts";
import { addressOf, bindLibc, check, cstr, libc, type LibcSymbol } from "./libc.ts";

/** What to run and how; see the module comment. */
export interface PosixSpawnOptions {
  args?: string[];
  /** Variables added to (or replacing in) the inherited environment. */
  env?: Record<string, string>;
  /** Variables added only where the inherited environment (and `env`) has none: a user's own value wins. */
  envDefaults?: Record<string, string>;
  /** The child's working directory. */
  cwd?: string;
  /** The child's fds by number: ours to dup onto it, or -1 to leave it inherited. */
  fds: number[];
  /** Signals blocked in the child from its first instruction (numbers). */
  blockedSignals?: number[];
  /** Starts the child in a new session (and process group), detached from our terminal and signals. */
  setsid?: boolean;
}

const F_DUPFD_CLOEXEC = 1030;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
/** sizeof(posix_spawn_file_actions_t) and sizeof(posix_spawnattr_t) on LP64 glibc, with room to spare. */
const FILE_ACTIONS_SIZE = 128;
const ATTR_SIZE = 512;
/** glibc's sigset_t: 1024 bits. */
const SIGSET_SIZE = 128;

/**
 * The libc functions of every spawn, bound together on the first (src/sys/libc.ts, bindLibc): one at a time, on first
 * use, they cost a server's first `runc` ~1.5 ms more. The `_np` file actions are left to bind on their own: an older
 * glibc lacks them, and a batch with a missing symbol fails as a whole.
 */
export const POSIX_SPAWN_SYMBOLS: LibcSymbol[] = [
  "posix_spawn",
  "posix_spawnp",
  "posix_spawn_file_actions_init",
  "posix_spawn_file_actions_destroy",
  "posix_spawn_file_actions_adddup2",
  "posix_spawnattr_init",
  "posix_spawnattr_setflags",
  "posix_spawnattr_setsigmask",
  "posix_spawnattr_setsigdefault",
  "environ",
  "read_address",
  "strlen",
  "fcntl",
];
let spawnSymbolsBound = false;
let nullFd = -1;

/** Our /dev/null (O_RDWR|O_CLOEXEC), opened once: what a child gets on a stream it must neither read nor write. */
export function devNull(): number {
  if (nullFd < 0) nullFd = check(libc().open(cstr("/dev/null"), O_RDWR | O_CLOEXEC, 0), "open", "/dev/null");
  return nullFd;
}

/** Spawn attributes by their settings, made once each (they are never destroyed: a handful for the process' life). */
const attrs = new Map<string, Uint8Array>();
let closeFromAvailable: boolean | undefined;

/** For the posix_spawn* calls, which return the error number instead of setting errno. */
function ok(ret: number, call: string): void {
  if (ret !== 0) throw new SysError(call, ret);
}

/** The attributes for a mask and session: that mask, and every signal at its default action. */
function spawnAttr(blocked: number[], setsid: boolean): Uint8Array {
  const key = `${blocked.join(",")}/${setsid}`;
  const cached = attrs.get(key);
  if (cached) return cached;
  const C = libc();
  const a = new Uint8Array(new ArrayBuffer(ATTR_SIZE));
  const mask = new Uint8Array(new ArrayBuffer(SIGSET_SIZE));
  const all = new Uint8Array(new ArrayBuffer(SIGSET_SIZE));
  ok(C.posix_spawnattr_init(a), "posix_spawnattr_init");
  for (const sig of blocked) mask[(sig - 1) >> 3] |= 1 << ((sig - 1) & 7);
  all.fill(0xff, 0, 8); // signals 1–64, glibc's internal ones included (sigfillset leaves those out)
  ok(C.posix_spawnattr_setsigmask(a, mask), "posix_spawnattr_setsigmask");
  ok(C.posix_spawnattr_setsigdefault(a, all), "posix_spawnattr_setsigdefault");
  const flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (setsid ? POSIX_SPAWN_SETSID : 0);
  ok(C.posix_spawnattr_setflags(a, flags), "posix_spawnattr_setflags");
  attrs.set(key, a);
  return a;
}

const encoder = new TextEncoder();

/**
 * A NULL-terminated `char *[]` of `strings` in one off-heap buffer (V8 never moves an explicitly made ArrayBuffer),
 * returned with its address. The caller keeps `buf` reachable for as long as C uses it.
 */
function cStringArray(strings: string[]): { buf: Uint8Array; address: bigint } {
  const table = (strings.length + 1) * 8;
  let size = table;
  for (const s of strings) {
    if (s.includes("\0")) throw new TypeError(`string contains a NUL byte: ${JSON.stringify(s)}`);
    size += s.length * 3 + 1;
  }
  const buf = new Uint8Array(new ArrayBuffer(size));
  const base = addressOf(buf);
  const view = new DataView(buf.buffer);
  let at = table;
  strings.forEach((s, i) => {
    view.setBigUint64(i * 8, base + BigInt(at), true);
    at += encoder.encodeInto(s, buf.subarray(at)).written + 1; // the byte after stays 0: the terminator
  });
  view.setBigUint64(strings.length * 8, 0n, true);
  return { buf, address: base };
}

/** The current value of `environ` (its address moves when the environment is changed). */
function environAddress(): bigint {
  const C = libc();
  const out = new BigUint64Array(1);
  C.read_address(out, BigInt(Deno.UnsafePointer.value(C.environ)), 8n);
  return out[0];
}

/** Our environment as "NAME=value" strings, read from `environ`. */
function environStrings(): string[] {
  const C = libc();
  const at = environAddress();
  const out: string[] = [];
  const slot = new BigUint64Array(1);
  const decoder = new TextDecoder();
  for (let i = 0; at !== 0n; i++) {
    C.read_address(slot, at + BigInt(i * 8), 8n);
    const p = slot[0];
    if (p === 0n) break;
    const len = C.strlen(p);
    const bytes = new Uint8Array(Number(len));
    if (len > 0n) C.read_address(bytes, p, len);
    out.push(decoder.decode(bytes));
  }
  return out;
}

/** Our environment with `extra` applied and `defaults` added where absent, as a `char *[]`. */
function mergedEnvironment(
  extra: Record<string, string>,
  defaults: Record<string, string> = {},
): { buf: Uint8Array; address: bigint } {
  const name = (kv: string) => kv.slice(0, Math.max(kv.indexOf("="), 0));
  const keys = new Set(Object.keys(extra));
  const kept = environStrings().filter((kv) => !keys.has(name(kv)));
  for (const [k, v] of Object.entries(extra)) kept.push(`${k}=${v}`);
  const present = new Set(kept.map(name));
  for (const [k, v] of Object.entries(defaults)) if (!present.has(k)) kept.push(`${k}=${v}`);
  return cStringArray(kept);
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/**
 * Spawns `cmd` (looked up in PATH when it has no "/") and returns its pid; reaping it is the caller's business. Throws
 * SysError when it cannot run: ENOENT for a missing binary (`posix_spawn <cmd>`) or a missing `cwd` (`chdir <cwd>`),
 * EACCES, ENOEXEC…
 */
export function posixSpawn(cmd: string, options: PosixSpawnOptions): number {
  if (!spawnSymbolsBound) {
    spawnSymbolsBound = true;
    bindLibc(POSIX_SPAWN_SYMBOLS);
  }
  const C = libc();
  const { fds } = options;
  const fa = new Uint8Array(new ArrayBuffer(FILE_ACTIONS_SIZE));
  const moved: number[] = [];
  ok(C.posix_spawn_file_actions_init(fa), "posix_spawn_file_actions_init");
  try {
    const argv = cStringArray([cmd, ...(options.args ?? [])]);
    const envp = options.env || options.envDefaults
      ? mergedEnvironment(options.env ?? {}, options.envDefaults)
      : undefined;
    for (let target = 0; target < fds.length; target++) {
      let source = fds[target];
      if (source < 0) continue;
      // A source numbered below fds.length could be overwritten by an earlier dup2 (or be its own target, which
      // dup2 leaves close-on-exec): give the child a copy from above the range instead.
      if (source < fds.length) {
        source = check(C.fcntl(source, F_DUPFD_CLOEXEC, BigInt(fds.length)), "fcntl(F_DUPFD_CLOEXEC)");
        moved.push(source);
      }
      ok(C.posix_spawn_file_actions_adddup2(fa, source, target), "posix_spawn_file_actions_adddup2");
    }
    if (options.cwd) {
      ok(C.posix_spawn_file_actions_addchdir_np(fa, cstr(options.cwd)), "posix_spawn_file_actions_addchdir_np");
    }
    if (closeFromAvailable !== false) {
      try {
        ok(
          C.posix_spawn_file_actions_addclosefrom_np(fa, Math.max(fds.length, 3)),
          "posix_spawn_file_actions_addclosefrom_np",
        );
        closeFromAvailable = true;
      } catch (err) {
        // glibc < 2.34: every fd of ours is O_CLOEXEC anyway.
        if (err instanceof SysError) throw err;
        closeFromAvailable = false;
      }
    }
    const pidOut = new Int32Array(1);
    const run = cmd.includes("/") ? C.posix_spawn : C.posix_spawnp;
    const attr = spawnAttr(options.blockedSignals ?? [], options.setsid ?? false);
    const err = run(pidOut, cstr(cmd), fa, attr, argv.address, envp ? envp.address : environAddress());
    if (err !== 0) {
      if (err === ENOENT && options.cwd && !isDirectory(options.cwd)) throw new SysError("chdir", err, options.cwd);
      throw new SysError("posix_spawn", err, cmd);
    }
    return pidOut[0];
  } finally {
    C.posix_spawn_file_actions_destroy(fa);
    for (const fd of moved) C.close(fd);
  }
}
