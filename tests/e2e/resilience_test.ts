/**
 * What happens when things die (issue: shim core, acceptance 6–7): a SIGKILLed shim is cleaned up through our
 * `delete` subcommand, and a containerd restart leaves running containers manageable and reports an exit that
 * happened while it was down.
 */
import assert from "node:assert/strict";
import { labWith, mountsBelow, RUNTIME, SERIES, serverPid } from "./helpers.ts";
import { waitFor } from "../lab/mod.ts";
import type { Lab } from "../lab/mod.ts";

const NS = "e2e-res";

async function taskPid(lab: Lab, id: string): Promise<number> {
  const m = (await lab.ctr(["task", "ls"], { namespace: NS })).stdout.match(new RegExp(`^${id}\\s+(\\d+)\\s`, "m"));
  if (!m) throw new Error(`task ${id} not listed`);
  return Number(m[1]);
}

const alive = (pid: number) => Deno.stat(`/proc/${pid}`).then(() => true, () => false);

Deno.test("kill -9 of the shim: containerd's cleanup runs our delete and nothing is left", async () => {
  const lab = await labWith(NS);
  try {
    const run = await lab.ctr(["run", "-d", "--runtime", RUNTIME, lab.image, "victim", "sleep", "1000"], {
      namespace: NS,
    });
    assert.equal(run.code, 0, run.stderr);
    const init = await taskPid(lab, "victim");
    const shim = await serverPid(lab, NS, "victim");
    Deno.kill(shim, "SIGKILL");
    // containerd notices the disconnect, runs `<shim> delete`, which runs `runc delete --force` and unmounts.
    assert.ok(
      await waitFor(async () => !/victim\s/.test((await lab.ctr(["task", "ls"], { namespace: NS })).stdout), 15_000),
      "task still listed after the shim died",
    );
    assert.ok(await waitFor(async () => !await alive(init), 10_000), "the container's process survived");
    const bundle = `${lab.dir}/state/io.containerd.runtime.v2.task/${NS}/victim`;
    assert.ok(await waitFor(async () => (await mountsBelow(bundle)).length === 0, 10_000), "rootfs still mounted");
    const rm = await lab.ctr(["container", "rm", "victim"], { namespace: NS });
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(await lab.log(), /cleaning up dead shim/);
  } finally {
    await lab.cleanupNamespace(NS);
  }
});

const RESTART_TEST = SERIES === "1.6"
  ? "containerd restarts: containers stay manageable and an exit during the downtime is reported"
  : `containerd ${SERIES} restarts: containers stay manageable, and a task whose process exited during the downtime ` +
    "is cleaned up as a leaked shim (2.x reports no STOPPED task then, with the Go shim too)";

Deno.test(RESTART_TEST, async () => {
  const lab = await labWith(NS);
  try {
    for (const id of ["keep", "dies"]) {
      const r = await lab.ctr(["run", "-d", "--runtime", RUNTIME, lab.image, id, "sleep", "1000"], { namespace: NS });
      assert.equal(r.code, 0, r.stderr);
    }
    const diesPid = await taskPid(lab, "dies");
    await lab.stopDaemon();
    Deno.kill(diesPid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 500));
    await lab.startDaemon();

    const ls = (await lab.ctr(["task", "ls"], { namespace: NS })).stdout;
    assert.match(ls, /keep\s+\d+\s+RUNNING/);
    if (SERIES === "1.6") {
      assert.ok(
        await waitFor(
          async () => /dies\s+\d+\s+STOPPED/.test((await lab.ctr(["task", "ls"], { namespace: NS })).stdout),
          10_000,
        ),
        "the exit during the downtime was not reported",
      );
    } else {
      // containerd 2.x, reloading its shims, asks each for its init's state; a shim whose init is gone is a "leaked
      // shim process": containerd shuts it down and runs its `delete`, so the task is gone rather than STOPPED
      // (the Go shim 2.1.9 gets exactly this treatment).
      assert.ok(
        await waitFor(async () => !/^dies\s/m.test((await lab.ctr(["task", "ls"], { namespace: NS })).stdout), 10_000),
        "the task that exited during the downtime is still listed",
      );
      assert.match(await lab.log(), /cleaning leaked shim process" id=dies /);
      assert.ok(
        await waitFor(
          async () => (await mountsBelow(`${lab.dir}/state/io.containerd.runtime.v2.task/${NS}/dies`)).length === 0,
          10_000,
        ),
        "rootfs of dies still mounted",
      );
    }
    const exec = await lab.ctr(["task", "exec", "--exec-id", "after-restart", "keep", "echo", "still-here"], {
      namespace: NS,
    });
    assert.equal(exec.code, 0, exec.stderr);
    assert.equal(exec.stdout, "still-here\n");

    if (SERIES === "1.6") {
      const del = await lab.ctr(["task", "delete", "dies"], { namespace: NS });
      assert.equal(del.code, 0, del.stderr);
      assert.match(del.stderr, /exit code 137/);
    }
    assert.equal((await lab.ctr(["task", "kill", "-s", "SIGKILL", "keep"], { namespace: NS })).code, 0);
    assert.ok(
      await waitFor(
        async () => /keep\s+\d+\s+STOPPED/.test((await lab.ctr(["task", "ls"], { namespace: NS })).stdout),
        10_000,
      ),
    );
    assert.equal((await lab.ctr(["task", "delete", "keep"], { namespace: NS })).code, 0);
  } finally {
    await lab.startDaemon();
    await lab.cleanupNamespace(NS);
  }
});
