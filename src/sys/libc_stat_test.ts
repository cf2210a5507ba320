import assert from "node:assert/strict";
import { statPath } from "./libc.ts";
import { SysError } from "./errno.ts";

Deno.test("statPath agrees with Deno.statSync on dev, ino, size, uid, mode and mtime", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const file = `${dir}/f`;
    Deno.writeTextFileSync(file, "12345");
    Deno.utimeSync(file, new Date(1_700_000_000_123), new Date(1_700_000_000_987));
    Deno.symlinkSync(file, `${dir}/link`);
    for (const path of [file, `${dir}/link`, dir, Deno.execPath(), "/proc/self/exe"]) {
      const ours = statPath(path), deno = Deno.statSync(path);
      assert.deepEqual(
        [ours.dev, ours.ino, ours.size, ours.uid, ours.mode & 0o7777, ours.isFile, ours.mtimeMs],
        [deno.dev, deno.ino, deno.size, deno.uid, deno.mode! & 0o7777, deno.isFile, deno.mtime?.getTime()],
        path,
      );
    }
    assert.equal(statPath(file).mtimeMs, 1_700_000_000_987);
    assert.equal(statPath(file).size, 5);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("statPath throws SysError ENOENT for a missing path", () => {
  assert.throws(() => statPath("/nonexistent/x"), (e) => e instanceof SysError && e.code === "ENOENT");
});
