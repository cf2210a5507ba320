import assert from "node:assert/strict";
import { repairShimConfig, withShimConfig } from "./shim_config.ts";

Deno.test("withShimConfig: the config is there inside the window, and gone after when it was absent", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/etc/shim.json`;
  try {
    const inside = await withShimConfig({ grouping: "node" }, dir, () => Deno.readTextFile(path), path);
    assert.deepEqual(JSON.parse(inside), { grouping: "node" });
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(`${dir}/shim-config.journal.json`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("withShimConfig: a previous file comes back with its content and mode, also when fn throws", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/shim.json`;
  try {
    await Deno.writeTextFile(path, '{"grouping":"namespace"}', { mode: 0o600 });
    await Deno.chmod(path, 0o600);
    await assert.rejects(
      withShimConfig({ grouping: "node" }, dir, () => Promise.reject(new Error("boom")), path),
      /boom/,
    );
    assert.equal(await Deno.readTextFile(path), '{"grouping":"namespace"}');
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("repairShimConfig: a journal left by a killed run restores the previous state", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/shim.json`;
  try {
    assert.equal(await repairShimConfig(dir), false);
    await Deno.writeTextFile(path, '{"grouping":"node"}');
    await Deno.writeTextFile(`${dir}/shim-config.journal.json`, JSON.stringify({ path, existed: false }));
    assert.equal(await repairShimConfig(dir), true);
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
