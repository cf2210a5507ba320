import assert from "node:assert/strict";
import { libcCandidates } from "../permissions.ts";
import { EBADF } from "./errno.ts";
import { addressOf, bindLibc, errno, libc } from "./libc.ts";

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
console.log(JSON.stringify(out));
`;

Deno.test("src/sys works with --allow-ffi scoped to libcCandidates() (no raw pointer APIs)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--no-config",
      `--allow-ffi=${libcCandidates().join(",")}`,
      "--allow-read",
      "--allow-write",
      "--allow-net",
      scopedScript,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), {
    close: "EBADF",
    stat: true,
    subreaper: false,
    read: 3,
    console: "console socket: expected one pty fd, got 0",
  });
});

Deno.test("bindLibc binds the listed symbols at once; they work and later calls do not rebind them", () => {
  const C = libc() as unknown as Record<string, unknown>;
  bindLibc(["geteuid", "getpid"]);
  for (const n of ["geteuid", "getpid"]) {
    const d = Object.getOwnPropertyDescriptor(C, n)!;
    assert.equal(d.get, undefined, `${n} is a bound value, not a lazy getter`);
    assert.equal(typeof d.value, "function");
  }
  assert.equal(libc().getpid(), Deno.pid);
  assert.equal(libc().geteuid(), Deno.uid());
  const bound = libc().getpid;
  bindLibc(["getpid"]);
  assert.equal(libc().getpid, bound, "already bound: skipped");
});

Deno.test("sleep_nb is poll(NULL, 0, ms) off the JS thread: it resolves with 0 (timed out)", async () => {
  assert.equal(await libc().sleep_nb(null, 0n, 1), 0);
});
