import assert from "node:assert/strict";
import {
  idleStackRange,
  idleStackRelease,
  releaseScratchBuffers,
  scratchBuffer,
  STACK_MARGIN,
  trimMalloc,
} from "./memory.ts";

const MAPS = [
  "55d0c0000000-55d0c0200000 r-xp 00000000 fe:00 123 /usr/bin/deno",
  "7f0000000000-7f0000100000 rw-p 00000000 00:00 0 ",
  "7ffd00000000-7ffd00069000 rw-p 00000000 00:00 0                          [stack]",
  "7ffd000f0000-7ffd000f2000 r-xp 00000000 00:00 0                          [vdso]",
].join("\n");
const top = 0x7ffd00069000;

Deno.test("idleStackRange: from the stack's bottom to a 64 KiB boundary more than the margin below the pointer", () => {
  const sp = top - 0x3000;
  const r = idleStackRange(`0 0x15 0x7f 0x20 0xfff 0x0 0x0 0x${sp.toString(16)} 0x7f0000001234`, MAPS);
  assert.ok(r);
  assert.equal(r.start, 0x7ffd00000000);
  const end = r.start + r.length;
  assert.equal(end % (64 * 1024), 0);
  assert.ok(end <= sp - STACK_MARGIN && end > sp - STACK_MARGIN - 64 * 1024, end.toString(16));
  // Blocked outside a system call: "-1 sp pc".
  assert.deepEqual(idleStackRange(`-1 0x${sp.toString(16)} 0x7f0000001234`, MAPS), r);
});

Deno.test("idleStackRange: nothing when the thread runs, is elsewhere, or is not deep enough below the margin", () => {
  assert.equal(idleStackRange("running", MAPS), undefined);
  assert.equal(idleStackRange("", MAPS), undefined);
  // A pointer in another mapping: a thread that is not the main one.
  assert.equal(idleStackRange("7 0x1 0x2 0x3 0x4 0x5 0x6 0x7f0000080000 0x1", MAPS), undefined);
  // The whole stack within the margin.
  const shallow = 0x7ffd00000000 + STACK_MARGIN - 0x100;
  assert.equal(idleStackRange(`7 0x1 0x2 0x3 0x4 0x5 0x6 0x${shallow.toString(16)} 0x1`, MAPS), undefined);
  // No [stack] line at all.
  assert.equal(idleStackRange(`7 0x1 0x2 0x3 0x4 0x5 0x6 0x${(top - 0x3000).toString(16)} 0x1`, ""), undefined);
  assert.equal(idleStackRange("7 0x1 0x2 0x3 0x4 0x5 0x6 zz 0x1", MAPS), undefined);
});

/** A script run by `deno run` (its JS on the process's main thread): the stack's private dirty KiB around a release. */
const MAIN_THREAD_SCRIPT = `
import { idleStackRelease } from ${JSON.stringify(new URL("./memory.ts", import.meta.url).href)};
import { readFile } from ${JSON.stringify(new URL("./procfs.ts", import.meta.url).href)};
const stackKiB = () => {
  const smaps = readFile("/proc/self/smaps");
  return Number(/Private_Dirty:\\s+(\\d+)/.exec(smaps.slice(smaps.indexOf("[stack]")))[1]);
};
const deep = (n) => n === 0 ? 0 : n + deep(n - 1);
deep(3000);
const before = stackKiB();
const released = idleStackRelease()();
const after = stackKiB();
const sum = deep(3000); // the released pages come back, zeroed, when the thread goes deep again
console.log(JSON.stringify({ before, released, after, sum, again: stackKiB() }));
`;

Deno.test("idleStackRelease: on the main thread the touched stack below the pointer goes back, and is usable again", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/release.js`, MAIN_THREAD_SCRIPT);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--no-config", `${dir}/release.js`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.ok(r.released > 0, JSON.stringify(r));
    assert.ok(r.after < r.before, JSON.stringify(r));
    assert.equal(r.sum, 3000 * 3001 / 2);
    assert.ok(r.again > r.after, JSON.stringify(r));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("idleStackRelease: off the main thread (deno test runs tests on another) it releases nothing", () => {
  assert.equal(idleStackRelease()(), 0);
});

Deno.test("trimMalloc: harmless, and malloc works afterwards", () => {
  trimMalloc();
  const big = new Uint8Array(1 << 20).fill(1);
  assert.equal(big[big.length - 1], 1);
});

Deno.test("releaseScratchBuffers: the whole pages inside a scratch buffer go back (zeroed), and it stays usable", () => {
  const buf = scratchBuffer(64 * 1024);
  buf.fill(7);
  const released = releaseScratchBuffers();
  assert.ok(released >= 56 * 1024, `released ${released} bytes`);
  assert.equal(buf[32 * 1024], 0, "an interior page still holds its bytes");
  assert.ok(buf.every((b) => b === 0 || b === 7), "only whole pages are zeroed");
  buf.fill(1);
  assert.ok(buf.every((b) => b === 1));
});
