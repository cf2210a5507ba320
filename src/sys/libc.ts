/**
 * The process-wide libc binding: `Deno.dlopen` of the first candidate path of {@linkcode libcCandidates} (always an
 * absolute path), done on first use and once per process; each symbol is bound on its first call. Deno compiles a
 * call trampoline for every sync symbol it binds (0.2–0.4 ms each), so the plain system calls among them are made
 * through one `syscall()` binding instead ({@linkcode SYSCALLS}), with the same parameters, results and errno.
 * Short-lived commands skip the trampolines altogether ({@linkcode useCallPointers}).
 *
 * Sync symbols run on the JS thread, so `errno()` read right after a failing call is that call's errno. A
 * `nonblocking: true` symbol runs on a blocking-pool thread where errno is invisible to JS, and a pending one keeps
 * the process alive: `epoll_wait_nb`, owned by the poller, and `sleep_nb`, the readiness timeout of `start`.
 *
 * Results that are `ssize_t` in C (read, write, recvmsg) are declared `i32`: the low half of the return register is
 * exact for any count below 2 GiB (every buffer here is far smaller) and -1 stays -1, and a plain `number` result
 * keeps the calls on V8's fast path instead of returning `number | bigint`.
 *
 * @example
 * ```ts
 * import { check, cstr, libc } from "./libc.ts";
 * const fd = check(libc().open(cstr("/proc/self/stat"), 0, 0), "open", "/proc/self/stat");
 * libc().close(fd);
 * ```
 * @module
 */

import {
  AT_FDCWD,
  F_GETFD,
  F_GETFL,
  F_SETFL,
  O_NONBLOCK,
  S_IFMT,
  S_IFREG,
  STATX,
  STATX_INO,
  STATX_MODE,
  STATX_MTIME,
  STATX_SIZE,
  STATX_TYPE,
  STATX_UID,
} from "./abi.ts";
import { EINTR, ENOENT, SysError } from "./errno.ts";

/**
 * Where libc may live; the first that exists is opened, always by absolute path. Here rather than beside the
 * permissions: `start` loads this module, and the permission table would be one more thing for it to evaluate.
 */
export function libcCandidates(arch: string = Deno.build.arch): string[] {
  const triple = arch === "aarch64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
  return [`/lib/${triple}/libc.so.6`, `/usr/lib/${triple}/libc.so.6`, "/lib64/libc.so.6", "/usr/lib64/libc.so.6"];
}

const symbols = {
  // Its result as an integer: the one address JS keeps, with no pointer object.
  __errno_location: { parameters: [], result: "u64" },
  // memcpy from an address given as an integer: with a scoped --allow-ffi, Deno.UnsafePointer.of/value and
  // UnsafePointerView all throw NotCapable (they need unscoped --allow-ffi), so raw memory is read and addresses are
  // taken through libc. One binding does both (errno: 4 bytes from errno's address; a buffer's address: 0 bytes,
  // memcpy returns its destination), since every bound symbol costs a process 0.25–0.4 ms of trampoline compiling.
  read_address: { name: "memcpy", parameters: ["buffer", "u64", "usize"], result: "u64" },
  // glibc's syscall(2): every plain system call below goes through this one binding (see SYSCALLS). It is variadic;
  // seven integer words are passed in registers the same way on the SysV x86-64 and AAPCS64 ABIs.
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  getpid: { parameters: [], result: "i32" },
  geteuid: { parameters: [], result: "u32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  // open and fcntl are variadic; fixed declarations are correct on the SysV x86-64 and AAPCS64 ABIs for int args.
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i64"], result: "i32" },
  waitid: { parameters: ["i32", "u32", "buffer", "i32"], result: "i32" },
  // Child processes (src/sys/spawn.ts): glibc's posix_spawn (CLONE_VFORK, safe in a multithreaded process). argv and
  // envp are addresses of off-heap arrays; `environ` is the static's address, read at each spawn (it moves on setenv).
  posix_spawn: { parameters: ["buffer", "buffer", "buffer", "buffer", "u64", "u64"], result: "i32" },
  posix_spawnp: { parameters: ["buffer", "buffer", "buffer", "buffer", "u64", "u64"], result: "i32" },
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  posix_spawn_file_actions_addchdir_np: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawn_file_actions_addclosefrom_np: { parameters: ["buffer", "i32"], result: "i32" },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  pidfd_open: { parameters: ["i32", "u32"], result: "i32" },
  environ: { type: "pointer" },
  strlen: { parameters: ["u64"], result: "usize" },
  mkfifo: { parameters: ["buffer", "u32"], result: "i32" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  unlink: { parameters: ["buffer"], result: "i32" },
  rmdir: { parameters: ["buffer"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // Blocking, on the JS thread: only short-lived commands (`start`) wait with it, never the server.
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // Bounded waits on the JS thread at the end of a turn (the poller's linger, src/sys/poller.ts).
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  epoll_wait_nb: { name: "epoll_wait", parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  // poll(NULL, 0, ms) on a blocking-pool thread: a timeout for short-lived commands (`start` waiting for its server)
  // without Deno's timers, whose first use loads its Node timers module (~5–15 ms); it keeps the process alive until
  // it fires, so only for commands that end with Deno.exit.
  sleep_nb: { name: "poll", parameters: ["pointer", "u64", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // The nudge timer (src/sys/nudge.ts): a POSIX timer raising a signal, which Deno receives on its own reactor.
  // timer_t is a pointer-sized handle, passed as u64 (same register on the SysV x86-64 and AAPCS64 ABIs).
  timer_create: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  timer_settime: { parameters: ["u64", "i32", "buffer", "pointer"], result: "i32" },
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  signal: { parameters: ["i32", "pointer"], result: "pointer" },
  pthread_sigmask: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // cgroups: v2 OOM watching (memory.events) and listing /sys directories, which Deno refuses to read itself.
  inotify_init1: { parameters: ["i32"], result: "i32" },
  inotify_add_watch: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  inotify_rm_watch: { parameters: ["i32", "i32"], result: "i32" },
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir: { parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
  // Memory: hands freed heap pages back to the kernel after a garbage collection (src/shim/heap.ts).
  malloc_trim: { parameters: ["usize"], result: "i32" },
  // The address as an integer (it is one read from /proc, not a buffer of ours).
  madvise: { parameters: ["u64", "usize", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound libc symbols. */
export type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];

let lib: Libc | undefined;
/** Whether functions are called through their addresses (see {@linkcode useCallPointers}). */
let callPointers = false;
/** Every opened handle, kept reachable for the life of the process (their symbols are in use). */
const libraries: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>[] = [];
/** The JS thread's errno, as an address (see `symbols.__errno_location`). */
let errnoAddress = 0n;
const errnoValue = new Int32Array(1);

/**
 * The libc symbols. The library is opened on first use, but each symbol is bound only when first called: Deno
 * compiles a call trampoline per declared symbol (~0.4 ms each here), so binding all of them up front cost `start`
 * and `delete`, which use a handful, 10–20 ms. Throws if no candidate path can be opened.
 */
export function libc(): Libc {
  return lib ?? openLibc([]);
}

/**
 * Makes this process call libc's functions through their addresses (`Deno.UnsafeFnPointer`) instead of a binding of
 * their own: for short-lived commands (`start`, `delete`), called before libc is first used. Deno compiles a call
 * trampoline for each bound function, and its first costs a process ~1.3 ms more than the rest; a function whose
 * address is looked up as a static and called through Deno's generic call path needs neither. Opening libc in a
 * `start` reusing a server took 4.4 ms one way and 2.6 the other (30 pairs side by side), and each call costs a few
 * µs more, which a command making a dozen calls never sees. A server keeps its bindings: its reads and writes are hot.
 * Works under an `--allow-ffi` scoped to libc's path too (only raw memory access needs the unscoped one).
 * Blocking-pool (`nonblocking`) functions and statics stay bound.
 */
export function useCallPointers(): void {
  if (!lib) callPointers = true;
}

/** Whether this process calls libc's functions through their addresses (tests). */
export function callsThroughPointers(): boolean {
  return callPointers;
}

/** Parameter types that are 64 bits wide. */
const WIDE = new Set(["i64", "u64", "isize", "usize"]);

/** Whether `name` is a function made on the JS thread: what can be called through its address. */
function pointerCallable(name: LibcSymbol): boolean {
  const def = symbols[name] as { type?: string; nonblocking?: boolean };
  return def.type === undefined && !def.nonblocking;
}

/**
 * Binds `names` from the library at `path` in one `Deno.dlopen` (none when `names` is empty) and returns them by
 * name: functions through their addresses when {@linkcode useCallPointers} applies, otherwise as Deno's bindings.
 */
function bindSymbols(path: string, names: readonly LibcSymbol[]): Record<string, unknown> {
  if (names.length === 0) return {};
  const viaAddress = callPointers ? names.filter(pointerCallable) : [];
  const defs = Object.fromEntries(
    names.map((n) => {
      if (!viaAddress.includes(n)) return [n, symbols[n]];
      return [n, { name: (symbols[n] as { name?: string }).name ?? n, type: "pointer" }];
    }),
  ) as Deno.ForeignLibraryInterface;
  const one = Deno.dlopen(path, defs);
  libraries.push(one);
  const out: Record<string, unknown> = { ...one.symbols };
  for (const n of viaAddress) {
    const address = one.symbols[n] as Deno.PointerValue;
    if (address === null) throw new Error(`${path}: ${n} has no address`);
    const fn = new Deno.UnsafeFnPointer(
      address as Deno.PointerObject<Deno.ForeignFunction>,
      symbols[n] as Deno.ForeignFunction,
    ) as unknown as { call(...args: unknown[]): unknown };
    // Deno's generic path takes a 64-bit argument given as a number ~20 times slower than as a bigint (0.03–1 ms
    // against 5–10 µs here), and our callers pass either.
    const wide = (symbols[n] as Deno.ForeignFunction).parameters.flatMap((t, i) => WIDE.has(t as string) ? [i] : []);
    out[n] = wide.length === 0 ? (...args: unknown[]) => fn.call(...args) : (...args: unknown[]) => {
      for (const i of wide) if (typeof args[i] === "number") args[i] = BigInt(args[i] as number);
      return fn.call(...args);
    };
  }
  return out;
}

/**
 * Opens libc from the first candidate path that works, binding `early` in the same `Deno.dlopen` as the symbol that
 * proves the path (one dlopen, not two, for a short-lived command that knows what it will call).
 */
function openLibc(requested: readonly LibcSymbol[]): Libc {
  // What nearly every use needs: errno after a failed call, and syscall() with buffer addresses (SYSCALLS).
  const early = [...new Set<LibcSymbol>(["read_address", "syscall", ...requested])];
  const failures: string[] = [];
  for (const candidate of libcCandidates()) {
    let first: Record<string, unknown>;
    try {
      // Opening with the one symbol everything needs proves the path works (and is allowed).
      first = bindSymbols(candidate, ["__errno_location", ...early]);
      const p = (first.__errno_location as () => bigint)();
      if (p === 0n) throw new Error("__errno_location returned NULL");
      // __errno_location() is per thread; JS only ever calls sync symbols from its own thread, so cache it.
      errnoAddress = p;
    } catch (e) {
      // A missing path is expected (the list covers several distros); a permission error is not, but the next
      // candidate may still be allowed, so collect and report everything if none works.
      failures.push(`${candidate}: ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    const out = lazySymbols(candidate) as unknown as Record<string, unknown>;
    for (const n of early) {
      Object.defineProperty(out, n, {
        value: first[n],
        enumerable: true,
        writable: false,
        configurable: false,
      });
    }
    return lib = out as unknown as Libc;
  }
  throw new Error(`cannot open libc:\n  ${failures.join("\n  ")}`);
}

/**
 * The symbols that are plain Linux system calls, made through the one `syscall` binding instead of a binding each:
 * Deno compiles a call trampoline for every bound sync symbol (0.2–0.4 ms apiece here), and a server's first
 * container bound 42 of them, 13.6 ms, and a per-pod `start` 26, 6.9 ms. Numbers are `[x86-64, aarch64]`; glibc's
 * `syscall()` returns -1 and sets errno like the wrappers. Where aarch64 has only the `*at` form (and x86-64 has it
 * too), both use it: `prefix`/`suffix` are the extra leading/trailing arguments that make the libc call out of it.
 */
const AT = BigInt(AT_FDCWD);
const SYSCALLS: Partial<Record<LibcSymbol, { nr: readonly [number, number]; prefix?: bigint[]; suffix?: bigint[] }>> = {
  getpid: { nr: [39, 172] },
  geteuid: { nr: [107, 175] },
  kill: { nr: [62, 129] },
  prctl: { nr: [157, 167] },
  open: { nr: [257, 56], prefix: [AT] }, // openat
  read: { nr: [0, 63] },
  write: { nr: [1, 64] },
  close: { nr: [3, 57] },
  pipe2: { nr: [293, 59] },
  fchown: { nr: [93, 55] },
  fcntl: { nr: [72, 25] },
  waitid: { nr: [247, 95], suffix: [0n] }, // no rusage
  pidfd_open: { nr: [434, 434] },
  statx: { nr: [332, 291] },
  unlink: { nr: [263, 35], prefix: [AT], suffix: [0n] }, // unlinkat
  rmdir: { nr: [263, 35], prefix: [AT], suffix: [0x200n] }, // unlinkat(AT_REMOVEDIR)
  socket: { nr: [41, 198] },
  bind: { nr: [49, 200] },
  listen: { nr: [50, 201] },
  connect: { nr: [42, 203] },
  accept4: { nr: [288, 242] },
  getsockopt: { nr: [55, 209] },
  shutdown: { nr: [48, 210] },
  flock: { nr: [73, 32] },
  recvmsg: { nr: [47, 212] },
  sendmsg: { nr: [46, 211] },
  ioctl: { nr: [16, 29] },
  epoll_create1: { nr: [291, 20] },
  epoll_ctl: { nr: [233, 21] },
  eventfd: { nr: [290, 19] }, // eventfd2
  mount: { nr: [165, 40] },
  umount2: { nr: [166, 39] },
  madvise: { nr: [28, 233] },
  inotify_init1: { nr: [294, 26] },
  inotify_add_watch: { nr: [254, 27] },
  inotify_rm_watch: { nr: [255, 28] },
  // rt_sigprocmask with the kernel's 8-byte sigset_t (the first bytes of glibc's); on failure -1 and errno, where
  // pthread_sigmask returns the error number.
  pthread_sigmask: { nr: [14, 135], suffix: [8n] },
  // Made by hand below from these: dup2 (dup3, which refuses equal fds), poll (ppoll, whose timeout is a timespec).
  dup2: { nr: [292, 24] },
  poll: { nr: [271, 73] },
};

/** The architecture's column of {@linkcode SYSCALLS}, or -1 where the table does not apply. */
const ARCH_COLUMN = Deno.build.os === "linux"
  ? ({ x86_64: 0, aarch64: 1 } as Record<string, number>)[Deno.build.arch] ?? -1
  : -1;

/** One argument as a machine word: a buffer's address, a pointer's value, or the integer. */
function word(kind: string, v: unknown): number | bigint {
  if (kind === "buffer") {
    if (v === null || v === undefined) return 0;
    // Reading `.buffer` moves a small typed array off V8's moving heap for good, so its address stays valid.
    void (v as ArrayBufferView).buffer;
    return addressOf(v as Uint8Array);
  }
  if (kind === "pointer") return v === null ? 0 : BigInt(Deno.UnsafePointer.value(v as Deno.PointerObject));
  return v as number | bigint; // Deno takes a number or a bigint for a 64-bit parameter
}

/**
 * The libc function `name` made through `syscall()`, with the symbol's own parameters and result type, or undefined
 * when `name` is not a plain system call here. Buffer addresses are taken last, right before the call, so that no
 * allocation can come between an address and its use.
 */
function syscallFunction(name: LibcSymbol): ((...args: unknown[]) => unknown) | undefined {
  const entry = SYSCALLS[name];
  if (!entry || ARCH_COLUMN < 0) return undefined;
  const def = symbols[name] as { parameters: readonly string[]; result: string };
  const nr = BigInt(entry.nr[ARCH_COLUMN]);
  const prefix = entry.prefix ?? [];
  const suffix = entry.suffix ?? [];
  const kinds = def.parameters;
  const narrow = def.result === "i32" || def.result === "u32";
  const raw = (...w: (number | bigint)[]) => (lib!.syscall as (...a: (number | bigint)[]) => number | bigint)(nr, ...w);
  const call = (...w: (number | bigint)[]) => Number(raw(...w));
  if (name === "dup2") {
    return (oldFd, newFd) => {
      if (oldFd !== newFd) return call(BigInt(oldFd as number), BigInt(newFd as number), 0n, 0n, 0n, 0n);
      return libc().fcntl(oldFd as number, F_GETFD, 0n) < 0 ? -1 : newFd; // dup2's answer for equal fds
    };
  }
  if (name === "poll") {
    return (fds, nfds, timeoutMs) => {
      const ms = timeoutMs as number;
      const ts = new BigInt64Array(new ArrayBuffer(16)); // struct timespec, off V8's heap
      ts[0] = BigInt(Math.floor(ms / 1000));
      ts[1] = BigInt((ms % 1000) * 1_000_000);
      const n = BigInt(nfds as number | bigint);
      const tsp = ms < 0 ? 0n : addressOf(ts as unknown as Uint8Array);
      return call(word("buffer", fds), n, tsp, 0n, 8n, 0n);
    };
  }
  const at = prefix.length;
  const last = at + kinds.length;
  const hasBuffer = kinds.includes("buffer");
  return (...args: unknown[]) => {
    // One argument array, filled in place: the wrapper costs ~3 µs a call on top of the call itself.
    const w: (number | bigint)[] = [0, 0, 0, 0, 0, 0];
    for (let i = 0; i < at; i++) w[i] = prefix[i];
    for (let i = 0; i < kinds.length; i++) if (kinds[i] !== "buffer") w[at + i] = word(kinds[i], args[i]);
    for (let i = 0; i < suffix.length; i++) w[last + i] = suffix[i];
    if (hasBuffer) {
      for (let i = 0; i < kinds.length; i++) if (kinds[i] === "buffer") w[at + i] = word("buffer", args[i]);
    }
    const r = raw(w[0], w[1], w[2], w[3], w[4], w[5]);
    return narrow ? Number(r) : r;
  };
}

/** The symbols `syscallFunction` needs bound for `name`, or `[name]` itself when it is bound directly. */
function bindingsFor(name: LibcSymbol): LibcSymbol[] {
  if (!SYSCALLS[name] || ARCH_COLUMN < 0) return [name];
  const kinds = (symbols[name] as { parameters: readonly string[] }).parameters;
  return kinds.includes("buffer") ? ["syscall", "read_address"] : ["syscall"];
}

/** The libc symbols that `syscall()` stands in for (tests). */
export function viaSyscall(name: LibcSymbol): boolean {
  return bindingsFor(name)[0] !== name;
}

/** Names of the libc symbols. */
export type LibcSymbol = keyof typeof symbols;

/** The path libc was opened from (set by {@linkcode libc}). */
let libPath: string | undefined;

/**
 * Binds `names` now, all in one `Deno.dlopen` (opening libc with them if it is not open yet): for code that knows which
 * symbols it is about to call (`start`, the server's boot, the first spawn).
 * Symbols already bound are skipped. Plain system calls bind `syscall()` instead (SYSCALLS), unless `direct`: then
 * they get a binding of their own, for calls hot enough that the wrapper's ~3 µs a call matter (the server's reads
 * and writes). Throws like {@linkcode libc}.
 */
export function bindLibc(names: readonly LibcSymbol[], opts: { direct?: boolean } = {}): void {
  const unique = [...new Set(opts.direct ? names : names.flatMap(bindingsFor))].filter((n) => n !== "__errno_location");
  if (!lib) {
    openLibc(unique);
    return;
  }
  const out = lib as unknown as Record<string, unknown>;
  const todo = unique.filter((n) => Object.getOwnPropertyDescriptor(out, n)?.get);
  if (todo.length === 0) return;
  const bound = bindSymbols(libPath!, todo);
  for (const n of todo) {
    Object.defineProperty(out, n, { value: bound[n], enumerable: true, writable: false, configurable: false });
  }
}

/** An object with every symbol of `symbols` as a getter that binds it on first access, then replaces itself. */
function lazySymbols(path: string): Libc {
  libPath = path;
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(symbols) as (keyof typeof symbols)[]) {
    Object.defineProperty(out, name, {
      configurable: true,
      enumerable: true,
      get() {
        let fn = syscallFunction(name) as unknown;
        if (fn === undefined) fn = bindSymbols(path, [name])[name];
        Object.defineProperty(out, name, { value: fn, enumerable: true, writable: false, configurable: false });
        return fn;
      },
    });
  }
  return out as Libc;
}

/** The calling (JS) thread's errno. Only meaningful right after a failed sync libc call. */
export function errno(): number {
  const C = libc();
  // memcpy itself never sets errno, so this reads the failed call's value.
  C.read_address(errnoValue, errnoAddress, 4n);
  return errnoValue[0];
}

/**
 * Whether a failed call that can fail with neither ENOENT nor EINTR for real should just be made again. EINTR: a
 * signal came. ENOENT: Deno 2.9.6 runs a one-time initialisation (a TSC clock calibration: it opens
 * `/sys/devices/system/cpu/cpu0/tsc_freq_khz`, missing on this kernel, then sleeps 1 + 2 ms) on whichever of its threads
 * first needs it; when that is the JS thread, between a failed call and the read of errno, errno says ENOENT. strace
 * showed it: `openat` of a fifo without a reader returned ENXIO, then the same thread opened that file, and errno read
 * ENOENT; in ~1.5% of fresh processes on their first failed call. A read that would block (EAGAIN) must not become an
 * error that way: read, write and accept retry instead.
 */
export function callAgain(err: number): boolean {
  return err === EINTR || err === ENOENT;
}

/** A SysError for the errno of the sync call that just failed. */
export function lastError(syscall: string, path?: string): SysError {
  return new SysError(syscall, errno(), path);
}

/** Returns `ret` when it is not negative; otherwise throws a SysError with the current errno. */
export function check(ret: number, syscall: string, path?: string): number {
  if (ret < 0) throw lastError(syscall, path);
  return ret;
}

const encoder = new TextEncoder();

/** `s` as a NUL-terminated UTF-8 C string. Throws on an embedded NUL, which C would silently truncate at. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  if (s.includes("\0")) throw new TypeError(`string contains a NUL byte: ${JSON.stringify(s)}`);
  const out = new Uint8Array(s.length * 3 + 1);
  const { written } = encoder.encodeInto(s, out);
  return out.subarray(0, written + 1);
}

/**
 * The address of `buf`'s first byte as a bigint, for pointers stored inside C structs (memcpy of 0 bytes returns
 * its destination). Only for memory that cannot move: views of an explicitly constructed `ArrayBuffer`, which V8
 * always keeps off its heap (small typed arrays created with `new Uint8Array(n)` may live on the moving heap).
 */
export function addressOf(buf: Uint8Array | Int32Array): bigint {
  // A null source would be undefined behaviour in C even for 0 bytes; errno's address is a valid one.
  return libc().read_address(buf, errnoAddress, 0n);
}

/** Sets O_NONBLOCK on `fd` (on its open file description, so every fd sharing it sees the change). */
export function setNonblocking(fd: number): void {
  const flags = check(libc().fcntl(fd, F_GETFL, 0n), "fcntl(F_GETFL)", `fd ${fd}`);
  if (flags & O_NONBLOCK) return;
  check(libc().fcntl(fd, F_SETFL, BigInt(flags | O_NONBLOCK)), "fcntl(F_SETFL)", `fd ${fd}`);
}

/** What {@linkcode statPath} reads. */
export interface PathStat {
  /** `st_dev` as glibc's `makedev` packs it (what `Deno.statSync` reports as `dev`). */
  dev: number;
  ino: number;
  size: number;
  uid: number;
  mode: number;
  isFile: boolean;
  /** Modification time in whole ms, as `Deno.statSync(path).mtime.getTime()` gives it. */
  mtimeMs: number;
}

const STAT_PATH_MASK = STATX_TYPE | STATX_MODE | STATX_UID | STATX_INO | STATX_SIZE | STATX_MTIME;

/**
 * statx(2) of `path` (symlinks followed) as plain numbers. Throws SysError (ENOENT, EACCES...). For short-lived
 * commands: `Deno.statSync` builds four `Date`s per call, and a process's first stat cost ~0.6 ms here. It lives in
 * this module, which every user of it has loaded already: in the bundle a module of its own became one more file for
 * `start` to load, which cost more than the stat saved (bench/analysis.md, session 9).
 */
export function statPath(path: string): PathStat {
  const stx = new Uint8Array(STATX.size);
  check(libc().statx(AT_FDCWD, cstr(path), 0, STAT_PATH_MASK, stx), "statx", path);
  const v = new DataView(stx.buffer);
  const major = v.getUint32(STATX.devMajor, true), minor = v.getUint32(STATX.devMinor, true);
  // glibc's makedev(): the low 8 bits of minor, then 12 of major, then the rest of minor, then the rest of major.
  const dev = (BigInt(major & 0xfffff000) << 32n) | (BigInt(major & 0xfff) << 8n) |
    (BigInt(minor & 0xffffff00) << 12n) | BigInt(minor & 0xff);
  const mode = v.getUint16(STATX.mode, true);
  return {
    dev: Number(dev),
    ino: Number(v.getBigUint64(STATX.ino, true)),
    size: Number(v.getBigUint64(STATX.fileSize, true)),
    uid: v.getUint32(STATX.uid, true),
    mode,
    isFile: (mode & S_IFMT) === S_IFREG,
    mtimeMs: Number(v.getBigInt64(STATX.mtimeSec, true)) * 1000 + Math.floor(v.getUint32(STATX.mtimeNsec, true) / 1e6),
  };
}

/** The uid owning the file at `path` (a socket, say). Throws SysError (ENOENT...). */
export function ownerUid(path: string): number {
  return statPath(path).uid;
}
