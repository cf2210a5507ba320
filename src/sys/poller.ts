/**
 * An epoll readiness poller: any number of fds waited on with one blocking-pool thread.
 *
 * At most one `epoll_wait` (a `nonblocking: true` FFI call) is in flight, and only while somebody waits: a pending
 * nonblocking FFI call keeps the process alive and cannot be unref'd, so an idle poller must have none. Registrations
 * are one-shot (EPOLLONESHOT) and re-armed per wait. Adding a registration while `epoll_wait` runs needs no wake-up
 * (the kernel reports it to the running wait); an eventfd wakes the wait when the last waiter leaves, for
 * {@linkcode Poller.turn}, and on close.
 *
 * Under load Deno 2.9.6 was seen to leave a returned `epoll_wait` undelivered for seconds; a timer keeps waking the
 * event loop while the call is pending ({@linkcode watchCompletion}).
 *
 * A wait resolves on readiness, hang-up or error; it can also resolve spuriously (an fd number reused after a close
 * without {@linkcode Poller.forget}), so callers always retry their read/write and wait again on EAGAIN.
 *
 * **Lingering** ({@linkcode Poller.linger}, on in the shim's server). A wait in the blocking pool costs a thread hop
 * per event: the kernel wakes the pool thread, which wakes the JS thread, two cross-CPU wake-ups on a VM where each
 * costs tens of µs (an RPC that needs no runc took 40–45% less time with the server pinned to one CPU). So at the end
 * of an event-loop turn that left waits behind (the `last` step of src/sys/immediate.ts's turn end: after the turn's
 * completions, their microtasks and the `soon` work queued for the turn's end) the JS thread first waits itself, in a
 * synchronous `epoll_wait` of up to `ms` on an epoll that holds the poller's and the runtime's own
 * (src/sys/runtime_epoll.ts): a peer's next request, typically a fraction of a millisecond after the last answer, then
 * wakes the JS thread directly, as Go's netpoller wakes the thread that runs the handler. It blocks, it does not spin:
 * no CPU is spent while it waits. When `ms` passes with nothing, or the runtime's epoll shows work of its own (a
 * signal, such as a `Deno.Command` child's SIGCHLD or the nudge's SIGURG, or a pipe Deno reads), the wait goes to the
 * blocking pool as before, and JS activity while it runs there calls it back (the eventfd) so that the next turn
 * lingers again.
 *
 * What the runtime's epoll does not show: completions from Deno's own blocking pool (async file-system ops,
 * `nonblocking` FFI calls) and tasks V8 posts from other threads, its timers included. Tokio writes its waker only
 * while its thread is parked in that epoll, not while JS runs (measured: a pool op finishing during a linger left
 * the epoll quiet), so such a completion waits for the linger to end, up to `ms`. Code on a lingering poller's hot
 * paths uses synchronous file-system calls for that reason (they are metadata operations of microseconds).
 *
 * @example
 * ```ts
 * import { poller } from "./poller.ts";
 * import { read } from "./fdio.ts";
 * const buf = new Uint8Array(65536);
 * let n: number;
 * while ((n = read(fd, buf)) < 0) await poller().wait(fd, "read");
 * ```
 * @module
 */

import {
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLL_EVENT,
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLONESHOT,
  EPOLLOUT,
  EPOLLRDHUP,
} from "./abi.ts";
import { EBADF, EEXIST, EINTR, ENOENT, SysError } from "./errno.ts";
import { eventfd, eventfdRead, eventfdWrite } from "./eventfd.ts";
import { check, errno, libc } from "./libc.ts";
import { watchCompletion } from "./nudge.ts";
import { type TurnEnd, turnEnd } from "./immediate.ts";
import { runtimeEpollFds } from "./runtime_epoll.ts";

/** Which readiness to wait for. */
export type Direction = "read" | "write";

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Entry {
  read: Set<Waiter>;
  write: Set<Waiter>;
  /** Whether the fd is in the epoll set (possibly disarmed by EPOLLONESHOT). */
  registered: boolean;
}

const MAX_EVENTS = 64;
/** The longest linger accepted: the runtime's timers can be this late. */
export const MAX_LINGER_MS = 50;
const READ_EVENTS = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
const WRITE_EVENTS = EPOLLOUT | EPOLLHUP | EPOLLERR;

/** Waits for fd readiness with a single epoll instance. Prefer the process-wide {@linkcode poller}. */
export class Poller {
  readonly #epfd: number;
  readonly #wakeFd: number;
  readonly #entries = new Map<number, Entry>();
  // Written by the kernel on the worker thread during epoll_wait: touched only when no wait is in flight.
  // An explicit ArrayBuffer lives off the V8 heap, so GC cannot move it while the worker thread writes to it.
  readonly #events = new Uint8Array(new ArrayBuffer(MAX_EVENTS * EPOLL_EVENT.size));
  readonly #eventsView = new DataView(this.#events.buffer);
  readonly #ctl = new Uint8Array(EPOLL_EVENT.size);
  readonly #ctlView = new DataView(this.#ctl.buffer);
  #turns: (() => void)[] = [];
  #waiters = 0;
  #inFlight: Promise<number> | null = null;
  #closed = false;
  #failures = 0;
  #failingSince = 0;
  #lingerMs = 0;
  /** The epoll a linger waits on: this poller's epoll fd and the runtime's; -1 until lingering is first enabled. */
  #lingerEpfd = -1;
  #turnEnd: TurnEnd | null = null;
  #lingerQueued = false;
  /** The pool's epoll_wait was asked to return (JS is active again) so that the next turn lingers. */
  #recalling = false;
  /** How lingers ended (for tests and diagnostics). */
  readonly lingerStats: { events: number; timeouts: number; runtime: number; recalls: number } = {
    events: 0,
    timeouts: 0,
    runtime: 0,
    recalls: 0,
  };

  constructor() {
    this.#epfd = check(libc().epoll_create1(EPOLL_CLOEXEC), "epoll_create1");
    try {
      this.#wakeFd = eventfd();
    } catch (e) {
      libc().close(this.#epfd);
      throw e;
    }
    // Level-triggered and permanent: a pending wake-up keeps epoll_wait returning until it is drained.
    this.#control(EPOLL_CTL_ADD, this.#wakeFd, EPOLLIN);
  }

  /** Number of pending waits (for tests and diagnostics). */
  get pending(): number {
    return this.#waiters;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The linger in ms; 0 when off. */
  get lingerMs(): number {
    return this.#lingerMs;
  }

  /**
   * Lets the JS thread wait up to `ms` itself at the end of a turn before a wait goes to the blocking pool (see the
   * module's note); 0 turns it off. Returns whether lingering is on: it stays off where the runtime offers no
   * end-of-turn hook or its epoll cannot be found (then a linger could hold back the runtime's own work). Throws
   * RangeError outside 0..{@linkcode MAX_LINGER_MS}.
   */
  linger(ms: number): boolean {
    if (!(ms >= 0 && ms <= MAX_LINGER_MS)) {
      throw new RangeError(`linger must be 0 to ${MAX_LINGER_MS} ms, got ${ms}`);
    }
    if (this.#closed || ms === 0) {
      this.#lingerMs = 0;
      return false;
    }
    if (this.#lingerEpfd < 0 && !this.#setUpLinger()) return false;
    this.#lingerMs = Math.ceil(ms);
    return true;
  }

  #setUpLinger(): boolean {
    const ends = turnEnd();
    const runtime = ends ? runtimeEpollFds([this.#epfd]) : [];
    if (runtime.length === 0) return false;
    const epfd = libc().epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) return false;
    // Level-triggered: the runtime's epoll reads as ready for as long as the runtime has not taken its events.
    for (const fd of [this.#epfd, ...runtime]) {
      if (this.#control(EPOLL_CTL_ADD, fd, EPOLLIN, epfd) !== 0 && fd === this.#epfd) {
        libc().close(epfd);
        return false;
      }
    }
    this.#lingerEpfd = epfd;
    this.#turnEnd = ends;
    return true;
  }

  /**
   * Resolves when `fd` is ready for `direction`, hung up, or in error. Rejects with `signal.reason` on abort, with
   * SysError EBADF when the fd is forgotten meanwhile, and with SysError EPERM for fds epoll cannot watch
   * (regular files, which are always ready anyway).
   */
  wait(fd: number, direction: Direction, signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("poller is closed"));
    if (signal?.aborted) return Promise.reject(signal.reason);
    let entry = this.#entries.get(fd);
    if (!entry) {
      entry = { read: new Set(), write: new Set(), registered: false };
      this.#entries.set(fd, entry);
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const waiter: Waiter = { resolve, reject, signal };
    const set = entry[direction];
    set.add(waiter);
    this.#waiters++;
    try {
      this.#arm(fd, entry);
    } catch (e) {
      set.delete(waiter);
      this.#waiters--;
      return Promise.reject(e);
    }
    if (signal) {
      waiter.onAbort = () => {
        const e = this.#entries.get(fd);
        if (!e || !e[direction].delete(waiter)) return;
        this.#waiters--;
        waiter.reject(signal.reason);
        this.#rearmQuietly(fd, e);
        this.#wakeIfIdle();
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
    }
    this.#pump();
    return promise;
  }

  /**
   * Resolves after one full trip through the event loop (a real macrotask, unlike `await` of a resolved promise),
   * so that timers and I/O get a turn. Costs one eventfd write and one epoll_wait round trip.
   */
  turn(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#turns.push(resolve);
    eventfdWrite(this.#wakeFd);
    this.#pump();
    return promise;
  }

  /**
   * Resolves the pending waits of `fd` for `direction` now, as a spurious wake-up would (their callers retry their
   * I/O and may wait again): for a caller that wants a waiting reader to look again at something other than the fd.
   * Returns how many waits it resolved.
   */
  wake(fd: number, direction: Direction): number {
    const entry = this.#entries.get(fd);
    if (!entry || entry[direction].size === 0) return 0;
    const woken = [...entry[direction]];
    entry[direction].clear();
    for (const w of woken) this.#settle(w);
    this.#rearmQuietly(fd, entry);
    this.#wakeIfIdle();
    return woken.length;
  }

  /**
   * Drops `fd` from the epoll set and rejects its pending waits with SysError EBADF. Call it before closing an fd
   * that was ever waited on, so that its number can be reused safely.
   */
  forget(fd: number): void {
    const entry = this.#entries.get(fd);
    if (!entry) return;
    this.#entries.delete(fd);
    if (entry.registered) libc().epoll_ctl(this.#epfd, EPOLL_CTL_DEL, fd, this.#ctl); // ENOENT/EBADF: already gone
    const err = new SysError("epoll_wait", EBADF, `fd ${fd} forgotten`);
    for (const w of [...entry.read, ...entry.write]) this.#settle(w, err);
    this.#wakeIfIdle();
  }

  /** Rejects every pending wait and closes the epoll fd and eventfd (once no epoll_wait is running). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const err = new Error("poller is closed");
    for (const entry of this.#entries.values()) for (const w of [...entry.read, ...entry.write]) this.#settle(w, err);
    this.#entries.clear();
    for (const t of this.#turns.splice(0)) t();
    if (this.#inFlight) eventfdWrite(this.#wakeFd);
    else this.#release();
  }

  /** Resolves when no epoll_wait is in flight (useful after the last wait was aborted, e.g. at test end). */
  async idle(): Promise<void> {
    while (this.#inFlight) await this.#inFlight.catch(() => {});
  }

  #settle(w: Waiter, err?: unknown): void {
    if (w.onAbort) w.signal!.removeEventListener("abort", w.onAbort);
    this.#waiters--;
    if (err === undefined) w.resolve();
    else w.reject(err);
  }

  /** epoll_ctl on this poller's epoll (or `epfd`), with the fd itself as the event's data. */
  #control(op: number, fd: number, events: number, epfd = this.#epfd): number {
    this.#ctlView.setUint32(EPOLL_EVENT.events, events, true);
    // epoll_data is a u64 union; the fd goes in the low half (little-endian) and the high half stays zero.
    this.#ctlView.setUint32(EPOLL_EVENT.data, fd, true);
    this.#ctlView.setUint32(EPOLL_EVENT.data + 4, 0, true);
    return libc().epoll_ctl(epfd, op, fd, this.#ctl);
  }

  /** (Re-)arms `fd` for the directions that have waiters, or removes it when none has. Throws SysError. */
  #arm(fd: number, entry: Entry): void {
    const events = (entry.read.size ? EPOLLIN | EPOLLRDHUP : 0) | (entry.write.size ? EPOLLOUT : 0);
    if (events === 0) {
      if (entry.registered) libc().epoll_ctl(this.#epfd, EPOLL_CTL_DEL, fd, this.#ctl);
      entry.registered = false;
      return;
    }
    // Always issue the call: it re-arms a fired one-shot registration and repairs a stale one (fd closed and its
    // number reused without forget(): MOD then fails with ENOENT and the fd is added again).
    let op = entry.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.#control(op, fd, events | EPOLLONESHOT) === 0) {
        entry.registered = true;
        return;
      }
      const err = errno();
      if (op === EPOLL_CTL_MOD && err === ENOENT) op = EPOLL_CTL_ADD;
      else if (op === EPOLL_CTL_ADD && err === EEXIST) op = EPOLL_CTL_MOD;
      else {
        entry.registered = false;
        throw new SysError("epoll_ctl", err, `fd ${fd}`);
      }
    }
    throw new SysError("epoll_ctl", errno(), `fd ${fd}`);
  }

  /** #arm for paths that cannot report an error to a caller: the remaining waiters get it instead. */
  #rearmQuietly(fd: number, entry: Entry): void {
    try {
      this.#arm(fd, entry);
    } catch (e) {
      for (const w of [...entry.read, ...entry.write]) this.#settle(w, e);
      entry.read.clear();
      entry.write.clear();
    }
  }

  /** Wakes the running epoll_wait once nobody needs it, so the worker thread (and the process) can go idle. */
  #wakeIfIdle(): void {
    if (this.#inFlight && this.#waiters === 0 && this.#turns.length === 0) eventfdWrite(this.#wakeFd);
  }

  #pump(): void {
    if (this.#closed) return;
    if (this.#inFlight) {
      // JS is active while the pool waits: have that wait return, so that the end of this turn lingers instead.
      if (this.#lingerMs > 0 && !this.#recalling && this.#waiters > 0) {
        this.#recalling = true;
        this.lingerStats.recalls++;
        eventfdWrite(this.#wakeFd);
      }
      return;
    }
    if (this.#waiters === 0 && this.#turns.length === 0) return;
    if (this.#lingerMs > 0 && this.#turns.length === 0) {
      if (!this.#lingerQueued) {
        this.#lingerQueued = true;
        this.#turnEnd!.last(this.#linger);
      }
      return;
    }
    this.#waitInPool();
  }

  #waitInPool(): void {
    // Watched: Deno can leave the completion of this call undelivered until something else wakes the event loop.
    const call = watchCompletion(libc().epoll_wait_nb(this.#epfd, this.#events, MAX_EVENTS, -1));
    this.#inFlight = call;
    call.then((n) => this.#onEvents(n), (e) => this.#onFailure(e));
  }

  /** The end-of-turn wait on the JS thread (an immediate; an arrow so that it needs no binding per use). */
  #linger = (): void => {
    this.#lingerQueued = false;
    if (this.#inFlight || this.#closed || (this.#waiters === 0 && this.#turns.length === 0)) return;
    // A turn must be a real trip through the event loop, and lingering may have been turned off meanwhile.
    if (this.#turns.length > 0 || this.#lingerMs === 0) return this.#waitInPool();
    const m = libc().epoll_wait(this.#lingerEpfd, this.#events, MAX_EVENTS, this.#lingerMs);
    if (m < 0 && errno() !== EINTR) {
      this.#lingerMs = 0; // the linger epoll is broken: never try again (the pool still works)
      return this.#waitInPool();
    }
    let ours = false;
    let runtime = false;
    for (let i = 0; i < m; i++) {
      if (this.#eventsView.getUint32(i * EPOLL_EVENT.size + EPOLL_EVENT.data, true) === this.#epfd) ours = true;
      else runtime = true;
    }
    const n = ours ? libc().epoll_wait(this.#epfd, this.#events, MAX_EVENTS, 0) : 0;
    if (n > 0) {
      this.lingerStats.events++;
      this.#deliver(n); // the waiters' continuations run once this immediate returns
    }
    if (m === 0) {
      this.lingerStats.timeouts++;
      return this.#waitInPool();
    }
    if (runtime && n <= 0) {
      // The runtime has work and we have none: give the event loop its turn, waiting in the pool meanwhile.
      this.lingerStats.runtime++;
      return this.#waitInPool();
    }
    this.#pump(); // events delivered (or EINTR): linger again at the end of the next turn
  };

  #onEvents(n: number): void {
    this.#inFlight = null;
    this.#recalling = false;
    if (this.#closed) return this.#release();
    // n < 0 is almost always EINTR (a signal hit the worker thread, e.g. the nudge's SIGURG; errno is not visible
    // here): retry, but give up if it fails a thousand times in a row within a second, which means the epoll fd
    // itself is broken (an idle server interrupted once in a while must never get there).
    if (n < 0) {
      const now = performance.now();
      if (this.#failures === 0 || now - this.#failingSince > 1000) {
        this.#failures = 0;
        this.#failingSince = now;
      }
      if (++this.#failures > 1000) return this.#onFailure(new Error("epoll_wait keeps failing; poller stopped"));
    } else this.#failures = 0;
    this.#deliver(n);
    this.#pump();
  }

  /** Settles the waiters of the `n` events in the events buffer, and the pending turns. */
  #deliver(n: number): void {
    const fired: number[] = [];
    for (let i = 0; i < n; i++) {
      const at = i * EPOLL_EVENT.size;
      const events = this.#eventsView.getUint32(at + EPOLL_EVENT.events, true);
      const fd = this.#eventsView.getUint32(at + EPOLL_EVENT.data, true);
      if (fd === this.#wakeFd) {
        eventfdRead(this.#wakeFd);
        continue;
      }
      const entry = this.#entries.get(fd);
      if (!entry) continue; // forgotten meanwhile
      if (events & READ_EVENTS) { for (const w of entry.read) this.#settle(w); }
      if (events & READ_EVENTS) entry.read.clear();
      if (events & WRITE_EVENTS) { for (const w of entry.write) this.#settle(w); }
      if (events & WRITE_EVENTS) entry.write.clear();
      if (entry.read.size || entry.write.size) fired.push(fd);
    }
    // One-shot disarmed each fired fd: re-arm those that still have waiters in the other direction.
    for (const fd of fired) {
      const entry = this.#entries.get(fd);
      if (entry) this.#rearmQuietly(fd, entry);
    }
    for (const t of this.#turns.splice(0)) t();
  }

  #onFailure(e: unknown): void {
    this.#inFlight = null;
    if (this.#closed) return this.#release();
    // The FFI call itself failed (not a -1 from epoll_wait): nothing will ever complete, so fail everyone.
    for (const [fd, entry] of this.#entries) {
      for (const w of [...entry.read, ...entry.write]) this.#settle(w, e);
      entry.read.clear();
      entry.write.clear();
      this.#entries.delete(fd);
    }
    for (const t of this.#turns.splice(0)) t();
  }

  #release(): void {
    if (this.#lingerEpfd >= 0) libc().close(this.#lingerEpfd);
    libc().close(this.#wakeFd);
    libc().close(this.#epfd);
  }
}

let instance: Poller | undefined;

/** The process-wide poller, created on first use (and again if it was closed). */
export function poller(): Poller {
  if (!instance || instance.closed) instance = new Poller();
  return instance;
}

/** The process-wide poller if it exists and is open (so that forgetting an fd does not create one). */
export function existingPoller(): Poller | undefined {
  return instance && !instance.closed ? instance : undefined;
}
