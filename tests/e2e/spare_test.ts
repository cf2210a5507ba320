/**
 * Spare servers through a real containerd (src/shim/spare.ts): when a pod's server is done, it waits as a spare, and
 * the next pod's `start` hands it that pod's socket instead of booting a new server. Everything works on the reused
 * server as on a new one: the container's output, an exec, its exit status, its events.
 */
import assert from "node:assert/strict";
import { EventLog, labWith, RUNTIME, serverPid } from "./helpers.ts";
import { isSpare, waitFor } from "../lab/mod.ts";
import type { Lab } from "../lab/mod.ts";

const NS = "e2e-spare";

/** Kills, deletes and removes `id`, as `ctr run --rm` ends. */
async function remove(lab: Lab, id: string): Promise<void> {
  assert.equal((await lab.ctr(["task", "kill", "-s", "SIGKILL", id], { namespace: NS })).code, 0);
  const stopped = new RegExp(`^${id}\\s+\\d+\\s+STOPPED`, "m");
  assert.ok(await waitFor(async () => stopped.test((await lab.ctr(["task", "ls"], { namespace: NS })).stdout), 10_000));
  assert.equal((await lab.ctr(["task", "delete", id], { namespace: NS })).code, 0);
  assert.equal((await lab.ctr(["container", "rm", id], { namespace: NS })).code, 0);
}

Deno.test("a pod's server waits as a spare after the pod, and the next pod runs on it as on a new server", async () => {
  const lab = await labWith(NS);
  const events = new EventLog(lab);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const first = await lab.ctr(["run", "-d", "--runtime", RUNTIME, lab.image, "spare-a", "sleep", "1000"], {
      namespace: NS,
    });
    assert.equal(first.code, 0, first.stderr);
    const server = await serverPid(lab, NS, "spare-a");
    await remove(lab, "spare-a");
    assert.ok(await waitFor(() => isSpare(server), 10_000), "the pod's server did not wait as a spare");
    assert.ok(!(await lab.shimPids()).includes(server), "a spare counts as serving");

    // The next pod: no new server; its whole life on the spare.
    const second = await lab.ctr(
      ["run", "-d", "--runtime", RUNTIME, lab.image, "spare-b", "sh", "-c", "echo up; sleep 1000"],
      { namespace: NS },
    );
    assert.equal(second.code, 0, second.stderr);
    assert.equal(await serverPid(lab, NS, "spare-b"), server, "the next pod got a new server, not the spare");
    assert.equal(await isSpare(server), false, "a spare serving a pod still calls itself a spare");
    const exec = await lab.ctr(["task", "exec", "--exec-id", "x1", "spare-b", "sh", "-c", "echo hi; exit 4"], {
      namespace: NS,
    });
    assert.equal(exec.code, 4, exec.stderr);
    assert.equal(exec.stdout, "hi\n");
    await remove(lab, "spare-b");
    assert.ok(await events.waitFor(() => events.topicsFor("spare-b").includes("/tasks/delete")));
    const topics = events.topicsFor("spare-b").filter((t) => t.startsWith("/tasks/"));
    assert.deepEqual(topics, [
      "/tasks/create",
      "/tasks/start",
      "/tasks/exec-added",
      "/tasks/exec-started",
      "/tasks/exit", // the exec's (its Delete publishes nothing by default: execDeleteEvents, as the Go shim)
      "/tasks/exit",
      "/tasks/delete",
    ]);

    // A pod run to completion in the foreground (`ctr run --rm`), output and exit status included.
    const third = await lab.ctr([
      "run",
      "--rm",
      "--runtime",
      RUNTIME,
      lab.image,
      "spare-c",
      "sh",
      "-c",
      "echo c; exit 3",
    ], {
      namespace: NS,
    });
    assert.equal(third.code, 3, third.stderr);
    assert.equal(third.stdout, "c\n");
    assert.ok(await waitFor(() => isSpare(server), 10_000), "the server is not a spare again after its third pod");
    assert.ok(
      await waitFor(async () => !(await lab.shimPids({ spares: true })).includes(server), 20_000),
      "a spare outlived its time",
    );
  } finally {
    await events.stop();
    await lab.cleanupNamespace(NS);
  }
});
