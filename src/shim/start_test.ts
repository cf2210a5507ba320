import assert from "node:assert/strict";
import { writeSmallFile } from "./start.ts";

Deno.test("address: a file is created, and one that exists is written over and cut to the new length", () => {
  const dir = Deno.makeTempDirSync({ prefix: "start-address-" });
  try {
    const path = `${dir}/address`;
    writeSmallFile(path, "unix:///run/containerd/s/long-name");
    writeSmallFile(path, "unix:///x");
    assert.equal(Deno.readTextFileSync(path), "unix:///x");
    assert.throws(() => writeSmallFile(`${dir}/missing/file`, "x"), Deno.errors.NotFound);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
