import assert from "node:assert/strict";
import { F_GETFD, F_GETFL, FD_CLOEXEC, O_NONBLOCK } from "./abi.ts";
import { EEXIST, ENOENT, ENXIO, isErrno } from "./errno.ts";
import { closeFd, read, readAsync, writeAll } from "./fdio.ts";
import { isFifo, mkfifo, openFifo } from "./fifo.ts";
import { libc } from "./libc.ts";
import { poller } from "./poller.ts";

async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fifo-test" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("mkfifo creates a fifo with the given mode; isFifo tells fifos apart", () =>
  withDir(async (dir) => {
    const p = `${dir}/stdout`;
    assert.equal(isFifo(p), false);
    mkfifo(p, 0o640);
    assert.ok(isFifo(p));
    const st = await Deno.stat(p);
    assert.ok(st.isFifo);
    assert.equal(st.mode! & 0o777, 0o640 & ~0o022);
    assert.throws(() => mkfifo(p), (e) => isErrno(e, EEXIST));
    assert.equal(isFifo(dir), false);
    await Deno.writeTextFile(`${dir}/plain`, "x");
    assert.equal(isFifo(`${dir}/plain`), false);
  }));

Deno.test("openFifo 'w' fails with ENXIO while nobody reads, and works once a reader exists", () =>
  withDir(async (dir) => {
    const p = `${dir}/f`;
    assert.throws(() => openFifo(p, "w"), (e) => isErrno(e, ENOENT));
    mkfifo(p);
    assert.throws(() => openFifo(p, "w"), (e) => isErrno(e, ENXIO) && e.message.includes(p));
    const r = openFifo(p, "r");
    const w = openFifo(p, "w");
    try {
      for (const fd of [r, w]) {
        assert.equal(libc().fcntl(fd, F_GETFD, 0n) & FD_CLOEXEC, FD_CLOEXEC);
        assert.equal(libc().fcntl(fd, F_GETFL, 0n) & O_NONBLOCK, O_NONBLOCK);
      }
      await writeAll(w, new TextEncoder().encode("hello"));
      const buf = new Uint8Array(16);
      assert.equal(text(buf.subarray(0, await readAsync(r, buf))), "hello");
      closeFd(w);
      assert.equal(await readAsync(r, buf), 0, "EOF after the writer left");
    } finally {
      closeFd(r);
    }
  }));

Deno.test("openFifo 'rw' needs no peer and writes never fail for lack of a reader", () =>
  withDir((dir) => {
    const p = `${dir}/f`;
    mkfifo(p);
    const fd = openFifo(p, "rw");
    try {
      assert.equal(libc().write(fd, new Uint8Array(100), 100n), 100);
    } finally {
      closeFd(fd);
    }
  }));

Deno.test("a fifo opened 'r' before any writer: wait for readability, then read the writer's data", () =>
  withDir(async (dir) => {
    const p = `${dir}/stdin`;
    mkfifo(p);
    const r = openFifo(p, "r");
    try {
      // Before any writer a read says 0, which is not the end of the stream...
      assert.equal(read(r, new Uint8Array(8)), 0);
      // ...so wait for readiness first. The writer shows up later, as a containerd client would.
      const ready = poller().wait(r, "read");
      let settled = false;
      ready.then(() => settled = true);
      await new Promise((res) => setTimeout(res, 50));
      assert.equal(settled, false, "no readiness before a writer");
      const writer = new Deno.Command("sh", { args: ["-c", `printf 'input\\n' > ${p}`] }).spawn();
      await ready;
      const buf = new Uint8Array(64);
      assert.equal(text(buf.subarray(0, await readAsync(r, buf))), "input\n");
      assert.equal((await writer.status).code, 0);
      assert.equal(await readAsync(r, buf), 0);
    } finally {
      closeFd(r);
    }
  }));
