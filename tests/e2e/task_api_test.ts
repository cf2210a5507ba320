/**
 * The rest of the Task API through ctr (issue: whole Task API): exec, TTY with resize, pause/resume, pids and a
 * checkpoint that cannot succeed on this kernel.
 */
import assert from "node:assert/strict";
import { EventLog, labWith, RUNTIME } from "./helpers.ts";
import { type Lab, waitFor } from "../lab/mod.ts";

const NS = "e2e-api";

async function detached(lab: Lab, id: string, args: string[] = ["sleep", "1000"]): Promise<void> {
  const r = await lab.ctr(["run", "-d", "--runtime", RUNTIME, lab.image, id, ...args], { namespace: NS });
  assert.equal(r.code, 0, r.stderr);
}

const ls = async (lab: Lab) => (await lab.ctr(["task", "ls"], { namespace: NS })).stdout;

Deno.test("exec: output and exit code, stdin with CloseIO, 20 concurrent execs, duplicate exec id", async () => {
  const lab = await labWith(NS);
  try {
    await detached(lab, "ex");
    const one = await lab.ctr(["task", "exec", "--exec-id", "e1", "ex", "sh", "-c", "echo ok; exit 3"], {
      namespace: NS,
    });
    assert.equal(one.stdout, "ok\n");
    assert.equal(one.code, 3);

    const many = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) =>
          lab.ctr(["task", "exec", "--exec-id", `c${i}`, "ex", "sh", "-c", `echo out-${i}; exit ${i + 1}`], {
            namespace: NS,
          }),
      ),
    );
    many.forEach((r, i) => {
      assert.equal(r.stdout, `out-${i}\n`, `exec ${i}: ${r.stderr}`);
      assert.equal(r.code, i + 1);
    });

    // ctr sends CloseIO when its stdin ends (possibly before the exec has started): cat gets the input, then EOF.
    const piped = await lab.ctr(["task", "exec", "--exec-id", "stdin", "ex", "cat"], {
      namespace: NS,
      stdin: "piped-input\n",
      timeoutMs: 15_000,
    });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, "piped-input\n");

    const long = lab.ctr(["task", "exec", "--exec-id", "dup", "ex", "sleep", "3"], { namespace: NS });
    await new Promise((r) => setTimeout(r, 700));
    const dup = await lab.ctr(["task", "exec", "--exec-id", "dup", "ex", "true"], { namespace: NS });
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /already exists/);
    assert.equal((await long).code, 0);
  } finally {
    await lab.cleanupNamespace(NS);
  }
});

Deno.test("pause freezes the container, resume thaws it, events in order", async () => {
  const lab = await labWith(NS);
  const events = new EventLog(lab);
  try {
    await new Promise((r) => setTimeout(r, 300));
    await detached(lab, "pz");
    assert.equal((await lab.ctr(["task", "pause", "pz"], { namespace: NS })).code, 0);
    assert.match(await ls(lab), /pz\s+\d+\s+PAUSED/);
    const freezer = (await Deno.readTextFile(`/sys/fs/cgroup/freezer/default/pz/freezer.state`).catch(() => "")).trim();
    if (freezer) assert.equal(freezer, "FROZEN");
    const execWhilePaused = await lab.ctr(["task", "exec", "--exec-id", "x", "pz", "true"], { namespace: NS });
    assert.notEqual(execWhilePaused.code, 0);
    assert.match(execWhilePaused.stderr, /cannot exec in a paused state/);
    assert.equal((await lab.ctr(["task", "resume", "pz"], { namespace: NS })).code, 0);
    assert.match(await ls(lab), /pz\s+\d+\s+RUNNING/);
    assert.ok(await events.waitFor(() => events.topicsFor("pz").includes("/tasks/resumed")));
    const topics = events.topicsFor("pz").filter((t) => t === "/tasks/paused" || t === "/tasks/resumed");
    assert.deepEqual(topics, ["/tasks/paused", "/tasks/resumed"]);
  } finally {
    await events.stop();
    await lab.cleanupNamespace(NS);
  }
});

Deno.test("ps lists the init and exec pids", async () => {
  const lab = await labWith(NS);
  try {
    await detached(lab, "pids");
    const exec = lab.ctr(["task", "exec", "--exec-id", "slow", "pids", "sleep", "2"], { namespace: NS });
    await new Promise((r) => setTimeout(r, 700));
    const ps = await lab.ctr(["task", "ps", "pids"], { namespace: NS });
    assert.equal(ps.code, 0, ps.stderr);
    const rows = ps.stdout.trim().split("\n").slice(1);
    assert.equal(rows.length, 2, ps.stdout);
    assert.ok(rows.some((r) => /exec_id.*slow|slow/.test(r)), `exec row lacks its exec id: ${ps.stdout}`);
    await exec;
  } finally {
    await lab.cleanupNamespace(NS);
  }
});

Deno.test("checkpoint fails on this kernel and the container keeps running", async () => {
  const lab = await labWith(NS);
  try {
    await detached(lab, "cp");
    // A checkpoint that hangs instead of failing is cut off (and fails the test) by ctr's 30 s limit.
    const cp = await lab.ctr(["task", "checkpoint", "cp"], { namespace: NS, timeoutMs: 30_000 });
    if (cp.code === 0) {
      // A host whose CRIU works: the checkpoint exists and the container still runs.
      assert.match(await ls(lab), /cp\s+\d+\s+RUNNING/);
      return;
    }
    assert.match(cp.stderr, /criu|checkpoint/i);
    assert.match(await ls(lab), /cp\s+\d+\s+RUNNING/);
    const exec = await lab.ctr(["task", "exec", "--exec-id", "after", "cp", "echo", "alive"], { namespace: NS });
    assert.equal(exec.stdout, "alive\n");
  } finally {
    await lab.cleanupNamespace(NS);
  }
});

/** Runs `cmd` in a detached tmux session of the given size; returns helpers to type and read the screen. */
async function tmux(session: string, cmd: string, cols = 120, rows = 40) {
  const run = (args: string[]) => new Deno.Command("tmux", { args: ["-L", "shimtest", ...args] }).output();
  await run(["new-session", "-d", "-s", session, "-x", `${cols}`, "-y", `${rows}`, cmd]);
  return {
    keys: (text: string) => run(["send-keys", "-t", session, text, "Enter"]),
    screen: async () => new TextDecoder().decode((await run(["capture-pane", "-p", "-t", session])).stdout),
    resize: (c: number, r: number) => run(["resize-window", "-t", session, "-x", `${c}`, "-y", `${r}`]),
    kill: () => run(["kill-session", "-t", session]),
  };
}

Deno.test("TTY: input echoes, stty size follows a resize, the exit code propagates (run -t and exec -t)", async () => {
  const lab = await labWith(NS);
  const rcFile = `${lab.dir}/logs/tty-rc-${Date.now()}`;
  const ctr = `${lab.ctrBinary} -a ${lab.address} -n ${NS}`;
  const t = await tmux(
    "tty1",
    `${ctr} run -t --rm --runtime ${RUNTIME} ${lab.image} tty1 sh; echo rc=$? > ${rcFile}; sleep 30`,
  );
  try {
    // Generous waits: under heavy load (two CPU hogs on two cores) a step can take seconds; none of them is a timing check.
    const seen = (re: RegExp) => waitFor(async () => re.test(await t.screen()), 30_000);
    assert.ok(await seen(/\/ #/), `no shell prompt: ${await t.screen()}`);
    await t.keys("echo typed-$((6*7))");
    assert.ok(await seen(/^typed-42/m), await t.screen());
    await t.keys("stty size");
    assert.ok(await seen(/^40 120/m), await t.screen());
    await t.resize(100, 30);
    await new Promise((r) => setTimeout(r, 500));
    await t.keys("stty size");
    assert.ok(await seen(/^30 100/m), await t.screen());

    const e = await tmux(
      "tty1exec",
      `${ctr} task exec -t --exec-id tx tty1 sh -c 'sleep 0.5; stty size; exit 4'; echo exec-rc=$? >> ${rcFile}.exec; sleep 30`,
      90,
      20,
    );
    try {
      assert.ok(
        await waitFor(async () => /exec-rc=4/.test(await Deno.readTextFile(`${rcFile}.exec`).catch(() => "")), 30_000),
      );
      assert.match(await e.screen(), /20 90/);
    } finally {
      await e.kill();
    }
    await t.keys("exit 5");
    if (!await waitFor(async () => (await Deno.readTextFile(rcFile).catch(() => "")).includes("rc=5"), 30_000)) {
      const tasks = (await lab.ctr(["task", "ls"], { namespace: NS })).stdout;
      const rc = await Deno.readTextFile(rcFile).catch((e) => `(${e})`);
      assert.fail(
        `ctr run -t did not return after exit 5; rc file: ${rc}; screen:\n${await t.screen()}\ntasks:\n${tasks}`,
      );
    }
  } finally {
    await t.kill();
    await Deno.remove(rcFile).catch(() => {});
    await Deno.remove(`${rcFile}.exec`).catch(() => {});
    await lab.cleanupNamespace(NS);
  }
});
