/**
 * The project's test runner (`deno task test`, run by `bash scripts/test.sh`): static checks, the build, then every
 * test file in a `deno test` process of its own, then the lab's teardown and a search for anything the tests left
 * behind, ending with one line `N passed, N failed` and a non-zero exit code on any failure.
 *
 * - Static steps: `deno fmt --check`, `deno lint`, `deno check main.ts src/ tests/ tools/ bench/`, `deno task build`.
 *   Each failed step counts as one failure. `SHIM_TEST_STATIC=0` skips them (e.g. for a quick rerun of one file).
 * - Test files: the `*_test.ts` (deno test's naming) under `tests/`, `src/` and `bench/`, or the files, directories and globs
 *   given as arguments. One `deno test --allow-all --no-check` process per file, so a file that hangs or crashes is
 *   reported by name and every other file's counts still add up. A file that ends without deno's summary line counts
 *   the tests it reported as passed, plus one failure.
 * - containerd matrix: each file under `tests/e2e/` runs once per series in `SHIM_TEST_CONTAINERD` (default `1.6,2,1.7`)
 *   with `SHIM_LAB_CONTAINERD=<series>` set (the lab starts that series' containerd); the others run once, without it.
 * - Per-file time limit: `SHIM_TEST_TIMEOUT_MIN` (default 5) minutes, `SHIM_TEST_E2E_TIMEOUT_MIN` (default 8) for
 *   `tests/e2e/`; when one hits, the limit is printed and the file counts as failed.
 * - Teardown: `deno run -A tools/lab.ts down` once per series with `SHIM_LAB_CONTAINERD=<series>` (skipped with
 *   `SHIM_KEEP_LAB=1`).
 * - Leftovers (tools/leftovers.ts): every test process runs with `TMPDIR` set to this checkout's private temp
 *   directory (`/tmp/st<hash of the checkout path>`, or `SHIM_TEST_TMPDIR`); after the teardown, any shim
 *   server, container, logger, runc state directory, shim socket, mount or temp entry of this run that remains is
 *   listed, removed, and counted as one failure.
 * - SIGINT/SIGTERM: forwarded to the running `deno test`; no further file starts; the teardown and the leftover
 *   check still run and the summary is printed; exit code 130/143.
 *
 * Arguments: existing paths and globs select the files; anything else (e.g. `--filter name`) goes to each
 * `deno test`.
 *
 * @example
 * ```sh
 * deno task test                                       # everything
 * deno task test tests/e2e/lifecycle_test.ts           # one file (the static checks still run)
 * SHIM_TEST_STATIC=0 deno task test tests/shim_api_test.ts --filter Update
 * SHIM_TEST_CONTAINERD=1.6 deno task test tests/e2e/   # the e2e files on containerd 1.6 only
 * SHIM_KEEP_LAB=1 deno task test tests/lab_test.ts     # keep the lab's containerd running afterwards
 * ```
 * @module
 */
import { join, relative } from "node:path";
import { repoRoot } from "./build.ts";
import { sha256Hex } from "../src/shim/sha256.ts";
import { libc } from "../src/sys/libc.ts";
import { F_GETFD, F_SETFD, FD_CLOEXEC } from "../src/sys/abi.ts";
import {
  ancestors,
  findLeftovers,
  type Leftover,
  removeLeftovers,
  type Snapshot,
  snapshot,
  SocketWatch,
  SPARE_EXIT_MS,
  waitForSpares,
} from "./leftovers.ts";

/** Counts from deno test's summary line, e.g. `ok | 57 passed (3 steps) | 0 failed (10s)`. */
export interface TestSummary {
  passed: number;
  failed: number;
}

// deno-lint-ignore no-control-regex
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

/** Parses the last summary line in deno test's output; null when there is none (the run crashed). */
export function parseSummary(output: string): TestSummary | null {
  const text = stripAnsi(output);
  const all = [...text.matchAll(/^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/gm)];
  const last = all.at(-1);
  return last ? { passed: Number(last[1]), failed: Number(last[2]) } : null;
}

/**
 * Counts of a run that ended without a summary (killed, crashed): top-level tests reported `ok` pass, those reported
 * `FAILED` fail, and the run itself is one more failure.
 */
export function partialSummary(output: string): TestSummary {
  const text = stripAnsi(output);
  const passed = [...text.matchAll(/^\S.* \.\.\. ok(?: \(.*\))?$/gm)].length;
  const failed = [...text.matchAll(/^\S.* \.\.\. FAILED(?: \(.*\))?$/gm)].length;
  return { passed, failed: failed + 1 };
}

/** The line this runner ends with. */
export function summaryLine(s: TestSummary): string {
  return `${s.passed} passed, ${s.failed} failed`;
}

/** deno test's default test-file naming. */
export function isTestFile(name: string): boolean {
  return /(?:^|[_.])test\.(?:ts|tsx|mts|js|mjs|jsx)$/.test(name.slice(name.lastIndexOf("/") + 1));
}

/** A glob (`*`, `**`, `?`, `[...]`) as a regular expression over repo-relative paths. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      re += ".*";
      i++;
      if (glob[i + 1] === "/") i++;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i);
      if (end < 0) re += "\\[";
      else {
        re += glob.slice(i, end + 1);
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

const SKIP_DIRS = new Set(["node_modules", "dist", "fixtures", ".lab", ".git"]);

/** Every file below `dir` (repo-relative), skipping build output, dependencies and test fixtures. */
async function walk(dir: string, out: string[] = []): Promise<string[]> {
  const entries: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(join(repoRoot, dir))) entries.push(e);
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = dir === "." ? e.name : `${dir}/${e.name}`;
    if (e.isDirectory && !SKIP_DIRS.has(e.name) && !e.name.startsWith(".")) await walk(rel, out);
    else if (e.isFile) out.push(rel);
  }
  return out;
}

async function exists(rel: string): Promise<boolean> {
  return await Deno.stat(join(repoRoot, rel)).then(() => true, () => false);
}

/**
 * Splits runner arguments into test files and flags passed through to `deno test`. A file given by name runs
 * whatever its name; directories and globs contribute their test files.
 */
export async function selectFiles(args: string[]): Promise<{ files: string[]; passThrough: string[] }> {
  const files: string[] = [];
  const passThrough: string[] = [];
  const add = (f: string) => files.includes(f) || files.push(f);
  let paths = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith("-")) {
      passThrough.push(a);
      // `--filter x`: the value belongs to the flag.
      if (!a.includes("=") && ["--filter", "--seed", "--reporter", "--shuffle"].includes(a) && i + 1 < args.length) {
        passThrough.push(args[++i]);
      }
      continue;
    }
    const rel = relative(repoRoot, join(Deno.cwd(), a)) || ".";
    if (/[*?[]/.test(a)) {
      paths++;
      const re = globToRegExp(rel);
      for (const f of await walk(".")) if (re.test(f) && isTestFile(f)) add(f);
    } else if (await exists(rel)) {
      paths++;
      const st = await Deno.stat(join(repoRoot, rel));
      if (st.isDirectory) { for (const f of await walk(rel)) isTestFile(f) && add(f); }
      else add(rel);
    } else {
      passThrough.push(a);
    }
  }
  if (paths === 0) {
    for (const d of ["tests", "src", "bench"]) {
      if (await exists(d)) { for (const f of await walk(d)) isTestFile(f) && add(f); }
    }
  }
  return { files, passThrough };
}

/** Splits runner arguments into test paths (existing paths or globs) and flags passed through to `deno test`. */
export async function splitArgs(args: string[]): Promise<{ paths: string[]; passThrough: string[] }> {
  const paths: string[] = [];
  const passThrough: string[] = [];
  for (const a of args) {
    const isPath = !a.startsWith("-") && (/[*?[]/.test(a) || await exists(relative(repoRoot, join(Deno.cwd(), a))));
    (isPath ? paths : passThrough).push(a);
  }
  return { paths, passThrough };
}

/** One run of one file. */
export interface Job {
  file: string;
  /** containerd series for files under tests/e2e/, else undefined. */
  series?: string;
}

export function jobLabel(j: Job): string {
  return j.series === undefined ? j.file : `[containerd ${j.series}] ${j.file}`;
}

/** The containerd series to run the e2e files on (`SHIM_TEST_CONTAINERD`, default `1.6,2,1.7`). */
export function seriesList(env: string | undefined): string[] {
  const list = (env ?? "1.6,2,1.7").split(",").map((s) => s.trim()).filter(Boolean);
  return list.length > 0 ? list : ["1.6"];
}

/** Jobs for `files`: e2e files once per series, the others once. */
export function jobsFor(files: string[], series: string[]): Job[] {
  const jobs: Job[] = [];
  for (const file of files) {
    if (file.startsWith("tests/e2e/")) { for (const s of series) jobs.push({ file, series: s }); }
    else jobs.push({ file });
  }
  return jobs;
}

function minutesEnv(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!(v > 0)) throw new Error(`${name} must be a positive number of minutes, not ${raw}`);
  return v;
}

function header(title: string): void {
  console.log(`\n=== ${title} ===`);
}

/** State shared with the signal handlers. */
const run = {
  interrupted: null as Deno.Signal | null,
  child: null as Deno.ChildProcess | null,
};

function killChild(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch { /* already gone */ }
}

/** Sends `signal` to `child` now and SIGKILL after `graceMs` unless it has exited by then. */
function stopChild(child: Deno.ChildProcess, signal: Deno.Signal, graceMs = 10_000): void {
  killChild(child, signal);
  const t = setTimeout(() => killChild(child, "SIGKILL"), graceMs);
  child.status.finally(() => clearTimeout(t));
}

/** Runs deno with inherited stdio; returns whether it succeeded. */
async function step(title: string, args: string[], env?: Record<string, string>): Promise<boolean> {
  header(title);
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: repoRoot,
    env,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  run.child = child;
  const { code } = await child.status;
  run.child = null;
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(code === 0 ? `--- ok (${secs}s)` : `--- FAILED: exit ${code} (${secs}s)`);
  return code === 0;
}

/** Copies `from` to `to` as it arrives, keeping the last `keep` characters for parsing. */
async function tee(from: ReadableStream<Uint8Array>, to: typeof Deno.stdout, keep = 1 << 20) {
  const dec = new TextDecoder();
  let tail = "";
  for await (const chunk of from) {
    await to.write(chunk);
    tail = (tail + dec.decode(chunk, { stream: true })).slice(-keep);
  }
  return tail;
}

/** Result of one job. */
export interface JobResult extends TestSummary {
  label: string;
  seconds: number;
  /** Why the file failed beyond its tests: a timeout, a crash, an interruption. */
  note?: string;
}

async function runJob(job: Job, passThrough: string[], env: Record<string, string>): Promise<JobResult> {
  const label = jobLabel(job);
  const args = ["test", "--allow-all", "--no-check", ...passThrough, job.file];
  header(`${label}: deno ${args.join(" ")}`);
  const jobEnv = { ...env };
  if (job.series !== undefined) jobEnv.SHIM_LAB_CONTAINERD = job.series;
  const minutes = job.file.startsWith("tests/e2e/")
    ? minutesEnv("SHIM_TEST_E2E_TIMEOUT_MIN", 8)
    : minutesEnv("SHIM_TEST_TIMEOUT_MIN", 5);
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: repoRoot,
    env: jobEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  run.child = child;
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    const knob = job.file.startsWith("tests/e2e/") ? "SHIM_TEST_E2E_TIMEOUT_MIN" : "SHIM_TEST_TIMEOUT_MIN";
    console.log(`\n=== ${label} is still running after its limit of ${minutes} min (${knob}): stopping it ===`);
    stopChild(child, "SIGTERM");
  }, minutes * 60_000);
  try {
    const [out, err, status] = await Promise.all([
      tee(child.stdout, Deno.stdout),
      tee(child.stderr, Deno.stderr),
      child.status,
    ]);
    const seconds = (performance.now() - t0) / 1000;
    const summary = parseSummary(out) ?? parseSummary(err);
    let note: string | undefined;
    if (timedOut) note = `timed out after ${minutes} min`;
    else if (run.interrupted) note = `interrupted (${run.interrupted})`;
    else if (summary === null) {
      note = `ended without a summary (exit code ${status.code}${status.signal ? `, ${status.signal}` : ""})`;
    }
    if (summary !== null && !timedOut) {
      // deno test can fail without failing a test (e.g. an uncaught error between tests).
      const failed = status.code !== 0 && summary.failed === 0 ? 1 : summary.failed;
      if (status.code !== 0 && summary.failed === 0) note ??= `exit code ${status.code}`;
      return { label, seconds, passed: summary.passed, failed, note };
    }
    return { label, seconds, ...partialSummary(out), note };
  } finally {
    clearTimeout(deadline);
    run.child = null;
  }
}

/** This checkout's private temp directory for the tests' `TMPDIR`. */
export function privateTempDir(): string {
  const explicit = Deno.env.get("SHIM_TEST_TMPDIR");
  if (explicit) return explicit;
  // Short: tests bind unix sockets below it, 64-hex socket names included, and sun_path holds 107 bytes.
  return `/tmp/st${sha256Hex(repoRoot).slice(0, 6)}`;
}

/** The marks that make a process, mount or runc state this checkout's (see tools/leftovers.ts). */
export function ownershipMarks(tempDir: string): string[] {
  const marks = [`${repoRoot}/dist/`, `${repoRoot}/.lab`, `${tempDir}/`];
  const labDir = Deno.env.get("SHIM_LAB_DIR");
  if (labDir) marks.push(labDir);
  return marks;
}

function minutesSince(t0: number): string {
  return ((performance.now() - t0) / 60_000).toFixed(1);
}

function describe(l: Leftover): string {
  return `${l.kind.padEnd(9)} ${l.what}`;
}

function printResults(results: JobResult[], steps: [string, boolean][]): void {
  header("results");
  for (const [name, ok] of steps) console.log(`${ok ? "ok    " : "FAILED"}  ${name}`);
  const width = Math.max(20, ...results.map((r) => r.label.length));
  console.log(`${"file".padEnd(width)}  passed  failed  seconds`);
  for (const r of results) {
    const line = `${r.label.padEnd(width)}  ${String(r.passed).padStart(6)}  ${String(r.failed).padStart(6)}  ${
      r.seconds.toFixed(1).padStart(7)
    }`;
    console.log(r.note ? `${line}  (${r.note})` : line);
  }
}

/**
 * Marks every descriptor this process inherited (beyond stdio) close-on-exec, so the tests' children do not hold
 * them: run as `flock /tmp/shim-e2e.lock deno task test`, a shim server or logger that outlived its test would
 * otherwise keep the lock (flock's descriptor) held for good.
 */
function stopInheritingFds(): void {
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    const fd = Number(e.name);
    if (!(fd > 2)) continue;
    const flags = libc().fcntl(fd, F_GETFD, 0n);
    if (flags >= 0 && (flags & FD_CLOEXEC) === 0) libc().fcntl(fd, F_SETFD, BigInt(flags | FD_CLOEXEC));
  }
}

async function main(): Promise<number> {
  stopInheritingFds();
  const onSignal = (signal: Deno.Signal) => () => {
    if (run.interrupted) return; // a second signal while tearing down: the teardown still finishes
    run.interrupted = signal;
    console.log(`\n=== ${signal}: stopping the running test, then tearing down ===`);
    if (run.child) stopChild(run.child, signal);
  };
  const handlers: [Deno.Signal, () => void][] = [["SIGINT", onSignal("SIGINT")], ["SIGTERM", onSignal("SIGTERM")]];
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);

  const tempDir = privateTempDir();
  await Deno.mkdir(tempDir, { recursive: true });
  const before: Snapshot = await snapshot();
  const keepLab = Deno.env.get("SHIM_KEEP_LAB") === "1";
  const scope = {
    marks: ownershipMarks(tempDir),
    tempDir,
    ignorePids: await ancestors(Deno.pid),
    keepLab,
  };
  const stale = await findLeftovers(before, scope);
  const staleTemp = stale.filter((l) => l.kind === "temp");
  if (staleTemp.length > 0) {
    // A previous run that was SIGKILLed; not this run's fault, but it would be counted against it.
    console.log(`(removing ${staleTemp.length} entries an earlier run left in ${tempDir})`);
    await removeLeftovers(staleTemp);
  }

  const t0 = performance.now();
  const sockets = new SocketWatch(before, scope);
  sockets.start();
  const steps: [string, boolean][] = [];
  const series = seriesList(Deno.env.get("SHIM_TEST_CONTAINERD"));
  const { files, passThrough } = await selectFiles(Deno.args);

  if (Deno.env.get("SHIM_TEST_STATIC") !== "0") {
    const checkTargets: string[] = [];
    for (const t of ["main.ts", "src/", "tests/", "tools/", "bench/"]) if (await exists(t)) checkTargets.push(t);
    const plan: [string, string[]][] = [
      ["deno fmt --check", ["fmt", "--check"]],
      ["deno lint", ["lint"]],
      [`deno check ${checkTargets.join(" ")}`, ["check", ...checkTargets]],
      ["deno task build", ["task", "build"]],
    ];
    for (const [title, args] of plan) {
      if (run.interrupted) break;
      steps.push([title, await step(title, args)]);
    }
  }

  const env = { TMPDIR: tempDir, SHIM_TEST_TMPDIR: tempDir };
  const results: JobResult[] = [];
  for (const job of jobsFor(files, series)) {
    if (run.interrupted) break;
    const r = await runJob(job, passThrough, env);
    results.push(r);
    console.log(
      `--- ${r.label}: ${r.passed} passed, ${r.failed} failed (${r.seconds.toFixed(1)}s)${r.note ? `, ${r.note}` : ""}`,
    );
  }

  if (keepLab) {
    header("lab teardown");
    console.log("--- skipped: SHIM_KEEP_LAB=1");
  } else {
    for (const s of series) {
      steps.push([
        `lab teardown (containerd ${s})`,
        await step(`lab teardown (containerd ${s})`, ["run", "--allow-all", "tools/lab.ts", "down"], {
          SHIM_LAB_CONTAINERD: s,
        }),
      ]);
    }
  }

  header("leftovers of the tests");
  const spares = await waitForSpares(before, scope, SPARE_EXIT_MS);
  if (spares) console.log(`(${spares} spare servers still waiting after ${SPARE_EXIT_MS / 1000} s)`);
  sockets.stop();
  await sockets.scan();
  const left = await findLeftovers(before, scope, sockets.owned);
  if (left.length === 0) {
    console.log("--- none");
    steps.push(["nothing left behind", true]);
  } else {
    for (const l of left) console.log(`left behind: ${describe(l)}`);
    const problems = await removeLeftovers(left);
    for (const p of problems) console.log(`could not remove: ${p}`);
    console.log(
      `--- FAILED: ${left.length} leftovers${problems.length ? `, ${problems.length} not removable` : " (removed)"}`,
    );
    steps.push([`nothing left behind (${left.length} leftovers)`, false]);
  }

  printResults(results, steps);
  const testMin = results.reduce((s, r) => s + r.seconds, 0) / 60;
  console.log(`${results.length} test runs in ${testMin.toFixed(1)} min; the whole run took ${minutesSince(t0)} min`);
  const total = {
    passed: results.reduce((s, r) => s + r.passed, 0),
    failed: results.reduce((s, r) => s + r.failed, 0) + steps.filter(([, ok]) => !ok).length,
  };
  if (run.interrupted) console.log(`(interrupted by ${run.interrupted}: files after the running one did not run)`);
  console.log();
  console.log(summaryLine(total));
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  if (run.interrupted) return run.interrupted === "SIGINT" ? 130 : 143;
  return total.failed > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
