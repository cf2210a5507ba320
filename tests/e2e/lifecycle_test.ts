/**
 * The shim core under real containerd (1.6, or 2.x with SHIM_LAB_CONTAINERD=2) + runc (issue: shim core, acceptance 1–5): `ctr` drives containers through
 * `io.containerd.deno.v2` exactly as it drives them through `io.containerd.runc.v2`.
 */
import assert from "node:assert/strict";
import {
  containerdPid,
  EventLog,
  labWith,
  mountsBelow,
  rounds,
  runRm,
  RUNTIME,
  SERIES,
  shimSocket,
  zombies,
} from "./helpers.ts";
import { waitFor } from "../lab/mod.ts";

const NS = "e2e-life";

const HELLO_RUNS = rounds(100, 25);
const CONCURRENT = rounds(50, 20);

Deno.test(`ctr run --rm … echo hello prints hello, ${HELLO_RUNS} times in a row (containerd ${SERIES})`, async () => {
  const lab = await labWith(NS);
  for (let i = 0; i < HELLO_RUNS; i++) {
    const r = await runRm(lab, NS, `hello-${i}`, ["echo", "hello"]);
    assert.equal(r.code, 0, `run ${i}: ${r.stderr}`);
    assert.equal(r.stdout, "hello\n", `run ${i} printed ${JSON.stringify(r.stdout)}`);
  }
});

Deno.test("exit codes and signals propagate, stderr is forwarded", async () => {
  const lab = await labWith(NS);
  const exit42 = await runRm(lab, NS, "exit42", ["sh", "-c", "echo to-stderr >&2; exit 42"]);
  assert.equal(exit42.code, 42);
  assert.match(exit42.stderr, /to-stderr/);
  // pid 1 of a pid namespace ignores its own SIGKILL, so the kill comes from outside, as a user sends it.
  const running = lab.ctr(["run", "--rm", "--runtime", RUNTIME, lab.image, "killed", "sleep", "1000"], {
    namespace: NS,
  });
  assert.ok(
    await waitFor(
      async () => /killed\s+\d+\s+RUNNING/.test((await lab.ctr(["task", "ls"], { namespace: NS })).stdout),
      10_000,
    ),
  );
  assert.equal((await lab.ctr(["task", "kill", "-s", "SIGKILL", "killed"], { namespace: NS })).code, 0);
  assert.equal((await running).code, 137);
  const big = await runRm(lab, NS, "bigout", ["sh", "-c", "seq 1 20000"]);
  assert.equal(big.code, 0);
  assert.equal(big.stdout.split("\n").length, 20001, "every line of a large output arrives before exit");
});

Deno.test("detached container: ls, kill, delete, rm, with events in order", async () => {
  const lab = await labWith(NS);
  const events = new EventLog(lab);
  try {
    await new Promise((r) => setTimeout(r, 300)); // let the subscription settle
    const run = await lab.ctr(["run", "-d", "--runtime", RUNTIME, lab.image, "detached", "sleep", "1000"], {
      namespace: NS,
    });
    assert.equal(run.code, 0, run.stderr);
    const ls = await lab.ctr(["task", "ls"], { namespace: NS });
    assert.match(ls.stdout, /detached\s+\d+\s+RUNNING/);
    assert.equal((await lab.ctr(["task", "kill", "-s", "SIGKILL", "detached"], { namespace: NS })).code, 0);
    assert.ok(
      await waitFor(
        async () => /detached\s+\d+\s+STOPPED/.test((await lab.ctr(["task", "ls"], { namespace: NS })).stdout),
        5000,
      ),
    );
    assert.equal((await lab.ctr(["task", "delete", "detached"], { namespace: NS })).code, 0);
    assert.equal((await lab.ctr(["container", "rm", "detached"], { namespace: NS })).code, 0);
    const want = ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"];
    assert.ok(
      await events.waitFor(() => want.every((t) => events.topicsFor("detached").includes(t))),
      `events seen: ${events.topicsFor("detached").join(", ")}`,
    );
    const topics = events.topicsFor("detached").filter((t) => t.startsWith("/tasks/"));
    assert.deepEqual(topics, want);
    const exit = events.lines.find((l) => l.includes("/tasks/exit") && l.includes('"detached"'))!;
    assert.match(exit, /"exit_status":137/);
  } finally {
    await events.stop();
    await lab.cleanupNamespace(NS);
  }
});

Deno.test("--log-uri file://, --null-io and the runtime as an absolute path", async () => {
  const lab = await labWith(NS);
  const logFile = `${lab.dir}/logs/e2e-file-log-${Date.now()}.log`;
  const r = await runRm(lab, NS, "filelog", ["sh", "-c", "echo out-line; echo err-line >&2"], [
    "--log-uri",
    `file://${logFile}`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const text = await Deno.readTextFile(logFile);
  assert.match(text, /out-line/);
  assert.match(text, /err-line/);
  await Deno.remove(logFile);

  // /dev/null as a log file (benchmarks use it); its directory must not be "created".
  const devNull = await runRm(lab, NS, "devnull", ["sh", "-c", "echo gone; exit 4"], ["--log-uri", "file:///dev/null"]);
  assert.equal(devNull.code, 4, devNull.stderr);
  const nested = `${lab.dir}/logs/e2e-new-dir-${Date.now()}/c.log`;
  const mk = await runRm(lab, NS, "newdir", ["echo", "in-new-dir"], ["--log-uri", `file://${nested}`]);
  assert.equal(mk.code, 0, mk.stderr);
  assert.equal(await Deno.readTextFile(nested), "in-new-dir\n");
  await Deno.remove(nested.slice(0, nested.lastIndexOf("/")), { recursive: true });

  const nullIo = await runRm(lab, NS, "nullio", ["sh", "-c", "echo invisible; exit 3"], ["--null-io"]);
  assert.equal(nullIo.code, 3);
  assert.equal(nullIo.stdout, "");

  const abs = await lab.ctr(["run", "--rm", "--runtime", lab.shimBinary, lab.image, "abspath", "echo", "abs-ok"], {
    namespace: NS,
  });
  assert.equal(abs.code, 0, abs.stderr);
  assert.equal(abs.stdout, "abs-ok\n");
});

const GO_RUNTIME = "io.containerd.runc.v2";

/**
 * A `binary://` logging driver for both shims: it records its arguments and environment, copies fds 3 and 4 to files,
 * and marks when it finished. It ignores SIGTERM (the Go shim sends one as soon as the input ends) so that it always
 * finishes its copies, and a shim must then wait for it.
 */
async function loggingDriver(dir: string): Promise<string> {
  const path = `${dir}/driver.sh`;
  await Deno.writeTextFile(
    path,
    `#!/bin/sh
trap '' TERM
out="$2"
echo "$CONTAINER_NAMESPACE $CONTAINER_ID $*" > "$out/args"
cat <&3 > "$out/stdout" &
cat <&4 > "$out/stderr" &
printf x >&5; exec 5>&-
wait
echo done > "$out/done"
`,
    { mode: 0o755 },
  );
  return path;
}

/** What the driver recorded in `out`: `lines` lines of stdout, one of stderr, its arguments; done before the return. */
async function assertLogged(out: string, lines: number, what: string): Promise<string> {
  // `ctr run --rm` and `ctr task exec` return after the Delete of the task or exec, which waits for the driver.
  assert.equal(await Deno.readTextFile(`${out}/done`), "done\n", `${what}: Delete returned before the driver ended`);
  assert.equal((await Deno.readTextFile(`${out}/stdout`)).split("\n").length, lines + 1, what);
  assert.equal(await Deno.readTextFile(`${out}/stderr`), "to-stderr\n", what);
  return await Deno.readTextFile(`${out}/args`);
}

Deno.test("--log-uri binary:// for a task and an exec: the driver gets the output, arguments and environment", async () => {
  const lab = await labWith(NS);
  const dir = `${lab.dir}/logs/e2e-binary-${Date.now()}`;
  await Deno.mkdir(dir, { recursive: true });
  const ctr = (args: string[]) => lab.ctr(args, { namespace: NS, timeoutMs: 60_000 });
  try {
    const driver = await loggingDriver(dir);
    const execArgs = new Map<string, string>();
    for (const [runtime, id] of [[RUNTIME, "binlog-deno"], [GO_RUNTIME, "binlog-go"]]) {
      const out = `${dir}/${id}`;
      await Deno.mkdir(out);
      const uri = (o: string) => `binary://${driver}?dir=${o}`;
      const r = await ctr(["run", "--rm", "--runtime", runtime, "--log-uri", uri(out), lab.image, id, "sh", "-c"]
        .concat("seq 1 20000; echo to-stderr >&2; exit 3"));
      assert.equal(r.code, 3, `${runtime}: ${r.stderr}`);
      assert.equal(await assertLogged(out, 20_000, runtime), `${NS} ${id} dir ${out}\n`, runtime);

      const up = await ctr(["run", "-d", "--runtime", runtime, lab.image, id, "sleep", "1000"]);
      assert.equal(up.code, 0, `${runtime}: ${up.stderr}`);
      try {
        const xout = `${out}-exec`;
        await Deno.mkdir(xout);
        const x = await ctr(["task", "exec", "--exec-id", "x1", "--log-uri", uri(xout), id, "sh", "-c"]
          .concat("seq 1 500; echo to-stderr >&2; exit 4"));
        assert.equal(x.code, 4, `${runtime} exec: ${x.stderr}`);
        execArgs.set(runtime, (await assertLogged(xout, 500, `${runtime} exec`)).replaceAll(id, "<id>"));
      } finally {
        await ctr(["task", "kill", "-s", "SIGKILL", id]);
        await ctr(["task", "delete", "-f", id]);
        await ctr(["container", "rm", id]);
      }
    }
    // The exec's driver sees what the Go shim's sees (its CONTAINER_ID included).
    assert.equal(execArgs.get(RUNTIME), execArgs.get(GO_RUNTIME));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Reads `child`'s stdout until `enough(text)` holds, failing after `ms`; returns what it read. */
async function readUntil(child: Deno.ChildProcess, enough: (text: string) => boolean, ms: number): Promise<string> {
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  const deadline = Date.now() + ms;
  let text = "";
  try {
    while (!enough(text)) {
      if (Date.now() > deadline) throw new Error(`timed out reading; got ${JSON.stringify(text.slice(-200))}`);
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    return text;
  } finally {
    reader.releaseLock();
  }
}

/** The complete lines of `text` as numbers. */
const numbers = (text: string) => text.split("\n").slice(0, -1).map(Number);

Deno.test("ctr task attach after the foreground ctr died gets what was written meanwhile, as with the Go shim", async () => {
  const lab = await labWith(NS);
  const count = 400;
  const script = `i=0; while [ $i -lt ${count} ]; do echo $i; i=$((i+1)); usleep 10000; done`;
  for (const [runtime, id] of [[RUNTIME, "attach-deno"], [GO_RUNTIME, "attach-go"]]) {
    try {
      const first = lab.spawnCtr(["run", "--runtime", runtime, lab.image, id, "sh", "-c", script], { namespace: NS });
      const seen = numbers(await readUntil(first, (t) => numbers(t).length >= 30, 30_000));
      first.kill("SIGKILL"); // the reader goes away while the container keeps writing
      await first.status;
      await first.stdout.cancel().catch(() => {});
      await first.stderr.cancel().catch(() => {});
      await new Promise((r) => setTimeout(r, 500));
      const attach = await lab.ctr(["task", "attach", id], { namespace: NS, timeoutMs: 60_000 });
      assert.equal(attach.code, 0, `${runtime}: ${attach.stderr}`);
      const later = numbers(attach.stdout);
      const last = seen[seen.length - 1];
      // At most what the killed ctr had read but not yet printed is missing.
      assert.ok(later[0] <= last + 2, `${runtime}: the first reader saw up to ${last}, the next starts at ${later[0]}`);
      assert.deepEqual(later, Array.from({ length: count - later[0] }, (_, i) => later[0] + i), runtime);
    } finally {
      await lab.ctr(["task", "delete", "-f", id], { namespace: NS });
      await lab.ctr(["container", "rm", id], { namespace: NS });
    }
  }
});

Deno.test(`${CONCURRENT} containers started concurrently, then removed: nothing is left behind`, async () => {
  const lab = await labWith(NS);
  const cpid = await containerdPid(lab);
  const fdsBefore = [...Deno.readDirSync(`/proc/${cpid}/fd`)].length;
  const ids = Array.from({ length: CONCURRENT }, (_, i) => `conc-${i}`);
  try {
    const runs = await Promise.all(
      ids.map((id) =>
        lab.ctr(["run", "-d", "--runtime", RUNTIME, lab.image, id, "sleep", "1000"], {
          namespace: NS,
          timeoutMs: 120_000,
        })
      ),
    );
    runs.forEach((r, i) => assert.equal(r.code, 0, `${ids[i]}: ${r.stderr}`));
    const ls = (await lab.ctr(["task", "ls"], { namespace: NS })).stdout;
    for (const id of ids) assert.match(ls, new RegExp(`${id}\\s+\\d+\\s+RUNNING`));
    const shims = await lab.shimPids();
    assert.ok(shims.length >= CONCURRENT, `expected a server per container, saw ${shims.length}`);
  } finally {
    await lab.cleanupNamespace(NS);
  }
  // Shims exit after Shutdown; the host's init reaps them with some delay.
  assert.ok(await waitFor(async () => (await lab.shimPids()).length === 0, 20_000), "shim processes left");
  for (const id of ids) {
    const sock = shimSocket(lab, NS, id);
    assert.equal(await Deno.stat(sock).then(() => true, () => false), false, `socket left: ${sock}`);
  }
  const bundles = `${lab.dir}/state/io.containerd.runtime.v2.task/${NS}`;
  assert.deepEqual(await mountsBelow(bundles), []);
  assert.deepEqual(await zombies(new Set([cpid])), []);
  const fdsAfter = [...Deno.readDirSync(`/proc/${cpid}/fd`)].length;
  assert.ok(fdsAfter <= fdsBefore + 5, `containerd fds grew from ${fdsBefore} to ${fdsAfter}`);
});
