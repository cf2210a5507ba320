import assert from "node:assert/strict";
import { F_GETFD, F_GETFL, FD_CLOEXEC, O_NONBLOCK, O_RDONLY, O_WRONLY } from "./abi.ts";
import { EBADF, EPIPE, isErrno } from "./errno.ts";
import { closeFd, copy, pipe, read, readAsync, waitFor, write, writeAll } from "./fdio.ts";
import { mkfifo, openFifo } from "./fifo.ts";
import { check, cstr, libc, setNonblocking } from "./libc.ts";
import { poller } from "./poller.ts";

const flags = (fd: number) => ({
  cloexec: (libc().fcntl(fd, F_GETFD, 0n) & FD_CLOEXEC) !== 0,
  nonblock: (libc().fcntl(fd, F_GETFL, 0n) & O_NONBLOCK) !== 0,
});

Deno.test("pipe returns close-on-exec, non-blocking ends; read and write say -1 instead of blocking", () => {
  const [r, w] = pipe();
  try {
    assert.deepEqual(flags(r), { cloexec: true, nonblock: true });
    assert.deepEqual(flags(w), { cloexec: true, nonblock: true });
    const buf = new Uint8Array(65536);
    assert.equal(read(r, buf), -1);
    let total = 0, n: number;
    while ((n = write(w, buf)) > 0) total += n;
    assert.equal(n, -1);
    assert.equal(total, 65536, "a pipe holds 64 KiB");
    assert.equal(read(r, buf), 65536);
  } finally {
    closeFd(r);
    closeFd(w);
  }
});

Deno.test("write to a pipe without reader throws EPIPE; I/O on a closed fd throws EBADF", () => {
  const [r, w] = pipe();
  closeFd(r);
  assert.throws(
    () => write(w, new Uint8Array(1)),
    (e) => isErrno(e, EPIPE) && /^write fd \d+: Broken pipe/.test(e.message),
  );
  closeFd(w);
  assert.throws(() => read(r, new Uint8Array(1)), (e) => isErrno(e, EBADF));
});

Deno.test("setNonblocking makes a blocking fd non-blocking", () => {
  const fd = check(libc().open(cstr("/dev/null"), O_RDONLY, 0), "open");
  try {
    assert.equal(flags(fd).nonblock, false);
    setNonblocking(fd);
    assert.equal(flags(fd).nonblock, true);
  } finally {
    closeFd(fd);
  }
});

Deno.test("readAsync waits for data and reports EOF as 0; abort rejects", async () => {
  const [r, w] = pipe();
  try {
    const buf = new Uint8Array(16);
    setTimeout(() => write(w, new TextEncoder().encode("late")), 20);
    const n = await readAsync(r, buf);
    assert.equal(new TextDecoder().decode(buf.subarray(0, n)), "late");
    const ac = new AbortController();
    const pending = readAsync(r, buf, ac.signal);
    ac.abort(new Error("stop"));
    await assert.rejects(pending, /stop/);
  } finally {
    closeFd(w);
  }
  assert.equal(await readAsync(r, new Uint8Array(4)), 0);
  closeFd(r);
  await poller().idle();
});

Deno.test("writeAll pushes 8 MiB through a 64 KiB pipe to a concurrent reader, byte-exact", async () => {
  const [r, w] = pipe();
  const data = new Uint8Array(8 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 13)) & 0xff;
  const received = new Uint8Array(data.length);
  const reading = (async () => {
    let at = 0;
    const buf = new Uint8Array(100_000); // not a multiple of the pipe size
    for (;;) {
      const n = await readAsync(r, buf);
      if (n === 0) return at;
      received.set(buf.subarray(0, n), at);
      at += n;
    }
  })();
  await writeAll(w, data);
  closeFd(w);
  assert.equal(await reading, data.length);
  assert.deepEqual(received, data);
  closeFd(r);
});

Deno.test("copy moves a child's output from a fifo to a file until EOF", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fifo = `${dir}/out`;
    mkfifo(fifo);
    const src = openFifo(fifo, "r");
    const dst = check(libc().open(cstr(`${dir}/copy`), O_WRONLY | 0o100, /* O_CREAT */ 0o600), "open");
    try {
      const child = new Deno.Command("sh", { args: ["-c", `seq 1 300000 > ${fifo}`] }).spawn();
      await poller().wait(src, "read"); // a fifo opened before its writer reads as EOF until the writer shows up
      const n = await copy(src, dst);
      assert.equal((await child.status).code, 0);
      const expected = new TextDecoder().decode(
        (await new Deno.Command("seq", { args: ["1", "300000"] }).output()).stdout,
      );
      assert.equal(n, expected.length);
      assert.equal(await Deno.readTextFile(`${dir}/copy`), expected);
    } finally {
      closeFd(src);
      closeFd(dst);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stream that never blocks still lets timers run (the async helpers yield)", async () => {
  // /dev/zero is always readable and /dev/null always writable: without yields this loop would never let the
  // timer fire and would only stop at its iteration cap. No time is asserted (a loaded machine delays any timer).
  const zero = check(libc().open(cstr("/dev/zero"), O_RDONLY, 0), "open");
  const nul = check(libc().open(cstr("/dev/null"), O_WRONLY, 0), "open");
  try {
    const buf = new Uint8Array(65536);
    let fired = false;
    setTimeout(() => fired = true, 10);
    let rounds = 0;
    for (; !fired && rounds < 200_000; rounds++) {
      assert.ok((await readAsync(zero, buf)) > 0);
      await writeAll(nul, buf);
    }
    assert.ok(fired, `the timer never ran during ${rounds} rounds of copying`);
  } finally {
    closeFd(zero);
    closeFd(nul);
  }
});

Deno.test("writeAll reports a failing write as a rejection, never a synchronous throw (also on its fast path)", async () => {
  const notOpen = 1 << 20; // no process here has that many fds: write(2) fails with EBADF
  const [r, w] = pipe();
  try {
    await waitFor(w, "write"); // a fresh time slice: writeAll tries the synchronous write first
    let result: Promise<void> | undefined;
    assert.doesNotThrow(() => result = writeAll(notOpen, new Uint8Array([4])));
    await assert.rejects(result!, (e) => isErrno(e, EBADF));
  } finally {
    closeFd(r);
    closeFd(w);
  }
});

Deno.test("paceIo: the first slice starts with the first I/O, not when the module loaded", async () => {
  // A fresh process: this file's other tests already did I/O. A server's first read comes well after its modules
  // loaded; yielding there would create the poller and wait for a turn through its thread.
  const script = `
    import { paceIo } from ${JSON.stringify(new URL("./fdio.ts", import.meta.url).href)};
    const block = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    block(20);
    const first = paceIo() === undefined;
    block(20);
    const later = paceIo() !== undefined;
    console.log(JSON.stringify({ first, later }));
    Deno.exit(0);
  `;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", "--ext=ts", script], stdout: "piped" }).output();
  assert.equal(out.code, 0);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), { first: true, later: true });
});
