import assert from "node:assert/strict";
import { O_CLOEXEC, POLLIN } from "./abi.ts";
import { EAGAIN, EBADF, EINTR, ENOENT } from "./errno.ts";
import { addressOf, bindLibc, callAgain, cstr, errno, libc, libcCandidates, viaSyscall } from "./libc.ts";

Deno.test("errno is the errno of the sync call that just failed", () => {
  assert.equal(libc().close(-1), -1);
  assert.equal(errno(), EBADF);
});

Deno.test("addressOf gives distinct, stable addresses of ArrayBuffer views", () => {
  const buf = new Uint8Array(new ArrayBuffer(64));
  const a = addressOf(buf);
  assert.equal(addressOf(buf), a);
  assert.equal(addressOf(buf.subarray(8)), a + 8n);
});

const scopedScript = `
const sys = await import(${JSON.stringify(new URL("./mod.ts", import.meta.url).href)});
const libcModule = await import(${JSON.stringify(new URL("./libc.ts", import.meta.url).href)});
if (Deno.args[0] === "pointers") libcModule.useCallPointers();
const out = {};
try { sys.close(-1); } catch (e) { out.close = e.code; }
out.stat = sys.readFile("/proc/self/stat").startsWith(Deno.pid + " ");
out.subreaper = sys.isChildSubreaper();
const [r, w] = sys.pipe();
const reading = sys.readAsync(r, new Uint8Array(8));
await sys.writeAll(w, new Uint8Array([1, 2, 3]));
out.read = await reading;
sys.closeFd(r); sys.closeFd(w);
const socket = await sys.ConsoleSocket.create();
const pending = socket.receive(5000);
const conn = await Deno.connect({ transport: "unix", path: socket.path });
await conn.write(new TextEncoder().encode("x"));
conn.close();
out.console = await pending.then(() => "received?", (e) => e.message);
socket.close();
out.pointers = libcModule.callsThroughPointers();
console.log(JSON.stringify(out));
`;

/** Runs scopedScript under `ffi` (the --allow-ffi flag), asking for calls through addresses when `pointers`. */
async function runSysScript(ffi: string, pointers: boolean): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--no-config",
      ffi,
      "--allow-read",
      "--allow-write",
      "--allow-net",
      scopedScript,
      pointers ? "pointers" : "",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

const SYS_RESULTS = {
  close: "EBADF",
  stat: true,
  subreaper: false,
  read: 3,
  console: "console socket: expected one pty fd, got 0",
};

Deno.test("src/sys works with --allow-ffi scoped to libcCandidates() (no raw pointer APIs)", async () => {
  const scoped = `--allow-ffi=${libcCandidates().join(",")}`;
  assert.deepEqual(await runSysScript(scoped, false), { ...SYS_RESULTS, pointers: false });
  // Calls through addresses are allowed by the scoped permission (raw memory access is what needs the unscoped one).
  assert.deepEqual(await runSysScript(scoped, true), { ...SYS_RESULTS, pointers: true });
});

Deno.test("useCallPointers: src/sys works the same with libc called through addresses", async () => {
  assert.deepEqual(await runSysScript("--allow-ffi", true), { ...SYS_RESULTS, pointers: true });
  assert.deepEqual(await runSysScript("--allow-ffi", false), { ...SYS_RESULTS, pointers: false });
});

Deno.test("bindLibc binds the listed symbols at once; they work and later calls do not rebind them", () => {
  const C = libc() as unknown as Record<string, unknown>;
  bindLibc(["strlen", "malloc_trim"]);
  for (const n of ["strlen", "malloc_trim"]) {
    const d = Object.getOwnPropertyDescriptor(C, n)!;
    assert.equal(d.get, undefined, `${n} is a bound value, not a lazy getter`);
    assert.equal(typeof d.value, "function");
  }
  const text = new Uint8Array(new ArrayBuffer(4));
  text.set([97, 98, 99, 0]);
  assert.equal(Number(libc().strlen(addressOf(text))), 3);
  const bound = libc().strlen;
  bindLibc(["strlen"]);
  assert.equal(libc().strlen, bound, "already bound: skipped");
  // Plain system calls bind syscall() instead of themselves.
  bindLibc(["getpid", "geteuid"]);
  assert.equal(typeof Object.getOwnPropertyDescriptor(C, "syscall")!.value, "function");
  assert.equal(libc().getpid(), Deno.pid);
  assert.equal(libc().geteuid(), Deno.uid());
});

Deno.test("sleep_nb is poll(NULL, 0, ms) off the JS thread: it resolves with 0 (timed out)", async () => {
  assert.equal(await libc().sleep_nb(null, 0n, 1), 0);
});

Deno.test("plain system calls go through syscall(): same results and errno as libc's own functions", () => {
  const C = libc();
  for (
    const name of ["read", "write", "close", "open", "pipe2", "dup2", "poll", "socket", "accept4", "fcntl"] as const
  ) {
    assert.ok(viaSyscall(name), `${name} should go through syscall()`);
  }
  assert.ok(!viaSyscall("posix_spawn") && !viaSyscall("timer_create") && !viaSyscall("epoll_wait_nb"));
  // A pipe, written and read through small typed arrays (which V8 may keep on its moving heap).
  const fds = new Int32Array(2);
  assert.equal(C.pipe2(new Uint8Array(fds.buffer), O_CLOEXEC), 0);
  const [r, w] = fds;
  assert.equal(C.write(w, new Uint8Array([1, 2, 3]), 3n), 3);
  const got = new Uint8Array(8);
  assert.equal(C.read(r, got, 8n), 3);
  assert.deepEqual([...got.subarray(0, 3)], [1, 2, 3]);
  // poll: readable with data waiting, a timeout (0 ms) without.
  const pfd = new Uint8Array(8);
  new DataView(pfd.buffer).setInt32(0, r, true);
  new DataView(pfd.buffer).setInt16(4, POLLIN, true);
  assert.equal(C.poll(pfd, 1n, 0), 0);
  C.write(w, new Uint8Array([9]), 1n);
  assert.equal(C.poll(pfd, 1n, 50), 1);
  // dup2: another number, the same number (its own answer, not dup3's EINVAL), a closed fd (EBADF).
  const copy = C.dup2(r, 900);
  assert.equal(copy, 900);
  assert.equal(C.dup2(900, 900), 900);
  assert.equal(C.close(900), 0);
  assert.equal(C.dup2(900, 900), -1);
  assert.equal(errno(), EBADF);
  // open: relative to the working directory (openat with AT_FDCWD), ENOENT with errno.
  assert.equal(C.open(cstr("/nonexistent/x"), 0, 0), -1);
  assert.equal(errno(), ENOENT);
  const fd = C.open(cstr("/proc/self/stat"), 0, 0);
  assert.ok(fd >= 0);
  for (const f of [fd, r, w]) assert.equal(C.close(f), 0);
  assert.equal(C.close(r), -1);
  assert.equal(errno(), EBADF);
});

Deno.test("callAgain: EINTR and the ENOENT a runtime initialisation leaves in errno are retried; EAGAIN and real errors are not", () => {
  assert.equal(callAgain(EINTR), true);
  assert.equal(callAgain(ENOENT), true);
  assert.equal(callAgain(EAGAIN), false);
  assert.equal(callAgain(EBADF), false);
});
