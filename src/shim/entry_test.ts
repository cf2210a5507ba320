import assert from "node:assert/strict";
import { entryExists } from "./entry.ts";

Deno.test("entryExists: files, directories, dangling links; absent names and absent directories", () => {
  const dir = Deno.makeTempDirSync({ prefix: "entry-test" });
  try {
    Deno.writeTextFileSync(`${dir}/file`, "");
    Deno.mkdirSync(`${dir}/sub`);
    Deno.symlinkSync(`${dir}/nowhere`, `${dir}/dangling`);
    assert.equal(entryExists(`${dir}/file`), true);
    assert.equal(entryExists(`${dir}/sub`), true);
    assert.equal(entryExists(`${dir}/dangling`), true);
    assert.equal(entryExists(`${dir}/fil`), false, "a prefix of a name is not the name");
    assert.equal(entryExists(`${dir}/missing/file`), false);
    assert.equal(entryExists("/tmp"), true, "an entry of the root directory");
    assert.throws(() => entryExists(`${dir}/`), RangeError);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
