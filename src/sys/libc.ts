/**
 * The process-wide libc binding: `Deno.dlopen` of the first candidate path of {@linkcode libcCandidates} (always an
 * absolute path), done on first use and once per process; each symbol is bound on its first call.
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

import { libcCandidates } from "../permissions.ts";
import { SysError } from "./errno.ts";

const symbols = {
  __errno_location: { parameters: [], result: "pointer" },
  // memcpy twice over: with a scoped --allow-ffi, Deno.UnsafePointer.of/value and UnsafePointerView all throw
  // NotCapable (they need unscoped --allow-ffi), so raw memory is read and addresses are taken through libc.
  errno_copy: { name: "memcpy", parameters: ["buffer", "pointer", "usize"], result: "pointer" },
  address_of: { name: "memcpy", parameters: ["buffer", "buffer", "usize"], result: "u64" },
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
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i64"], result: "i32" },
  waitid: { parameters: ["i32", "u32", "buffer", "i32"], result: "i32" },
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
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
  sigemptyset: { parameters: ["buffer"], result: "i32" },
  sigfillset: { parameters: ["buffer"], result: "i32" },
  pidfd_open: { parameters: ["i32", "u32"], result: "i32" },
  environ: { type: "pointer" },
  read_address: { name: "memcpy", parameters: ["buffer", "u64", "usize"], result: "u64" },
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
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // Blocking, on the JS thread: only short-lived commands (`start`) wait with it, never the server.
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
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
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound libc symbols. */
export type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];

let lib: Libc | undefined;
/** Every opened handle, kept reachable for the life of the process (their symbols are in use). */
const libraries: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>[] = [];
let errnoPointer: Deno.PointerObject | undefined;
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
 * Opens libc from the first candidate path that works, binding `early` in the same `Deno.dlopen` as the symbol that
 * proves the path (one dlopen, not two, for a short-lived command that knows what it will call).
 */
function openLibc(early: readonly LibcSymbol[]): Libc {
  const failures: string[] = [];
  for (const candidate of libcCandidates()) {
    let first: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>;
    try {
      // Opening with the one symbol everything needs proves the path works (and is allowed).
      first = Deno.dlopen(candidate, {
        __errno_location: symbols.__errno_location,
        ...Object.fromEntries(early.map((n) => [n, symbols[n]])),
      } as Deno.ForeignLibraryInterface);
      const p = (first.symbols.__errno_location as () => Deno.PointerValue)();
      if (p === null) throw new Error("__errno_location returned NULL");
      // __errno_location() is per thread; JS only ever calls sync symbols from its own thread, so cache it.
      errnoPointer = p;
    } catch (e) {
      // A missing path is expected (the list covers several distros); a permission error is not, but the next
      // candidate may still be allowed, so collect and report everything if none works.
      failures.push(`${candidate}: ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    libraries.push(first);
    const out = lazySymbols(candidate) as unknown as Record<string, unknown>;
    for (const n of early) {
      Object.defineProperty(out, n, {
        value: first.symbols[n],
        enumerable: true,
        writable: false,
        configurable: false,
      });
    }
    return lib = out as unknown as Libc;
  }
  throw new Error(`cannot open libc:\n  ${failures.join("\n  ")}`);
}

/** Names of the libc symbols. */
export type LibcSymbol = keyof typeof symbols;

/** The path libc was opened from (set by {@linkcode libc}). */
let libPath: string | undefined;

/**
 * Binds `names` now, all in one `Deno.dlopen`, where binding each on its first call costs a dlopen apiece (0.3–1 ms
 * each here): for short-lived commands that know which symbols they are about to call (`start`, the server's boot).
 * Symbols already bound are skipped. Throws like {@linkcode libc}.
 */
export function bindLibc(names: readonly LibcSymbol[]): void {
  const unique = [...new Set(names)].filter((n) => n !== "__errno_location");
  if (!lib) {
    openLibc(unique);
    return;
  }
  const out = lib as unknown as Record<string, unknown>;
  const todo = unique.filter((n) => Object.getOwnPropertyDescriptor(out, n)?.get);
  if (todo.length === 0) return;
  const one = Deno.dlopen(
    libPath!,
    Object.fromEntries(todo.map((n) => [n, symbols[n]])) as Deno.ForeignLibraryInterface,
  );
  libraries.push(one);
  for (const n of todo) {
    Object.defineProperty(out, n, { value: one.symbols[n], enumerable: true, writable: false, configurable: false });
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
        const one = Deno.dlopen(path, { [name]: symbols[name] } as Deno.ForeignLibraryInterface);
        libraries.push(one);
        const fn = one.symbols[name];
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
  C.errno_copy(errnoValue, errnoPointer!, 4n);
  return errnoValue[0];
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
  return libc().address_of(buf, buf, 0n);
}
