import assert from "node:assert/strict";
import { runcStateDirExists } from "./delete.ts";

Deno.test("runcStateDirExists: runc's directory for the container decides whether runc delete runs", () => {
  const root = Deno.makeTempDirSync({ prefix: "runc-root-" });
  try {
    assert.equal(runcStateDirExists(root, "c1"), false, "no directory: runc delete --force would find nothing");
    Deno.mkdirSync(`${root}/c1`);
    assert.equal(runcStateDirExists(root, "c1"), true, "a directory, even without state.json, is runc's to remove");
    assert.equal(runcStateDirExists(`${root}/missing-root`, "c1"), false);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
