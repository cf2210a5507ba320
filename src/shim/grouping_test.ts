import assert from "node:assert/strict";
import { buildId } from "./build_id.ts";
import { groupFor, groupKey } from "./grouping.ts";
import type { ShimConfig } from "./config.ts";

const pod = { "io.kubernetes.cri.sandbox-id": "sb1" };

Deno.test("groupFor: per pod and per container the key is the Go shim's, whatever the build", () => {
  assert.deepEqual(groupFor("pod", pod, "c1", "k8s.io", "abc"), { namespace: "k8s.io", group: "sb1" });
  assert.deepEqual(groupFor("pod", {}, "c1", "default", "abc"), { namespace: "default", group: "c1" });
  assert.deepEqual(groupFor("container", pod, "c1", "k8s.io", "abc"), { namespace: "k8s.io", group: "c1" });
});

Deno.test("groupFor: node and namespace servers are per build", () => {
  const a = groupFor("node", {}, "c1", "default", "aaa");
  const b = groupFor("node", {}, "c2", "other", "bbb");
  assert.equal(a.namespace, "");
  assert.notEqual(a.group, b.group);
  assert.deepEqual(groupFor("node", {}, "c3", "x", "aaa"), a, "same build, same node server for every namespace");
  assert.notEqual(groupFor("namespace", {}, "c1", "n", "aaa").group, groupFor("namespace", {}, "c1", "n", "bbb").group);
});

Deno.test("groupKey: the running build goes into the coarse groups only", async () => {
  const cfg = (grouping: ShimConfig["grouping"]) => ({ grouping } as ShimConfig);
  assert.equal((await groupKey(cfg("node"), {}, "c", "ns")).group, `containerd-shim-deno-node-${await buildId()}`);
  assert.equal(
    (await groupKey(cfg("namespace"), {}, "c", "ns")).group,
    `containerd-shim-deno-namespace-${await buildId()}`,
  );
  assert.equal((await groupKey(cfg("pod"), pod, "c", "ns")).group, "sb1");
});

Deno.test("buildId: stable for the same files, new when a file is replaced", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const exe = `${dir}/exe`, main = `${dir}/main.js`;
    await Deno.writeTextFile(exe, "x");
    await Deno.writeTextFile(main, "y");
    const first = await buildId(exe, main);
    assert.match(first, /^[0-9a-f]{12}$/);
    assert.equal(await buildId(exe, main), first);
    // An install writes a new file and renames it into place: a new inode.
    await Deno.writeTextFile(`${main}.new`, "y");
    await Deno.rename(`${main}.new`, main);
    assert.notEqual(await buildId(exe, main), first);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
