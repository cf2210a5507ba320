import assert from "node:assert/strict";
import { listedAsMountPoint, readInitPid, runcStateDirExists } from "./delete.ts";

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

Deno.test("listedAsMountPoint: the mount point field of mountinfo, with the kernel's octal escapes", () => {
  const info = [
    "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
    "90 22 0:50 / /run/containerd/io.containerd.runtime.v2.task/k8s/c1/rootfs rw,relatime - overlay overlay rw",
    String.raw`91 22 0:51 / /tmp/with\040space/rootfs rw - overlay overlay rw`,
  ].join("\n");
  assert.equal(listedAsMountPoint(info, "/run/containerd/io.containerd.runtime.v2.task/k8s/c1/rootfs"), true);
  assert.equal(listedAsMountPoint(info, "/run/containerd/io.containerd.runtime.v2.task/k8s/c2/rootfs"), false);
  assert.equal(listedAsMountPoint(info, "/tmp/with space/rootfs"), true);
  assert.equal(listedAsMountPoint(info, "/run/containerd"), false, "a prefix is not the mount point");
  assert.equal(listedAsMountPoint("", "/"), false);
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
