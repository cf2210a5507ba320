/**
 * The lab itself: the private containerd comes up, runs a real container through the stock Go shim, survives a
 * restart with a running container, and its teardown leaves nothing behind. Needs root, containerd, runc.
 *
 * @module
 */
import assert from "node:assert/strict";
import { labShimProcesses, stopLab, useLab } from "./lab/mod.ts";
import { findProcesses } from "./lab/proc.ts";

const GO = "io.containerd.runc.v2";
const NS = "lab-test";
const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);
const uid = () => `${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}`;

Deno.test("lab: containerd comes up and useLab reuses it", async () => {
  const lab = await useLab();
  const v = await lab.ctr(["version"]);
  assert.equal(v.code, 0, v.stderr);
  // The daemon is the selected series' (1.6 here for the system's package; 1.7 on the hosted CI runner).
  const major = lab.containerd.series === "2" ? "[2-9]" : "1";
  assert.match(v.stdout, new RegExp(`Server:\\s+Version:\\s+v?${major}\\.\\d+\\.`));
  assert.ok(v.stdout.includes(lab.containerd.version.replace(/\+.*$/, "")), `${lab.containerd.version}: ${v.stdout}`);
  const again = await useLab();
  assert.equal(again.address, lab.address);
  // Same daemon: its log since start has not been reset by a second start.
  assert.match(await again.log(), /containerd successfully booted/);
  assert.equal((await again.log()).match(/containerd successfully booted/g)?.length, 1);
});

Deno.test("lab: the Go shim runs busybox (echo, exit code)", async () => {
  const lab = await useLab();
  await lab.ensureImage(NS);
  const hello = await lab.ctr(["run", "--rm", "--runtime", GO, lab.image, `hello-${uid()}`, "echo", "hello"], {
    namespace: NS,
  });
  assert.equal(hello.code, 0, hello.stderr);
  assert.equal(hello.stdout, "hello\n");
  const exit = await lab.ctr(["run", "--rm", "--runtime", GO, lab.image, `exit-${uid()}`, "sh", "-c", "exit 42"], {
    namespace: NS,
  });
  assert.equal(exit.code, 42);
});

Deno.test("lab: restart keeps a running container's shim and serves again", async () => {
  const lab = await useLab();
  await lab.ensureImage(NS);
  const id = `restart-${uid()}`;
  try {
    const run = await lab.ctr(["run", "-d", "--runtime", GO, lab.image, id, "sleep", "1000"], { namespace: NS });
    assert.equal(run.code, 0, run.stderr);
    const shimsBefore = (await labShimProcesses(lab, "any")).map((p) => p.pid);
    assert.ok(shimsBefore.length >= 1, "a Go shim serves the container");

    await lab.restart();
    assert.match(await lab.log(), /containerd successfully booted/);
    const ls = await lab.ctr(["tasks", "ls"], { namespace: NS });
    assert.match(ls.stdout, new RegExp(`^${id}\\s+\\d+\\s+RUNNING`, "m"), "containerd reconnected to the shim");
    const exec = await lab.ctr(["tasks", "exec", "--exec-id", "e1", id, "echo", "after-restart"], { namespace: NS });
    assert.equal(exec.stdout, "after-restart\n", exec.stderr);
  } finally {
    await lab.cleanupNamespace(NS);
  }
  const ls = await lab.ctr(["containers", "ls", "-q"], { namespace: NS });
  assert.doesNotMatch(ls.stdout, new RegExp(id));
});

Deno.test("lab: stopLab tears down a lab with a running container", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shimlab-" });
  try {
    const lab = await useLab({ dir });
    const id = `teardown-${uid()}`;
    const run = await lab.ctr(["run", "-d", "--runtime", GO, lab.image, id, "sleep", "1000"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await labShimProcesses(lab, "any")).length, 1);

    await stopLab({ dir, purge: true });
    assert.deepEqual(await labShimProcesses(lab, "any"), [], "no shim of this lab is left");
    const daemons = await findProcesses((argv) => argv.includes(`${dir}/config.toml`));
    assert.deepEqual(daemons, [], "containerd is gone");
    assert.ok(!await exists(lab.address), "its socket is gone");
    const mounts = await Deno.readTextFile("/proc/self/mountinfo");
    assert.ok(!mounts.includes(dir), "nothing is mounted below the lab");
    assert.ok(!await exists(`${dir}/root`), "purge removed containerd's root");
  } finally {
    await stopLab({ dir });
    await Deno.remove(dir, { recursive: true });
  }
});
