import assert from "node:assert/strict";
import { ENOENT, isErrno } from "./errno.ts";
import { readBytes, readFile, readFileOrNull, writeFile } from "./procfs.ts";

Deno.test("readFile reads /proc, which Deno itself refuses without --allow-all", () => {
  const stat = readFile("/proc/self/stat");
  assert.match(stat, new RegExp(`^${Deno.pid} \\(`));
});

Deno.test("readBytes reads files larger than one chunk completely", async () => {
  // /proc/self/maps of a Deno process is tens of KiB; compare with what cat sees of the same process.
  const mine = readFile(`/proc/${Deno.pid}/maps`);
  assert.ok(mine.length > 8192, `maps is only ${mine.length} bytes`);
  const out = await new Deno.Command("cat", { args: [`/proc/${Deno.pid}/maps`] }).output();
  const theirs = new TextDecoder().decode(out.stdout);
  // Anonymous mappings (V8's heap, at random addresses below the binary) may change in between; the executable's own
  // file-backed mappings do not.
  const exe = (text: string) => text.split("\n").filter((l) => l.endsWith(Deno.execPath()));
  assert.ok(exe(mine).length >= 2, `no mappings of ${Deno.execPath()} in:\n${mine.slice(0, 2000)}`);
  assert.deepEqual(exe(mine), exe(theirs));
  assert.ok(Math.abs(mine.length - theirs.length) < mine.length / 2);
});

Deno.test("missing files: readFile throws ENOENT, readFileOrNull returns null", () => {
  assert.throws(() => readFile("/proc/999999999/stat"), (e) => isErrno(e, ENOENT));
  assert.equal(readFileOrNull("/proc/999999999/stat"), null);
  assert.equal(readFileOrNull("/nonexistent/file"), null);
});

Deno.test("writeFile replaces the content of an existing file and never creates one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = `${dir}/f`;
    assert.throws(() => writeFile(p, "x"), (e) => isErrno(e, ENOENT));
    await Deno.writeTextFile(p, "a longer old content");
    writeFile(p, "new");
    assert.equal(await Deno.readTextFile(p), "new");
    writeFile(p, new Uint8Array([0x68, 0x69]));
    assert.deepEqual(readBytes(p), new Uint8Array([0x68, 0x69]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
