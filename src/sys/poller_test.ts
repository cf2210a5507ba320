import assert from "node:assert/strict";
import { EBADF, EPERM, isErrno } from "./errno.ts";
import { closeFd, pipe, read, write } from "./fdio.ts";
import { mkfifo, openFifo } from "./fifo.ts";
import { cstr, libc } from "./libc.ts";
import { MAX_LINGER_MS, Poller, poller } from "./poller.ts";
import { sleep } from "../timer.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

/** Resolves to "pending" if `p` has not settled after `ms`. */
function settledWithin<T>(p: Promise<T>, ms: number): Promise<"settled" | "pending"> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.then(() => "settled" as const, () => "settled" as const),
    new Promise<"pending">((res) => timer = setTimeout(() => res("pending"), ms)),
  ]).finally(() => clearTimeout(timer));
}

Deno.test("wait resolves on readability, and not before", async () => {
  const [r, w] = pipe();
  try {
    const ready = poller().wait(r, "read");
    assert.equal(await settledWithin(ready, 30), "pending");
    write(w, bytes("x"));
    await ready;
    assert.equal(read(r, new Uint8Array(4)), 1);
  } finally {
    closeFd(r);
    closeFd(w);
  }
  await poller().idle();
  assert.equal(poller().pending, 0);
});

Deno.test("wait resolves on hang-up (the other end closed)", async () => {
  const [r, w] = pipe();
  const ready = poller().wait(r, "read");
  closeFd(w);
  await ready;
  assert.equal(read(r, new Uint8Array(4)), 0);
  closeFd(r);
});

Deno.test("one fd waited for read and write at once: each resolves on its own readiness", async () => {
  const dir = await Deno.makeTempDir();
  const p = `${dir}/f`;
  mkfifo(p);
  const fd = openFifo(p, "rw");
  try {
    const readable = poller().wait(fd, "read");
    const writable = poller().wait(fd, "write");
    await writable; // an empty fifo has room
    assert.equal(await settledWithin(readable, 30), "pending", "still not readable after the write side fired");
    write(fd, bytes("data"));
    await readable;
    // Fill the fifo: now it is readable but not writable.
    const chunk = new Uint8Array(65536);
    while (write(fd, chunk) > 0);
    const writable2 = poller().wait(fd, "write");
    await poller().wait(fd, "read");
    assert.equal(await settledWithin(writable2, 30), "pending");
    while (read(fd, chunk) > 0);
    await writable2;
  } finally {
    closeFd(fd);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("many fds share one poller; each wait resolves only for its own fd", async () => {
  const pipes = Array.from({ length: 200 }, () => pipe());
  try {
    const waits = pipes.map(([r]) => poller().wait(r, "read").then(() => r));
    assert.equal(poller().pending, 200);
    const order = [...pipes].reverse();
    const seen: number[] = [];
    for (const [i, [r, w]] of order.entries()) {
      write(w, bytes("!"));
      seen.push(await waits[pipes.findIndex(([x]) => x === r)]);
      assert.equal(poller().pending, 200 - i - 1, "exactly one wait resolved");
    }
    assert.deepEqual(seen, order.map(([r]) => r));
  } finally {
    for (const [r, w] of pipes) {
      closeFd(r);
      closeFd(w);
    }
  }
});

Deno.test("abort rejects with the signal's reason and leaves the poller idle", async () => {
  const [r, w] = pipe();
  try {
    const ac = new AbortController();
    const waiting = poller().wait(r, "read", ac.signal);
    ac.abort(new Error("gave up"));
    await assert.rejects(waiting, /gave up/);
    await assert.rejects(poller().wait(r, "read", ac.signal), /gave up/, "already aborted");
    assert.equal(poller().pending, 0);
    // The in-flight epoll_wait was woken; nothing keeps the process alive (the test's op sanitizer checks too).
    await poller().idle();
    // The fd still works afterwards.
    const again = poller().wait(r, "read");
    write(w, bytes("y"));
    await again;
  } finally {
    closeFd(r);
    closeFd(w);
  }
});

Deno.test("wake resolves one direction's pending waits at once; the fd stays watched for the other", async () => {
  const [r, w] = pipe();
  try {
    // A full pipe: neither end is ready for what is waited on below until something changes.
    while (write(w, new Uint8Array(65536)) > 0);
    const readWait = poller().wait(r, "read"); // ready at once (data): resolved by epoll, not by wake
    await readWait;
    const writeWait = poller().wait(w, "write");
    assert.equal(poller().wake(w, "read"), 0, "no read wait on w: nothing to wake");
    assert.equal(await settledWithin(writeWait, 30), "pending");
    assert.equal(poller().wake(w, "write"), 1);
    await writeWait;
    assert.equal(poller().pending, 0);
    // The fd is still usable with the poller afterwards.
    const again = poller().wait(w, "write");
    read(r, new Uint8Array(65536));
    await again;
  } finally {
    closeFd(r);
    closeFd(w);
  }
  await poller().idle();
});

Deno.test("forget rejects pending waits with EBADF", async () => {
  const [r, w] = pipe();
  const waiting = poller().wait(r, "read");
  closeFd(r); // forgets, then closes
  await assert.rejects(waiting, (e) => isErrno(e, EBADF));
  closeFd(w);
  await poller().idle();
});

Deno.test("regular files cannot be polled (EPERM); closed fds fail with EBADF", async () => {
  const path = await Deno.makeTempFile();
  const fd = libc().open(cstr(path), 0, 0);
  try {
    await assert.rejects(poller().wait(fd, "read"), (e) => isErrno(e, EPERM));
  } finally {
    closeFd(fd);
    await Deno.remove(path);
  }
  const [r, w] = pipe();
  closeFd(r);
  closeFd(w);
  await assert.rejects(poller().wait(r, "read"), (e) => isErrno(e, EBADF));
  assert.equal(poller().pending, 0);
});

Deno.test("turn resolves after a trip through the event loop: a due timer runs first", async () => {
  // Awaiting an already-resolved promise would spin in the microtask queue and never let the timer run.
  let fired = false;
  setTimeout(() => fired = true, 1);
  const deadline = performance.now() + 1000;
  while (!fired && performance.now() < deadline) await poller().turn();
  assert.ok(fired, "timers ran between turns");
});

Deno.test("close fails pending waits; a separate Poller instance is independent", async () => {
  const own = new Poller();
  const [r, w] = pipe();
  try {
    const waiting = own.wait(r, "read");
    own.close();
    await assert.rejects(waiting, /closed/);
    await assert.rejects(own.wait(r, "read"), /closed/);
    await own.idle();
  } finally {
    closeFd(r);
    closeFd(w);
  }
});

Deno.test("linger: validated; 0 turns it off", () => {
  const own = new Poller();
  try {
    for (const bad of [-1, MAX_LINGER_MS + 1, NaN]) assert.throws(() => own.linger(bad), RangeError);
    assert.equal(own.linger(0), false);
    assert.equal(own.lingerMs, 0);
  } finally {
    own.close();
  }
});

/**
 * Runs `fn` with a Poller of its own lingering `ms` and `pipes` fresh pipes, then closes them all. A wait still pending
 * when `fn` throws is rejected by the close: callers mark such waits handled (`.catch(() => {})`).
 */
async function withLingering(
  ms: number,
  pipes: number,
  fn: (own: Poller, ends: [number, number][]) => Promise<void>,
): Promise<void> {
  const own = new Poller();
  const ends = Array.from({ length: pipes }, () => pipe());
  try {
    assert.equal(own.linger(ms), true, "Deno 2.9 has the end-of-turn hook and a findable reactor epoll");
    await fn(own, ends);
  } finally {
    own.close();
    await own.idle();
    for (const [r, w] of ends) {
      closeFd(r);
      closeFd(w);
    }
  }
}

Deno.test("linger: readiness is delivered by the JS thread's own wait, without the pool", async () => {
  await withLingering(5, 1, async (own, [[r, w]]) => {
    write(w, bytes("x"));
    await own.wait(r, "read");
    assert.equal(read(r, new Uint8Array(4)), 1);
    assert.equal(own.lingerStats.events, 1);
    // A wait that nothing answers: the linger ends (runs out, or the runtime has work: the test runner's, the
    // sleep's), and the wait goes on in the pool.
    const quiet = own.wait(r, "read");
    quiet.catch(() => {});
    await sleep(30);
    const { timeouts, runtime } = own.lingerStats;
    assert.ok(timeouts + runtime >= 1, JSON.stringify(own.lingerStats));
    write(w, bytes("y"));
    await quiet; // delivered by the pool's epoll_wait, or by a linger after it was called back
    assert.equal(read(r, new Uint8Array(4)), 1);
  });
});

Deno.test("linger: the runtime's own I/O ends a linger (its epoll is in the set)", async () => {
  // The longest linger: were the runtime's epoll missing from the set, a child's exit (SIGCHLD, which Deno takes on
  // its reactor) while the JS thread lingers would wait for the linger to run out (counted as a timeout), never end
  // it (counted as runtime).
  await withLingering(MAX_LINGER_MS, 1, async (own, [[r, w]]) => {
    for (let i = 0; i < 20 && own.lingerStats.runtime === 0; i++) {
      const child = new Deno.Command("sleep", { args: ["0.01"], stdout: "null", stderr: "null" }).spawn();
      const waiting = own.wait(r, "read"); // lingers at the end of this turn, while the child runs
      waiting.catch(() => {});
      await child.status;
      write(w, bytes("z"));
      await waiting;
      read(r, new Uint8Array(4));
    }
    assert.ok(own.lingerStats.runtime >= 1, JSON.stringify(own.lingerStats));
  });
});

Deno.test("linger: activity while the pool waits calls that wait back", async () => {
  await withLingering(1, 2, async (own, [[r1, w1], [r2, w2]]) => {
    // Tried a few times: the nudge's signal can end the pool's wait just before the second wait comes (then that
    // one lingers at the end of its turn, and there is nothing to call back).
    for (let i = 0; i < 5 && own.lingerStats.recalls === 0; i++) {
      const first = own.wait(r1, "read");
      first.catch(() => {});
      await sleep(20); // the linger runs out: the wait is in the pool now
      const second = own.wait(r2, "read"); // JS activity with a wait: the pool's wait is called back
      write(w2, bytes("b"));
      await second;
      read(r2, new Uint8Array(4));
      write(w1, bytes("a"));
      await first;
      read(r1, new Uint8Array(4));
    }
    assert.ok(own.lingerStats.recalls >= 1, JSON.stringify(own.lingerStats));
  });
});
