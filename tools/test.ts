/**
 * The project's test runner (`deno task test`): static checks, the build, then every test, then the lab's teardown,
 * ending with one summary line `N passed, N failed` and a non-zero exit code on any failure.
 *
 * Steps, each under a header: `deno fmt --check`, `deno lint`, `deno check` (of those of main.ts, src/, tests/,
 * tools/, bench/ that exist), `deno task build` (skipped while main.ts does not exist), `deno test --allow-all
 * --no-check <paths>` (default: tests/ and src/), and `stopLab()` unless `SHIM_KEEP_LAB=1`. A failed fmt, lint,
 * check, build or teardown step counts as one failure; a test run that ends without deno's summary line (a crash)
 * counts as `0 passed, 1 failed`.
 *
 * `deno test` is stopped after `SHIM_TEST_TIMEOUT_MIN` minutes (default 20), which then counts as a crash.
 *
 * Arguments go to `deno test`: existing paths and globs replace the default paths, anything else (e.g.
 * `--filter name`) is passed through.
 *
 * @example
 * ```sh
 * deno task test                          # everything
 * deno task test tests/ttrpc_*            # only these test files (the static checks still run)
 * SHIM_KEEP_LAB=1 deno task test tests/lab_test.ts   # keep the lab's containerd running afterwards
 * ```
 * @module
 */
import { join } from "node:path";
import { repoRoot } from "./build.ts";
import { stopLab } from "../tests/lab/mod.ts";

/** Counts from deno test's summary line, e.g. `ok | 57 passed (3 steps) | 0 failed (10s)`. */
export interface TestSummary {
  passed: number;
  failed: number;
}

/** Parses the last summary line in deno test's output; null when there is none (the run crashed). */
export function parseSummary(output: string): TestSummary | null {
  // deno-lint-ignore no-control-regex
  const text = output.replace(/\x1b\[[0-9;]*m/g, "");
  const all = [...text.matchAll(/^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/gm)];
  const last = all.at(-1);
  return last ? { passed: Number(last[1]), failed: Number(last[2]) } : null;
}

/** The line this runner ends with. */
export function summaryLine(s: TestSummary): string {
  return `${s.passed} passed, ${s.failed} failed`;
}

/** Splits runner arguments into test paths (existing paths or globs) and flags passed through to `deno test`. */
export async function splitArgs(args: string[]): Promise<{ paths: string[]; passThrough: string[] }> {
  const paths: string[] = [];
  const passThrough: string[] = [];
  for (const a of args) {
    const isPath = !a.startsWith("-") &&
      (/[*?[]/.test(a) || await Deno.stat(join(repoRoot, a)).then(() => true, () => false));
    (isPath ? paths : passThrough).push(a);
  }
  return { paths, passThrough };
}

function header(title: string): void {
  console.log(`\n=== ${title} ===`);
}

async function exists(rel: string): Promise<boolean> {
  return await Deno.stat(join(repoRoot, rel)).then(() => true, () => false);
}

/** Runs deno with inherited stdio; returns whether it succeeded. */
async function step(title: string, args: string[]): Promise<boolean> {
  header(title);
  const t0 = performance.now();
  const { code } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: repoRoot,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(code === 0 ? `--- ok (${secs}s)` : `--- FAILED: exit ${code} (${secs}s)`);
  return code === 0;
}

/** Copies `from` to `to` as it arrives, keeping the last `keep` characters for parsing. */
async function tee(from: ReadableStream<Uint8Array>, to: Deno.FsFile | typeof Deno.stdout, keep = 1 << 16) {
  const dec = new TextDecoder();
  let tail = "";
  for await (const chunk of from) {
    await to.write(chunk);
    tail = (tail + dec.decode(chunk, { stream: true })).slice(-keep);
  }
  return tail;
}

/** Runs deno test with output streamed live and parsed. */
async function runTests(
  paths: string[],
  passThrough: string[],
): Promise<{ code: number; summary: TestSummary | null }> {
  const args = ["test", "--allow-all", "--no-check", ...passThrough, ...paths];
  header(`deno ${args.join(" ")}`);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: repoRoot,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // A hung test must not hold CI (stdin-less, unattended) forever: stop the run at the deadline; without deno's
  // summary line it then counts as a crash.
  const minutes = Number(Deno.env.get("SHIM_TEST_TIMEOUT_MIN") ?? 20);
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const deadline = setTimeout(() => {
    console.log(`\n=== deno test is still running after ${minutes} min (SHIM_TEST_TIMEOUT_MIN): stopping it ===`);
    child.kill("SIGTERM");
    killTimer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  }, minutes * 60_000);
  try {
    const [out, err, status] = await Promise.all([
      tee(child.stdout, Deno.stdout),
      tee(child.stderr, Deno.stderr),
      child.status,
    ]);
    return { code: status.code, summary: parseSummary(out) ?? parseSummary(err) };
  } finally {
    clearTimeout(deadline);
    clearTimeout(killTimer);
  }
}

async function main(): Promise<number> {
  let stepFailures = 0;
  if (!await step("deno fmt --check", ["fmt", "--check"])) stepFailures++;
  if (!await step("deno lint", ["lint"])) stepFailures++;

  const checkTargets: string[] = [];
  for (const t of ["main.ts", "src/", "tests/", "tools/", "bench/"]) if (await exists(t)) checkTargets.push(t);
  if (!await step(`deno check ${checkTargets.join(" ")}`, ["check", ...checkTargets])) stepFailures++;

  if (await exists("main.ts")) {
    if (!await step("deno task build", ["task", "build"])) stepFailures++;
  } else {
    header("deno task build");
    console.log("--- skipped: main.ts does not exist yet");
  }

  const { paths, passThrough } = await splitArgs(Deno.args);
  const defaults: string[] = [];
  for (const t of ["tests/", "src/"]) if (await exists(t)) defaults.push(t);
  const tests = await runTests(paths.length > 0 ? paths : defaults, passThrough);

  if (Deno.env.get("SHIM_KEEP_LAB") === "1") {
    header("lab teardown");
    console.log("--- skipped: SHIM_KEEP_LAB=1");
  } else {
    header("lab teardown (stopLab)");
    try {
      await stopLab();
      console.log("--- ok");
    } catch (e) {
      console.log(`--- FAILED: ${e instanceof Error ? e.message : e}`);
      stepFailures++;
    }
  }

  const summary = tests.summary ?? { passed: 0, failed: 1 };
  // deno test can fail without failing a test (e.g. no test modules found, an uncaught error between tests).
  const testFailures = tests.code !== 0 && summary.failed === 0 ? 1 : summary.failed;
  const total = { passed: summary.passed, failed: testFailures + stepFailures };
  console.log();
  console.log(summaryLine(total));
  return total.failed > 0 || tests.code !== 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
