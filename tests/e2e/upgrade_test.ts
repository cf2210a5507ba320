/**
 * Upgrades in node grouping: a node server holds every container of the node for as long as any runs, so a newly
 * installed build must serve new containers from a server of its own while the old server keeps the containers it has,
 * and exits after the last of them is deleted (after waiting as a spare for its own build only).
 *
 * The "old build" is a copy of dist/ in another directory (its own launcher, its own bundle files) with another build
 * id written into its files, as an older version's build would have (tools/build.ts writes the id; a plain copy of
 * the same build is the same build, src/shim/build_id.ts).
 */
import assert from "node:assert/strict";
import { labWith, RUNTIME, serverPid } from "./helpers.ts";
import { distDir, isSpare, waitFor } from "../lab/mod.ts";
import { findProcesses, runCommand } from "../lab/proc.ts";
import { launcherScript, SHIM_BINARY } from "../../src/shim/launcher.ts";
import { bundleServerPath } from "../../src/shim/bundle_layout.ts";

const NS = "e2e-upgrade";

/** Gives the bundle under `libDir` (a copy of dist/lib) another build id than dist/'s. */
async function restamp(libDir: string): Promise<void> {
  const { buildId } = JSON.parse(await Deno.readTextFile(`${distDir}/BUILD-INFO.json`)) as { buildId?: string };
  assert.match(buildId ?? "", /^[0-9a-f]{12}$/, "dist/BUILD-INFO.json names the build's id");
  const other = buildId === "000000000000" ? "111111111111" : "000000000000";
  let stamped = 0;
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".js")) {
        const text = await Deno.readTextFile(path);
        if (!text.includes(buildId!)) continue;
        await Deno.writeTextFile(path, text.replaceAll(buildId!, other));
        stamped++;
      }
    }
  };
  await walk(`${libDir}/js`);
  assert.ok(stamped > 0, "the bundle's files carry the build id");
}

/** Pids of servers (argv has `-socket`) running the bundle under `libDir`; spares (which serve nothing) left out. */
async function serversOf(libDir: string): Promise<number[]> {
  const bundle = bundleServerPath(libDir);
  const out: number[] = [];
  for (const p of await findProcesses((argv) => argv.includes(bundle) && argv.includes("-socket"))) {
    if (!await isSpare(p.pid)) out.push(p.pid);
  }
  return out;
}

Deno.test("node grouping: a new build serves new containers from its own server; the old one drains and exits", async () => {
  const lab = await labWith(NS);
  const config = `${lab.dir}/upgrade-node-grouping.json`;
  await Deno.writeTextFile(config, JSON.stringify({ grouping: "node" }));
  const oldDir = `${lab.dir}/upgrade-old-build`;
  await Deno.remove(oldDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(oldDir, { recursive: true });
  const cp = await runCommand("cp", ["-a", `${distDir}/lib`, `${oldDir}/lib`]);
  assert.equal(cp.code, 0, cp.stderr);
  await restamp(`${oldDir}/lib`);
  const oldShim = `${oldDir}/${SHIM_BINARY}`;
  await Deno.writeTextFile(oldShim, launcherScript(`${oldDir}/lib`), { mode: 0o755 });
  const newLib = `${distDir}/lib`;

  const run = (runtime: string, id: string) =>
    lab.ctr(["run", "-d", "--runtime", runtime, "--runtime-config-path", config, lab.image, id, "sleep", "1000"], {
      namespace: NS,
    });
  try {
    // Before the upgrade: two containers on the old build's node server.
    for (const id of ["old-1", "old-2"]) assert.equal((await run(oldShim, id)).code, 0);
    const oldServers = await serversOf(`${oldDir}/lib`);
    assert.equal(oldServers.length, 1, "one node server for the old build");

    // After it: new containers go to a server of the new build; the old containers stay where they are.
    for (const id of ["new-1", "new-2"]) {
      const r = await run(RUNTIME, id);
      assert.equal(r.code, 0, r.stderr);
    }
    const newServers = await serversOf(newLib);
    assert.equal(newServers.length, 1, "the new build started one node server of its own");
    assert.deepEqual(await serversOf(`${oldDir}/lib`), oldServers, "the old server still runs");

    // Both keep working.
    for (const id of ["old-1", "new-1"]) {
      const exec = await lab.ctr(["task", "exec", "--exec-id", `x-${id}`, id, "echo", id], { namespace: NS });
      assert.equal(exec.code, 0, exec.stderr);
      assert.equal(exec.stdout, `${id}\n`);
    }

    // The old build's containers go: its server drains and exits; the new one keeps serving.
    for (const id of ["old-1", "old-2"]) {
      await lab.ctr(["task", "kill", "-s", "SIGKILL", id], { namespace: NS });
      const stopped = new RegExp(`${id}\\s+\\d+\\s+STOPPED`);
      await waitFor(async () => stopped.test((await lab.ctr(["task", "ls"], { namespace: NS })).stdout), 10_000);
      assert.equal((await lab.ctr(["task", "rm", id], { namespace: NS })).code, 0);
      assert.equal((await lab.ctr(["container", "rm", id], { namespace: NS })).code, 0);
    }
    assert.ok(
      await waitFor(async () => (await serversOf(`${oldDir}/lib`)).length === 0, 20_000),
      "the old build's server serves on once its last container is deleted",
    );
    assert.deepEqual(await serversOf(newLib), newServers, "the new build's server is untouched");
    // Done, it may wait as a spare (src/shim/spare.ts), but only for its own build: a new container of the new build
    // (its own group) never lands on the old code.
    const oldPid = oldServers[0];
    assert.ok(await waitFor(() => isSpare(oldPid), 10_000), "the old build's server does not wait as a spare");
    const r = await lab.ctr(["run", "-d", "--runtime", RUNTIME, lab.image, "new-3", "sleep", "1000"], {
      namespace: NS,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.notEqual(
      await serverPid(lab, NS, "new-3"),
      oldPid,
      "the old build's server took a container of the new build",
    );
    assert.equal((await serversOf(`${oldDir}/lib`)).length, 0);
    const ls = (await lab.ctr(["task", "ls"], { namespace: NS })).stdout;
    assert.match(ls, /new-1\s+\d+\s+RUNNING/);
    assert.match(ls, /new-2\s+\d+\s+RUNNING/);
  } finally {
    await lab.cleanupNamespace(NS);
    await waitFor(async () => (await serversOf(`${oldDir}/lib`)).length === 0, 20_000);
    await Deno.remove(oldDir, { recursive: true }).catch(() => {});
  }
});
