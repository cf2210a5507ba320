/**
 * The test runner itself (tools/test.ts), run as a person runs it: on a file that runs a container and is SIGTERMed
 * halfway (nothing of the tests may remain, and the runner says what it removed), and on files that pass and hang
 * (the hang is stopped at its limit, and every file's counts still add up). Cheap: static steps off, the lab kept,
 * one container through the harness.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot } from "../tools/build.ts";
import {
  globToRegExp,
  isTestFile,
  jobLabel,
  jobsFor,
  parseSummary,
  partialSummary,
  selectFiles,
  seriesList,
} from "../tools/test.ts";
import { findProcesses, readCmdline, waitFor } from "./lab/proc.ts";

const FIXTURES = "tests/fixtures/runner";

/** Starts the runner on `args` with the static steps off and the lab kept. */
function runner(args: string[], env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "tools/test.ts", ...args],
    cwd: repoRoot,
    env: { SHIM_TEST_STATIC: "0", SHIM_KEEP_LAB: "1", NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function alive(pid: number): Promise<boolean> {
  return await readCmdline(pid) !== null;
}

Deno.test("runner: SIGTERM halfway through a file that runs a container leaves nothing of the tests behind", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "runner-test-" });
  const ready = join(tmp, "ready.json");
  const runDir = join(tmp, "run");
  const child = runner([`${FIXTURES}/containers.ts`], { SHIM_TEST_TMPDIR: runDir, RUNNER_FIXTURE_READY: ready });
  const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  try {
    let exited = false;
    child.status.then(() => exited = true);
    const started = await waitFor(async () => exited || await exists(ready), 300_000, 200);
    if (!started || exited) {
      if (!exited) child.kill("SIGTERM");
      const [out, err] = await output;
      assert.fail(
        `the fixture did not start its container (${exited ? "the runner ended" : "in 300 s"}):\n${out}\n${err}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200)); // the file is written in one go, but let the write finish
    const fixture = JSON.parse(await Deno.readTextFile(ready)) as {
      dir: string;
      serverPid: number;
      containerPid: number;
      loggers: number[];
      runcState: string;
      socket: string;
    };
    // What a killed run used to leave: all of it exists now.
    assert.ok(fixture.dir.startsWith(runDir + "/"), `the test's temp dir ${fixture.dir} is in the run's TMPDIR`);
    for (const pid of [fixture.serverPid, fixture.containerPid, ...fixture.loggers]) assert.ok(await alive(pid));
    assert.ok(fixture.loggers.length > 0, "the bundle's log has a reader");
    assert.ok(await exists(fixture.runcState));
    assert.ok(await exists(fixture.socket));

    child.kill("SIGTERM");
    const status = await child.status;
    const [out] = await output;

    assert.equal(status.code, 143, out);
    assert.match(out, /=== SIGTERM: stopping the running test, then tearing down ===/);
    assert.match(out, /left behind: process +pid \d+/, "the runner says what it found");
    assert.match(out, /left behind: container +\/run\/containerd\/runc\//);
    assert.match(out, /--- FAILED: \d+ leftovers \(removed\)/);
    assert.match(out, /tests\/fixtures\/runner\/containers\.ts +1 +1 +[\d.]+ +\(interrupted \(SIGTERM\)\)/);
    assert.match(out, /\n1 passed, 2 failed\n$/, "1 pass; the interrupted file and the leftovers fail");

    for (const pid of [fixture.serverPid, fixture.containerPid, ...fixture.loggers]) {
      assert.ok(await waitFor(async () => !await alive(pid), 5_000), `pid ${pid} still runs`);
    }
    assert.ok(!await exists(fixture.runcState), `${fixture.runcState} remains`);
    assert.ok(!await exists(fixture.socket), `${fixture.socket} remains`);
    assert.ok(!await exists(fixture.dir), `${fixture.dir} remains`);
    const mentioning = await findProcesses((argv) => argv.join(" ").includes(runDir));
    assert.deepEqual(mentioning, [], "no process names the run's temp directory");
    const mounts = await Deno.readTextFile("/proc/self/mountinfo");
    assert.ok(!mounts.includes(runDir), "no mount below the run's temp directory");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await output.catch(() => {});
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});

Deno.test("runner: a file over its time limit is stopped and named; every file's counts add up", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "runner-test-" });
  try {
    const child = runner([`${FIXTURES}/pass.ts`, `${FIXTURES}/hang.ts`], {
      SHIM_TEST_TMPDIR: join(tmp, "run"),
      SHIM_TEST_TIMEOUT_MIN: "0.1",
    });
    const [out] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
    const status = await child.status;
    assert.equal(status.code, 1, out);
    assert.match(out, /=== tests\/fixtures\/runner\/hang\.ts is still running after its limit of 0\.1 min/);
    assert.match(out, /SHIM_TEST_TIMEOUT_MIN/);
    assert.match(out, /tests\/fixtures\/runner\/pass\.ts +2 +0 /);
    assert.match(out, /tests\/fixtures\/runner\/hang\.ts +1 +1 +[\d.]+ +\(timed out after 0\.1 min\)/);
    assert.match(out, /--- none/, "nothing left behind");
    assert.match(out, /\n3 passed, 1 failed\n$/);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});

Deno.test("runner: summaries, partial counts, file selection and the containerd matrix", async () => {
  assert.deepEqual(parseSummary("ok | 57 passed (3 steps) | 0 failed (10s)\n"), { passed: 57, failed: 0 });
  assert.equal(parseSummary("error: Module not found\n"), null);
  // killed halfway: what was reported counts, the kill is one more failure; steps (indented) do not count
  assert.deepEqual(
    partialSummary("a ... ok (3ms)\nb ...\n  step ... ok (1ms)\nb ... FAILED (2ms)\nc ... ok (1s)\nd ...\n"),
    { passed: 2, failed: 2 },
  );
  assert.ok(isTestFile("src/a_test.ts") && isTestFile("tests/x.test.ts") && isTestFile("test.ts"));
  assert.ok(!isTestFile("tests/harness/shim.ts") && !isTestFile("tests/latest.ts"));
  assert.ok(globToRegExp("tests/ttrpc_*").test("tests/ttrpc_fuzz_test.ts"));
  assert.ok(!globToRegExp("tests/*").test("tests/e2e/cri_test.ts"));
  assert.ok(globToRegExp("tests/**/*_test.ts").test("tests/e2e/cri_test.ts"));

  const { files, passThrough } = await selectFiles(["tests/e2e/", "--filter", "lab:", "tests/ttrpc_*", "--fail-fast"]);
  assert.ok(files.includes("tests/e2e/lifecycle_test.ts") && files.includes("tests/ttrpc_fuzz_test.ts"));
  assert.ok(!files.some((f) => f.includes("helpers") || f.includes("fixtures")));
  assert.deepEqual(passThrough, ["--filter", "lab:", "--fail-fast"]);
  const all = await selectFiles([]);
  assert.ok(all.files.includes("src/ttrpc/frame_test.ts") && all.files.includes("tests/runner_test.ts"));
  assert.ok(!all.files.some((f) => f.startsWith("tests/fixtures/")));

  assert.deepEqual(seriesList(undefined), ["1.6", "2", "1.7"]);
  assert.deepEqual(seriesList(" 2 "), ["2"]);
  const jobs = jobsFor(["src/a_test.ts", "tests/e2e/b_test.ts"], ["1.6", "2"]);
  assert.deepEqual(jobs.map(jobLabel), [
    "src/a_test.ts",
    "[containerd 1.6] tests/e2e/b_test.ts",
    "[containerd 2] tests/e2e/b_test.ts",
  ]);
});
