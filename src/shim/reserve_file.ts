/**
 * Reservations through files: how a `start` reserves a place on a running server of its group without talking to it.
 *
 * The socket's Reserve (reserve.ts) costs a `start` libc (a `Deno.dlopen`), a connection and a wake-up of the server,
 * ~3 ms of a process whose floor is an empty `deno run` (bench/analysis.md, session 17). Here the same promise is
 * made with a few file operations that Deno does itself, under `--allow-read`/`--allow-write` alone:
 *
 * - a server holds an exclusive `flock` on `<group>.live` for as long as it takes new containers (the kernel drops
 *   it if the server dies, so a crashed server is never mistaken for a live one);
 * - `start` takes the group's stripe lock (`lock.<n>`, one of {@link STRIPES} files that are never removed), finds
 *   the live file locked by someone else, and writes `<group>.r.<namespace>:<id>` before it lets the lock go;
 * - a server decides to stop taking containers (Shutdown with nothing left, idleness) under the same stripe lock:
 *   reservation files younger than the reservation time keep it (they become in-memory reservations, task/service.ts),
 *   older ones are removed; when it goes, its live file goes in the same critical section.
 *
 * So a `start` that found the live file held has a place that the server will see before it could leave, and one that
 * finds no live file (no server, a server of an older build, one that has not taken its file yet, one leaving) falls
 * back to the socket's Reserve, which tells those cases apart. Everything lives in `<state dir>/groups`; a group is
 * named by its socket's file name (a hash, address.ts).
 *
 * The server never blocks its event loop on the stripe lock: it tries, and tries again 1 ms later, for a bounded time.
 *
 * @example
 * ```ts
 * import { groupFiles, reserveByFile } from "./reserve_file.ts";
 * const g = groupFiles("/run/containerd-shim-deno", "/run/containerd/s/6f1c…");
 * reserveByFile(g, "default", "redis"); // true: a live server of the group will keep a place for it
 * ```
 * @module
 */
import { after } from "../timer.ts";

/** Stripe lock files: groups share them by hash (never removed, so a lock is never taken on an unlinked file). */
export const STRIPES = 64;
/** How long a server tries for its stripe lock before it gives up this time. */
const LOCK_TRY_MS = 2000;
/** How long `start` tries for it before it asks over the socket instead (holders keep it for microseconds). */
const START_LOCK_TRY_MS = 1000;

/** Where a group's files are. */
export interface GroupFiles {
  /** `<state dir>/groups` */
  dir: string;
  /** The group's name: its socket's file name. */
  base: string;
}

/** The files of the group whose socket is `socketPath`, under `stateDir`. */
export function groupFiles(stateDir: string, socketPath: string): GroupFiles {
  return { dir: `${stateDir}/groups`, base: socketPath.slice(socketPath.lastIndexOf("/") + 1) };
}

/** FNV-1a of the group's name: its stripe. */
function stripeOf(base: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < base.length; i++) h = Math.imul(h ^ base.charCodeAt(i), 0x01000193) >>> 0;
  return h % STRIPES;
}

function stripePath(g: GroupFiles): string {
  return `${g.dir}/lock.${stripeOf(g.base)}`;
}

/** The file a live server of the group holds locked. */
export function livePath(g: GroupFiles): string {
  return `${g.dir}/${g.base}.live`;
}

const PREFIX = ".r.";

/** A reservation's file: namespace and id escaped, so that neither can carry a `/` or the separator. */
export function reservationPath(g: GroupFiles, namespace: string, id: string): string {
  return `${g.dir}/${g.base}${PREFIX}${encodeURIComponent(namespace)}:${encodeURIComponent(id)}`;
}

function openLock(path: string): Deno.FsFile {
  return Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
}

/**
 * `start`'s side: reserves a place for `namespace`/`id` when a live server of the group holds its file. False when
 * none does or anything fails: the caller asks over the socket instead (reserve.ts). Never throws.
 */
export function reserveByFile(g: GroupFiles, namespace: string, id: string): boolean {
  let lock: Deno.FsFile;
  try {
    lock = openLock(stripePath(g));
  } catch {
    return false; // no groups directory: no server has made one here
  }
  try {
    // Not a blocking lock: a holder stopped (SIGSTOP) must not hold every `start` of its stripe. A sleep that needs no
    // timer (a short-lived command's first `setTimeout` loads Deno's Node timers module, src/timer.ts).
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (const deadline = performance.now() + START_LOCK_TRY_MS; !lock.tryLockSync(true);) {
      if (performance.now() >= deadline) return false;
      Atomics.wait(pause, 0, 0, 1);
    }
    let live: Deno.FsFile;
    try {
      live = Deno.openSync(livePath(g), { read: true });
    } catch {
      return false;
    }
    try {
      // Ours to take means nobody holds it: the server is gone (closing the file drops our lock again).
      if (live.tryLockSync(true)) return false;
    } finally {
      live.close();
    }
    Deno.writeFileSync(reservationPath(g, namespace, id), new Uint8Array(), { mode: 0o600 });
    return true;
  } catch {
    return false;
  } finally {
    lock.close(); // drops the lock
  }
}

/** A reservation a server found in a file: who, and how long it still holds. */
export interface PendingReservation {
  namespace: string;
  id: string;
  remainingMs: number;
}

/** Runs `fn` under the stripe lock, trying without blocking (1 ms apart); undefined when it stayed busy. */
async function underStripe<T>(g: GroupFiles, fn: () => T): Promise<T | undefined> {
  const lock = openLock(stripePath(g));
  try {
    for (const deadline = performance.now() + LOCK_TRY_MS;;) {
      if (lock.tryLockSync(true)) return fn();
      if (performance.now() >= deadline) return undefined;
      await new Promise<void>((resolve) => after(1, resolve));
    }
  } finally {
    lock.close();
  }
}

/**
 * The server's side for one group: its live file, the decisions taken under the stripe lock, and the reservations
 * it consumes.
 */
export class GroupLease {
  #live: Deno.FsFile | undefined;
  #released = false;

  constructor(readonly files: GroupFiles, readonly reservationMs: number) {}

  /** Whether this server holds the group's live file (starts reserve through files). */
  get live(): boolean {
    return this.#live !== undefined;
  }

  /**
   * Takes the live file: a stale one (a server that died) is replaced. False when the stripe lock stayed busy or the
   * files cannot be made; `start`s then reserve over the socket, which still works.
   */
  async open(): Promise<boolean> {
    try {
      Deno.mkdirSync(this.files.dir, { recursive: true, mode: 0o700 });
      const taken = await underStripe(this.files, () => {
        if (this.#released) return false;
        const path = livePath(this.files);
        try {
          Deno.removeSync(path);
        } catch { /* none */ }
        const f = Deno.openSync(path, { read: true, write: true, createNew: true, mode: 0o600 });
        if (!f.tryLockSync(true)) {
          f.close();
          return false;
        }
        this.#live = f;
        return true;
      });
      return taken === true;
    } catch {
      return false;
    }
  }

  /**
   * Decides, under the stripe lock, whether the server stops taking containers: `pending` are the reservation files
   * still in time (expired ones are removed). When `decide` returns true the live file is removed in the same critical
   * section, so no `start` can reserve after it. Undefined when the lock stayed busy (decide later).
   */
  settle(decide: (pending: PendingReservation[]) => boolean): Promise<boolean | undefined> {
    return underStripe(this.files, () => {
      const stop = decide(this.#pending());
      if (stop) this.release();
      return stop;
    });
  }

  /** The group's reservation files: their paths and what follows the prefix (`<ns>:<id>`, escaped). */
  #reservationFiles(): { path: string; key: string }[] {
    const prefix = `${this.files.base}${PREFIX}`;
    try {
      return [...Deno.readDirSync(this.files.dir)]
        .filter((e) => e.name.startsWith(prefix))
        .map((e) => ({ path: `${this.files.dir}/${e.name}`, key: e.name.slice(prefix.length) }));
    } catch {
      return []; // no directory
    }
  }

  /** The group's reservation files in time; removes those that expired. */
  #pending(): PendingReservation[] {
    const out: PendingReservation[] = [];
    const now = Date.now();
    for (const { path, key } of this.#reservationFiles()) {
      const [ns, id] = key.split(":");
      let age = Infinity;
      try {
        age = now - (Deno.statSync(path).mtime?.getTime() ?? 0);
      } catch { /* gone meanwhile */ }
      if (id !== undefined && age < this.reservationMs) {
        out.push({
          namespace: decodeURIComponent(ns),
          id: decodeURIComponent(id),
          remainingMs: this.reservationMs - age,
        });
      } else {
        remove(path);
      }
    }
    return out;
  }

  /**
   * The reservation for `namespace`/`id` is done with (its Create arrived, or a Shutdown named it): its file, if any,
   * goes. Without a namespace, the id's file in any namespace.
   */
  consume(namespace: string | undefined, id: string): void {
    if (namespace !== undefined) return remove(reservationPath(this.files, namespace, id));
    const suffix = `:${encodeURIComponent(id)}`;
    for (const { path, key } of this.#reservationFiles()) if (key.endsWith(suffix)) remove(path);
  }

  /**
   * Lets the group go: the live file is removed and unlocked, and reservation files left are removed (their server
   * is leaving); a server that never held the live file touches nothing. Idempotent. Called under the stripe lock by
   * {@linkcode settle}; directly when the server goes whatever the files say (a signal, a failed listener).
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (!this.#live) return; // the group's files belong to whichever server holds them
    remove(livePath(this.files));
    try {
      this.#live.close();
    } catch { /* closed already: the lock went with it */ }
    this.#live = undefined;
    for (const { path } of this.#reservationFiles()) remove(path);
  }
}

function remove(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* already gone */ }
}
