/**
 * The demo (`deno task demo`): builds the shim, brings the lab's private containerd up and runs real containers
 * through `io.containerd.deno.v2` with commentary, while a `ctr events` child prints every event containerd sees;
 * shows the shim processes and their memory; then tears the lab down.
 *
 * Exit code 0 when every step behaved as a drop-in for the Go shim would (output, exit codes, task states).
 *
 * @example
 * ```sh
 * deno task demo                                   # through our shim
 * deno task demo --runtime io.containerd.runc.v2   # the same script through containerd's Go shim, for comparison
 * deno task demo --keep-lab                        # leave the lab running afterwards
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { buildBundle, repoRoot, warmLauncher } from "./build.ts";
import { type Lab, labShimProcesses, memoryOf, stopLab, useLab, waitFor } from "../tests/lab/mod.ts";

const NS = "demo";
const DENO_RUNTIME = "io.containerd.deno.v2";

const bold = (s: string) => Deno.stdout.isTerminal() ? `\x1b[1m${s}\x1b[0m` : s;
const dim = (s: string) => Deno.stdout.isTerminal() ? `\x1b[2m${s}\x1b[0m` : s;

function say(text: string): void {
  console.log(`\n${bold("# " + text)}`);
}

function indent(text: string): string {
  return text.trimEnd().split("\n").filter((l) => l !== "").map((l) => `    ${l}`).join("\n");
}

/** Collects what went wrong, so the demo runs to the end and reports everything. */
const problems: string[] = [];

function expect(ok: boolean, what: string): void {
  console.log(ok ? `  ✔ ${what}` : `  ✘ ${what}`);
  if (!ok) problems.push(what);
}

/** The running event watch, whose events each command prints after its own output. */
let watch: EventWatch | null = null;

/** Runs a ctr command in the demo namespace: the command, then its own output, then the events it caused. */
async function ctr(lab: Lab, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  console.log(`  $ ctr -n ${NS} ${args.map((a) => /[\s'$]/.test(a) ? `'${a}'` : a).join(" ")}`);
  const r = await lab.ctr(args, { namespace: NS, timeoutMs: 30_000 });
  if (r.stdout.trim()) console.log(indent(r.stdout));
  if (r.stderr.trim()) console.log(indent(dim(r.stderr)));
  if (r.code !== 0) console.log(`    (exit code ${r.code})`);
  await watch?.flush();
  return r;
}

/** The fields of an event worth a glance (ids, pid, exit status); the rest (paths, mounts) is noise here. */
function eventSummary(json: string): string {
  try {
    const e = JSON.parse(json) as Record<string, unknown>;
    const keys = ["container_id", "id", "exec_id", "key", "pid", "exit_status"];
    return keys.filter((k) => e[k] !== undefined).map((k) => `${k}=${e[k]}`).join(" ");
  } catch {
    return json.slice(0, 100);
  }
}

/** containerd's events, collected as they arrive and printed on {@linkcode EventWatch.flush}. */
interface EventWatch {
  topics: string[];
  exits: string[];
  /** Waits until no event arrived for a moment (at most 1.5 s), then prints those not printed yet. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/** Collects containerd's events until stopped. */
function watchEvents(lab: Lab): EventWatch {
  const child = lab.spawnCtr(["events"]);
  const topics: string[] = [];
  const exits: string[] = [];
  const pending: string[] = [];
  let lastAt = 0;
  const pump = (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of child.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        // "<date> <time> <tz> <namespace> <topic> <event json>"
        const m = line.match(/\s(\S+)\s(\/\S+)\s?(.*)$/);
        if (!m || m[1] !== NS) continue;
        topics.push(m[2]);
        if (m[2] === "/tasks/exit" && m[3].includes('"demo-sleep"')) exits.push(m[3]);
        pending.push(dim(`    [event] ${m[2]} ${eventSummary(m[3])}`));
        lastAt = performance.now();
      }
    }
  })();
  const drainErr = child.stderr.cancel();
  const flush = async () => {
    // An exit or delete event follows the command's return by a few milliseconds; wait for a quiet moment.
    const start = performance.now();
    while (performance.now() - start < 1500) {
      await new Promise((r) => setTimeout(r, 100));
      if (performance.now() - lastAt >= 250 && performance.now() - start >= 250) break;
    }
    for (const line of pending.splice(0)) console.log(line);
  };
  return {
    topics,
    exits,
    flush,
    stop: async () => {
      await flush();
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await Promise.all([pump, drainErr, child.status]);
    },
  };
}

async function showShims(lab: Lab, runtime: string): Promise<void> {
  const shims = await labShimProcesses(lab, runtime === DENO_RUNTIME ? "deno" : "any");
  if (shims.length === 0) console.log("    (no shim process found)");
  for (const s of shims) {
    const m = await memoryOf(s.pid);
    const mem = m
      ? `RSS ${(m.rssKiB / 1024).toFixed(1)} MiB, PSS ${(m.pssKiB / 1024).toFixed(1)} MiB, ` +
        `USS ${(m.ussKiB / 1024).toFixed(1)} MiB, ${m.threads} threads`
      : "gone";
    const argv = s.argv.filter((a) => !a.startsWith("--allow-") && !a.startsWith("--no-")).join(" ");
    console.log(`    pid ${s.pid}: ${mem}\n      ${dim(argv)}`);
  }
}

async function taskStatus(lab: Lab, id: string): Promise<string | null> {
  const ls = await lab.ctr(["tasks", "ls"], { namespace: NS });
  return ls.stdout.match(new RegExp(`^${id}\\s+\\d+\\s+(\\w+)`, "m"))?.[1] ?? null;
}

async function demo(lab: Lab, runtime: string): Promise<void> {
  const rt = ["--runtime", runtime];
  const events = watch = watchEvents(lab);
  try {
    say(`A container that prints a line and exits (runtime ${runtime})`);
    const hello = await ctr(lab, [
      "run",
      "--rm",
      ...rt,
      lab.image,
      "demo-hello",
      "echo",
      "hello from containerd-shim-deno",
    ]);
    expect(hello.code === 0 && hello.stdout === "hello from containerd-shim-deno\n", "output reaches ctr, exit 0");

    say("Exit codes travel back to the client");
    const exit = await ctr(lab, ["run", "--rm", ...rt, lab.image, "demo-exit", "sh", "-c", "exit 42"]);
    expect(exit.code === 42, "ctr exits with the container's code 42");

    say("A detached container: list, exec into it, list its processes");
    const run = await ctr(lab, ["run", "-d", ...rt, lab.image, "demo-sleep", "sleep", "1000"]);
    expect(run.code === 0, "started detached");
    await ctr(lab, ["task", "ls"]);
    expect(await taskStatus(lab, "demo-sleep") === "RUNNING", "task is RUNNING");
    const exec = await ctr(lab, ["task", "exec", "--exec-id", "demo-exec", "demo-sleep", "sh", "-c", "echo exec: $$"]);
    expect(exec.code === 0 && /^exec: \d+\n$/.test(exec.stdout), "exec runs inside the container");
    const ps = await ctr(lab, ["task", "ps", "demo-sleep"]);
    expect(ps.code === 0 && /^\d+/m.test(ps.stdout), "task ps lists the init process");

    say("The shim process(es) serving this lab, and their memory");
    await showShims(lab, runtime);

    say("Kill, delete, remove");
    const kill = await ctr(lab, ["task", "kill", "-s", "SIGKILL", "demo-sleep"]);
    expect(kill.code === 0, "SIGKILL delivered");
    const stopped = await waitFor(async () => await taskStatus(lab, "demo-sleep") === "STOPPED", 5_000);
    expect(stopped, "task is STOPPED");
    const del = await ctr(lab, ["task", "delete", "demo-sleep"]);
    expect(del.code === 0, "task deleted");
    const rm = await ctr(lab, ["container", "rm", "demo-sleep"]);
    expect(rm.code === 0, "container removed");
  } finally {
    await events.stop();
    watch = null;
  }
  say("Events seen");
  console.log(`    ${events.topics.join(" ")}`);
  for (const t of ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete", "/tasks/exec-added"]) {
    expect(events.topics.includes(t), `event ${t} published`);
  }
  expect(events.exits.some((e) => /"exit_status":137/.test(e)), "the killed task's exit event says 137 (128+9)");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { runtime: { type: "string", default: DENO_RUNTIME }, "keep-lab": { type: "boolean" } },
  });
  const runtime = values.runtime!;
  const hasMain = await Deno.stat(`${repoRoot}/main.ts`).then(() => true, () => false);
  if (hasMain) {
    say("Building dist/ (deno task build)");
    const info = await buildBundle();
    console.log(`    ${info.flavour} build, deno ${info.denoVersion}; -v: ${await warmLauncher() ?? "(no answer)"}`);
  } else if (runtime === DENO_RUNTIME) {
    console.error(
      "main.ts does not exist yet: nothing to run as io.containerd.deno.v2 (try --runtime io.containerd.runc.v2)",
    );
    return 1;
  } else {
    say("main.ts does not exist yet: skipping the build");
  }

  say("Bringing up the lab's private containerd");
  const t0 = performance.now();
  const lab = await useLab();
  console.log(`    ${lab.address} (log level ${lab.logLevel}), ready in ${Math.round(performance.now() - t0)} ms`);
  await lab.ensureImage(NS);
  await lab.cleanupNamespace(NS); // leftovers of an interrupted demo
  try {
    await demo(lab, runtime);
  } catch (e) {
    problems.push(`demo aborted: ${e instanceof Error ? e.message : e}`);
    console.error(e);
  } finally {
    await lab.cleanupNamespace(NS).catch(() => {});
    if (values["keep-lab"]) {
      say(`Leaving the lab running: ctr -a ${lab.address} -n ${NS} ...; stop it: deno task lab down`);
    } else {
      say("Tearing the lab down");
      await stopLab();
    }
  }
  console.log();
  if (problems.length === 0) {
    console.log(bold(`demo passed through ${runtime}`));
    return 0;
  }
  console.log(bold(`demo through ${runtime}: ${problems.length} problem(s):`));
  for (const p of problems) console.log(`  - ${p}`);
  return 1;
}

if (import.meta.main) Deno.exit(await main());
