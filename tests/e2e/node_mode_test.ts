/**
 * One shim per node (issue: Kubernetes and density, acceptance 2): with the node grouping, 50 running containers
 * are served by exactly one server process, every Task API operation keeps working on each of them, and the server
 * exits once the last one is deleted.
 */
import assert from "node:assert/strict";
import { labWith, rounds, RUNTIME } from "./helpers.ts";
import { waitFor } from "../lab/mod.ts";
import { readCmdline } from "../lab/proc.ts";

const NS = "e2e-node";

const NODE_CONTAINERS = rounds(50, 20);

/** Each pid with its name and command line, for a failure message. */
async function describePids(pids: number[]): Promise<string> {
  const out: string[] = [];
  for (const pid of pids) {
    const comm = (await Deno.readTextFile(`/proc/${pid}/comm`).catch(() => "?")).trim();
    out.push(`${pid} (${comm}): ${(await readCmdline(pid) ?? []).filter((a) => !a.startsWith("--")).join(" ")}`);
  }
  return `${pids.length}:\n${out.join("\n")}`;
}

Deno.test(`node grouping: ${NODE_CONTAINERS} containers, one server, every operation works on each`, async () => {
  const lab = await labWith(NS);
  const config = `${lab.dir}/node-grouping.json`;
  await Deno.writeTextFile(config, JSON.stringify({ grouping: "node" }));
  const ids = Array.from({ length: NODE_CONTAINERS }, (_, i) => `node-${i}`);
  const servers = async () => {
    const out: number[] = [];
    for (const pid of await lab.shimPids()) {
      const argv = await readCmdline(pid) ?? [];
      if (argv.includes("-socket")) out.push(pid);
    }
    return out;
  };
  try {
    // Sequentially in groups of 10: the first start spawns the server, every later start finds it.
    for (let i = 0; i < ids.length; i += 10) {
      const runs = await Promise.all(
        ids.slice(i, i + 10).map((id) =>
          lab.ctr(
            ["run", "-d", "--runtime", RUNTIME, "--runtime-config-path", config, lab.image, id, "sleep", "1000"],
            {
              namespace: NS,
              timeoutMs: 60_000,
            },
          )
        ),
      );
      runs.forEach((r, j) => assert.equal(r.code, 0, `${ids[i + j]}: ${r.stderr}`));
    }
    const serving = await servers();
    assert.equal(serving.length, 1, `expected one server, found ${await describePids(serving)}`);
    const ls = (await lab.ctr(["task", "ls"], { namespace: NS })).stdout;
    for (const id of ids) assert.match(ls, new RegExp(`${id}\\s+\\d+\\s+RUNNING`));

    for (const [n, id] of ids.entries()) {
      const exec = await lab.ctr(["task", "exec", "--exec-id", `x${n}`, id, "sh", "-c", `echo ${id}; exit ${n % 7}`], {
        namespace: NS,
      });
      assert.equal(exec.stdout, `${id}\n`);
      assert.equal(exec.code, n % 7);
      if (n % 10 === 0) {
        assert.equal((await lab.ctr(["task", "pause", id], { namespace: NS })).code, 0);
        assert.equal((await lab.ctr(["task", "resume", id], { namespace: NS })).code, 0);
        const ps = await lab.ctr(["task", "ps", id], { namespace: NS });
        assert.equal(ps.stdout.trim().split("\n").length, 2, ps.stdout);
        const m = await lab.ctr(["task", "metrics", "--format", "json", id], { namespace: NS });
        assert.ok(JSON.parse(m.stdout).pids.current >= 1);
      }
    }
    assert.deepEqual(await servers(), serving, "the server changed while serving");
  } finally {
    await lab.cleanupNamespace(NS);
  }
  assert.ok(
    await waitFor(async () => (await servers()).length === 0, 15_000),
    "the node server outlived its containers",
  );
});

Deno.test("node grouping: a crash of the shared server loses no container silently", async () => {
  const lab = await labWith(NS);
  const config = `${lab.dir}/node-grouping.json`;
  await Deno.writeTextFile(config, JSON.stringify({ grouping: "node" }));
  const ids = ["crash-0", "crash-1", "crash-2", "crash-3", "crash-4"];
  try {
    for (const id of ids) {
      const r = await lab.ctr(
        ["run", "-d", "--runtime", RUNTIME, "--runtime-config-path", config, lab.image, id, "sleep", "1000"],
        { namespace: NS },
      );
      assert.equal(r.code, 0, r.stderr);
    }
    const servers: number[] = [];
    for (const pid of await lab.shimPids()) if ((await readCmdline(pid) ?? []).includes("-socket")) servers.push(pid);
    assert.equal(servers.length, 1, `expected one server, found ${await describePids(servers)}`);
    Deno.kill(servers[0], "SIGKILL");
    // containerd runs our `delete` for every task the server held: each is cleaned up and reported, none lingers.
    assert.ok(
      await waitFor(async () => {
        const ls = (await lab.ctr(["task", "ls"], { namespace: NS })).stdout;
        return ids.every((id) => !ls.includes(id));
      }, 20_000),
      (await lab.ctr(["task", "ls"], { namespace: NS })).stdout,
    );
    const log = await lab.log();
    for (const id of ids) assert.match(log, new RegExp(`cleaning up after shim disconnected" id=${id} `));
    // Each task's `delete` (run by containerd concurrently) unmounts its rootfs; the task can leave `ls` first.
    const mounts = async () =>
      (await Deno.readTextFile("/proc/self/mountinfo")).split("\n")
        .filter((l) => ids.some((id) => l.includes(`/${NS}/${id}/`)));
    assert.ok(await waitFor(async () => (await mounts()).length === 0, 10_000), (await mounts()).join("\n"));
  } finally {
    await lab.cleanupNamespace(NS);
  }
});
