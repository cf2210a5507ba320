import assert from "node:assert/strict";
import { ENOENT, isErrno } from "../errno.ts";
import { isUnifiedHost, loadCgroup, parseMountinfo, parseProcCgroup } from "./mod.ts";

Deno.test("parseProcCgroup: one path per v1 controller, the v2 line under the empty key", () => {
  const text = [
    "12:pids:/default/c1",
    "4:cpu,cpuacct:/default/c1",
    "3:memory:/default/c1",
    "1:name=systemd:/default/c1",
    "0::/default/c1",
    "",
  ].join("\n");
  const m = parseProcCgroup(text);
  assert.equal(m.get("pids"), "/default/c1");
  assert.equal(m.get("cpu"), "/default/c1");
  assert.equal(m.get("cpuacct"), "/default/c1");
  assert.equal(m.get("name=systemd"), "/default/c1");
  assert.equal(m.get(""), "/default/c1");
  assert.equal(m.size, 6);
  // Paths may contain colons; only the first two separate fields.
  assert.equal(parseProcCgroup("0::/kubepods/pod:x\n").get(""), "/kubepods/pod:x");
});

Deno.test("parseMountinfo: v1 cgroup mounts by controller, with combined mounts, roots and escapes", () => {
  const text = [
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:7 - cgroup cgroup rw,cpu,cpuacct",
    "35 31 0:32 /kubepods/pod1 /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
    "36 31 0:33 / /mnt/cgroup\\040dir/pids rw master:3 shared:9 - cgroup cgroup rw,pids",
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
  ].join("\n");
  const byController = new Map(parseMountinfo(text));
  assert.deepEqual(byController.get("cpu"), { root: "/", point: "/sys/fs/cgroup/cpu,cpuacct" });
  assert.deepEqual(byController.get("cpuacct"), { root: "/", point: "/sys/fs/cgroup/cpu,cpuacct" });
  assert.deepEqual(byController.get("memory"), { root: "/kubepods/pod1", point: "/sys/fs/cgroup/memory" });
  assert.deepEqual(byController.get("pids"), { root: "/", point: "/mnt/cgroup dir/pids" });
  assert.equal(byController.has("rw"), true, "mount options come along; callers look up controllers only");
  assert.equal([...byController.values()].some((m) => m.point.endsWith("unified")), false, "cgroup2 is not v1");
});

Deno.test("loadCgroup of this very process picks the host's hierarchy and finds the cgroup", () => {
  const cg = loadCgroup(Deno.pid);
  assert.equal(cg.version, isUnifiedHost() ? 2 : 1);
  assert.equal(cg.exists(), true);
  const { typeUrl, value } = cg.metrics();
  assert.equal(typeUrl, isUnifiedHost() ? "io.containerd.cgroups.v2.Metrics" : "io.containerd.cgroups.v1.Metrics");
  assert.ok(value.length > 0);
});

Deno.test("loadCgroup of a process that does not exist fails with ENOENT", () => {
  assert.throws(() => loadCgroup(999_999_999), (e) => isErrno(e, ENOENT));
});
