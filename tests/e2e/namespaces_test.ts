/**
 * Issue 14.2 through containerd 1.6 (which sends no namespace with Task calls): under node grouping one server holds
 * `a/dup` and `b/dup` at once. `a/dup` exits and is not deleted; a failed create of `c/dup` (and containerd's cleanup
 * of it) leaves `a/dup` alone; `b/dup` runs beside it; both exit statuses are reported, both tasks are deleted, and
 * the server exits once both are gone.
 */
import assert from "node:assert/strict";
import { EventLog, labWith, RUNTIME } from "./helpers.ts";
import { waitFor } from "../lab/mod.ts";
import { readCmdline } from "../lab/proc.ts";

const [A, B, C] = ["e2e-ns-a", "e2e-ns-b", "e2e-ns-c"];
const ID = "dup";

Deno.test("node grouping: the same container id in two namespaces, side by side", async () => {
  const lab = await labWith(A);
  for (const ns of [B, C]) await lab.ensureImage(ns);
  const config = `${lab.dir}/ns-node-grouping.json`;
  await Deno.writeTextFile(config, JSON.stringify({ grouping: "node" }));
  const run = (ns: string, args: string[]) =>
    lab.ctr(["run", "-d", "--runtime", RUNTIME, "--runtime-config-path", config, lab.image, ID, ...args], {
      namespace: ns,
    });
  const status = async (ns: string) =>
    /\s(\w+)\s*$/m.exec((await lab.ctr(["task", "ls"], { namespace: ns })).stdout.trim().split("\n")[1] ?? "")?.[1];
  const servers = async () => {
    const out: number[] = [];
    for (const pid of await lab.shimPids()) if ((await readCmdline(pid) ?? []).includes("-socket")) out.push(pid);
    return out;
  };
  const events = new EventLog(lab);
  try {
    const a = await run(A, ["sh", "-c", "exit 3"]);
    assert.equal(a.code, 0, a.stderr);
    assert.ok(await waitFor(async () => await status(A) === "STOPPED", 10_000), `a/${ID}: ${await status(A)}`);

    // A create that fails in a third namespace: containerd deletes that task, never a/dup.
    const c = await run(C, ["/nosuch"]);
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /nosuch/);
    assert.equal(await status(A), "STOPPED", `a/${ID} lost to c's cleanup`);

    const b = await run(B, ["sleep", "1000"]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(await status(B), "RUNNING");
    assert.equal(await status(A), "STOPPED");
    assert.equal((await servers()).length, 1, "one node server holds both");

    assert.equal((await lab.ctr(["task", "kill", "-s", "SIGKILL", ID], { namespace: B })).code, 0);
    assert.ok(await waitFor(async () => await status(B) === "STOPPED", 10_000));
    for (const ns of [A, B]) {
      const rm = await lab.ctr(["task", "rm", ID], { namespace: ns });
      assert.equal(rm.code, 0, `${ns}: ${rm.stderr}`);
      assert.equal(await status(ns), undefined, `${ns}/${ID} still listed`);
    }
    // `ctr events`: "<time> <namespace> <topic> <json>"; both exits and both deletes, each in its own namespace.
    const of = (topic: string) =>
      events.lines.map((l) => / (\S+) (\/tasks\/\S+) (.*)$/.exec(l)).filter((m) => m?.[2] === topic)
        .filter((m) => m![3].includes(`"${ID}"`))
        .map((m) => `${m![1]}:${/"exit_status":(\d+)/.exec(m![3])?.[1] ?? 0}`).sort();
    // c's create failed before any task event: it publishes none.
    assert.ok(await events.waitFor(() => of("/tasks/delete").length >= 2), events.lines.join("\n"));
    assert.deepEqual(of("/tasks/exit"), [`${A}:3`, `${B}:137`]);
    assert.deepEqual(of("/tasks/delete"), [`${A}:3`, `${B}:137`]);
    assert.ok(await waitFor(async () => (await servers()).length === 0, 15_000), "the node server outlived its tasks");
  } finally {
    await events.stop();
    for (const ns of [A, B, C]) await lab.cleanupNamespace(ns);
  }
});
