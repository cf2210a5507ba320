/**
 * `deno task lab up|down|status`: the private containerd that the tests, the demo and the benchmarks use
 * (tests/lab/mod.ts), as a tool for people.
 *
 * - `up`: starts it (or reuses the running one), imports busybox, and prints the `ctr` command line to use it.
 * - `down`: kills and deletes every task and container in it, stops containerd, ends leftover shims, unmounts what it
 *   mounted. `down --purge` also removes its images and snapshots.
 * - `status`: whether it runs, its address, and the tasks in each namespace.
 *
 * Which lab: `SHIM_LAB_CONTAINERD` (the containerd series, where the lab supports more than one) and `SHIM_LAB_DIR`
 * select it, as for the tests. Needs root.
 *
 * @example
 * ```sh
 * deno task build && deno task lab up
 * ctr -a "$PWD/.lab/containerd.sock" run --rm --runtime io.containerd.deno.v2 docker.io/library/busybox:latest hi echo hi
 * deno task lab down
 * ```
 * @module
 */
import { labDir, stopLab, useLab } from "../tests/lab/mod.ts";
import { labPaths } from "../tests/lab/config.ts";
import { readCmdline, runCommand } from "../tests/lab/proc.ts";

const USAGE = `usage: deno task lab up | down [--purge] | status
  up      start the private containerd under .lab/ (or reuse it) and print how to use it with ctr
  down    stop it: tasks, containers, containerd, leftover shims, mounts (--purge: images and snapshots too)
  status  is it running, where, and which tasks it holds
environment: SHIM_LAB_CONTAINERD (containerd series), SHIM_LAB_DIR (lab directory), SHIM_LAB_LOG_LEVEL (info|debug)`;

function series(): string {
  return Deno.env.get("SHIM_LAB_CONTAINERD") || "1.6";
}

async function up(): Promise<number> {
  const lab = await useLab();
  const ctr = `ctr -a ${lab.address}`;
  console.log(`lab up (containerd ${series()}): ${lab.dir}`);
  console.log(`  use it:  ${ctr} run --rm --runtime io.containerd.deno.v2 ${lab.image} hello echo hello`);
  console.log(`           ${ctr} tasks ls        (namespace "default" holds ${lab.image})`);
  console.log(`  log:     ${lab.dir}/logs/containerd.log`);
  console.log(`  shim:    io.containerd.deno.v2 runs ${lab.shimBinary} (build it with deno task build)`);
  console.log(`  stop:    deno task lab down`);
  return 0;
}

async function status(): Promise<number> {
  const p = labPaths(labDir());
  const pid = Number((await Deno.readTextFile(p.pidFile).catch(() => "")).trim());
  const argv = pid > 0 ? await readCmdline(pid) : null;
  if (argv === null || !argv.some((a) => a.endsWith("containerd")) || !argv.includes(p.config)) {
    console.log(`lab down (containerd ${series()}): ${p.dir}`);
    return 3;
  }
  const version = await runCommand("ctr", ["-a", p.address, "version"], { timeoutMs: 10_000 }).catch(() => null);
  if (version?.code !== 0) {
    console.log(`lab not answering: containerd pid ${pid} runs but ${p.address} does not answer`);
    return 1;
  }
  const server = version.stdout.match(/Server:\s*\n\s*Version:\s*(\S+)/)?.[1] ?? "?";
  console.log(`lab up (containerd ${server}, pid ${pid}): ctr -a ${p.address}`);
  const nss = await runCommand("ctr", ["-a", p.address, "namespaces", "ls", "-q"], { timeoutMs: 10_000 });
  for (const ns of nss.stdout.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const tasks = await runCommand("ctr", ["-a", p.address, "-n", ns, "tasks", "ls"], { timeoutMs: 10_000 });
    const rows = tasks.stdout.trim().split("\n").slice(1).filter(Boolean);
    console.log(`  namespace ${ns}: ${rows.length} task(s)`);
    for (const r of rows) console.log(`    ${r}`);
  }
  return 0;
}

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case "up":
      return await up();
    case "down":
      await stopLab({ purge: rest.includes("--purge") });
      console.log(`lab down (containerd ${series()}): ${labDir()}`);
      return 0;
    case "status":
      return await status();
    case "-h":
    case "--help":
    case "help":
      console.log(USAGE);
      return 0;
    default:
      console.error(cmd === undefined ? USAGE : `unknown lab command ${JSON.stringify(cmd)}\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
