import assert from "node:assert/strict";
import { mightBeMounted, readInitPid, runcStateDirExists } from "./delete.ts";

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

Deno.test("readInitPid: the pid, or 0 for a missing or malformed file", () => {
  const dir = Deno.makeTempDirSync({ prefix: "init-pid-" });
  try {
    assert.equal(readInitPid(`${dir}/init.pid`), 0);
    Deno.writeTextFileSync(`${dir}/init.pid`, "1234");
    assert.equal(readInitPid(`${dir}/init.pid`), 1234);
    Deno.writeTextFileSync(`${dir}/init.pid`, "12x");
    assert.equal(readInitPid(`${dir}/init.pid`), 0);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("mightBeMounted: only a missing rootfs or an empty one on the bundle's device is certainly not a mount", () => {
  const bundle = Deno.makeTempDirSync({ prefix: "bundle-" });
  try {
    assert.equal(mightBeMounted(`${bundle}/rootfs`, bundle), false, "missing");
    Deno.mkdirSync(`${bundle}/rootfs`);
    assert.equal(mightBeMounted(`${bundle}/rootfs`, bundle), false, "the empty mount point containerd made");
    Deno.writeTextFileSync(`${bundle}/rootfs/x`, "");
    assert.equal(mightBeMounted(`${bundle}/rootfs`, bundle), true, "content: could be a bind mount");
    // another device: /dev is a devtmpfs, /proc a procfs; either differs from a temp directory's
    assert.equal(mightBeMounted("/dev", bundle), true, "another device");
  } finally {
    Deno.removeSync(bundle, { recursive: true });
  }
});
