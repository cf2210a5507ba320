/**
 * The build (`tools/build.ts`) and the test runner's parsing (`tools/test.ts`), tested on a stub entry so they do not
 * depend on the shim being complete.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  buildBundle,
  buildCompile,
  DenortUnavailableError,
  launcherFlags,
  launcherScript,
  SHIM_BINARY,
} from "../../tools/build.ts";
import { parseSummary, splitArgs, summaryLine } from "../../tools/test.ts";
import { shimRunFlags } from "../../src/permissions.ts";
import { RUNTIME_FILE } from "../../src/shim/launcher.ts";
import { runCommand } from "./proc.ts";

const STUB = `
let home = "readable";
try { Deno.env.get("HOME"); } catch (e) { home = (e as Error).name; }
console.log(JSON.stringify({ args: Deno.args, cwd: Deno.cwd(), home, ns: Deno.env.get("NAMESPACE") ?? null }));
`;

async function withStub(fn: (entry: string, dist: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shimbuild-" });
  try {
    await Deno.writeTextFile(join(dir, "main.ts"), STUB);
    await fn(join(dir, "main.ts"), join(dir, "dist"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("build: the bundle launcher runs the entry with the shim's permissions from any cwd, any env", async () => {
  await withStub(async (entry, dist) => {
    const info = await buildBundle({ entry, dist });
    assert.equal(info.flavour, "bundle");
    const written = JSON.parse(await Deno.readTextFile(join(dist, "BUILD-INFO.json")));
    assert.equal(written.flavour, "bundle");
    assert.equal(written.denoVersion, Deno.version.deno);

    const launcher = join(dist, SHIM_BINARY);
    assert.equal((await Deno.stat(launcher)).mode! & 0o777, 0o755);
    const script = await Deno.readTextFile(launcher);
    assert.equal(script, launcherScript(dist, [])); // another entry: no command bundles
    assert.equal(script.trimEnd().split("\n").length, 2);
    assert.equal((await Deno.stat(join(dist, "lib", RUNTIME_FILE))).mode! & 0o777, 0o755);

    // containerd's way: cwd is a bundle directory, a minimal environment, Go-style flags.
    const r = await runCommand("env", ["-i", "NAMESPACE=k8s.io", launcher, "-namespace", "k8s.io", "start"], {
      cwd: "/",
    });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.args, ["-namespace", "k8s.io", "start"]);
    assert.equal(out.cwd, "/");
    assert.equal(out.ns, "k8s.io", "NAMESPACE is allowed");
    assert.equal(out.home, "NotCapable", "env outside the shim's list is denied");
  });
});

Deno.test("build: the launcher runs a command's own bundle when the command line ends with it, main.js otherwise", async () => {
  await withStub(async (entry, dist) => {
    const dir = dirname(entry);
    const stub = (name: string) => `console.log(JSON.stringify({ ran: ${JSON.stringify(name)}, args: Deno.args }));\n`;
    await Deno.writeTextFile(entry, stub("main"));
    for (const c of ["start", "delete"]) await Deno.writeTextFile(join(dir, `${c}_entry.ts`), stub(c));
    await buildBundle({
      entry,
      dist,
      commands: { start: join(dir, "start_entry.ts"), delete: join(dir, "delete_entry.ts") },
    });
    assert.equal(await Deno.readTextFile(join(dist, SHIM_BINARY)), launcherScript(dist, ["start", "delete"]));
    for (const c of ["start", "delete"]) assert.ok((await Deno.stat(join(dist, "lib/js", c, `${c}.js`))).isFile);
    for (
      const [args, ran] of [
        [["-id", "x", "start"], "start"],
        [["-id", "x", "delete"], "delete"],
        [["delete", "x"], "main"],
        [["-v"], "main"],
        [["restart"], "main"],
        [[], "main"],
        [["-id", "a b'c", "start"], "start"],
      ] as [string[], string][]
    ) {
      const r = await runCommand(join(dist, SHIM_BINARY), args, { cwd: "/" });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { ran, args }, `launcher ${JSON.stringify(args)}`);
    }
  });
});

Deno.test("build: start's entry is one file; what it imports dynamically keeps its chunks, with copies of its own", async () => {
  await withStub(async (entry, dist) => {
    const dir = dirname(entry);
    await Deno.writeTextFile(
      join(dir, "shared.ts"),
      "let n = 0;\nexport function bump(): number {\n  return ++n;\n}\n",
    );
    await Deno.writeTextFile(
      join(dir, "boot.ts"),
      'import { bump } from "./shared.ts";\nexport const boot = () => bump();\n',
    );
    await Deno.writeTextFile(
      join(dir, "start_entry.ts"),
      'import { bump } from "./shared.ts";\nbump();\nconst { boot } = await import("./boot.ts");\n' +
        "console.log(JSON.stringify({ entry: bump(), boot: boot() }));\n",
    );
    await buildBundle({ entry, dist, commands: { start: join(dir, "start_entry.ts") } });
    const startJs = await Deno.readTextFile(join(dist, "lib/js/start/start.js"));
    assert.doesNotMatch(startJs, /\bfrom\s*"\.\/|\bimport\s*"\.\//, "no static imports left in start.js");
    assert.match(startJs, /import\(new URL\("\.\/boot-[\w-]+\.js"/, "the boot module is still loaded on demand");
    const r = await runCommand(join(dist, SHIM_BINARY), ["-id", "x", "start"], { cwd: "/" });
    assert.equal(r.code, 0, r.stderr);
    // The entry counted twice on its copy of shared.ts, the boot module once on the chunk's.
    assert.deepEqual(JSON.parse(r.stdout), { entry: 2, boot: 1 });
  });
});

Deno.test("build: the bundle names its build in its files; the same code is the same build, other code another", async () => {
  await withStub(async (entry, dist) => {
    const dir = dirname(entry);
    const buildIdModule = new URL("../../src/shim/build_id.ts", import.meta.url).href;
    await Deno.writeTextFile(
      join(dir, "start_entry.ts"),
      `import { buildId, stampedBuildId } from "${buildIdModule}";\n` +
        "console.log(JSON.stringify({ stamped: stampedBuildId() ?? null, id: await buildId() }));\n",
    );
    const build = async (out: string) => {
      const info = await buildBundle({ entry, dist: out, commands: { start: join(dir, "start_entry.ts") } });
      const r = await runCommand(join(out, SHIM_BINARY), ["-id", "x", "start"], { cwd: "/" });
      assert.equal(r.code, 0, r.stderr);
      return { info, printed: JSON.parse(r.stdout) as { stamped: string | null; id: string } };
    };
    const first = await build(dist);
    assert.match(first.info.buildId ?? "", /^[0-9a-f]{12}$/);
    assert.deepEqual(first.printed, { stamped: first.info.buildId, id: first.info.buildId }, "start knows its build");
    const startJs = await Deno.readTextFile(join(dist, "lib/js/start/start.js"));
    assert.ok(!startJs.includes("@@containerd-shim-deno-build-id@@"), "no placeholder is left");
    assert.equal((await build(join(dir, "again"))).info.buildId, first.info.buildId, "the same code, the same build");
    await Deno.writeTextFile(entry, STUB + 'console.log("another version");\n');
    assert.notEqual((await build(join(dir, "other"))).info.buildId, first.info.buildId, "other code, another build");
  });
});

Deno.test("build: the launcher runs with the shim's own run flags (the ones start re-spawns the server with)", () => {
  const flags = launcherFlags();
  assert.deepEqual(flags, shimRunFlags("command"));
  assert.ok(flags.includes("--no-prompt") && flags.includes("--no-config"));
  assert.ok(!flags.some((f) => f === "--allow-all" || f === "-A"));
});

Deno.test("build: compile without a denort binary fails clearly and leaves dist/ alone", async () => {
  await withStub(async (entry, dist) => {
    await buildBundle({ entry, dist });
    const before = await Deno.readTextFile(join(dist, "BUILD-INFO.json"));
    const saved = Deno.env.get("DENORT_BIN");
    Deno.env.set("DENORT_BIN", join(dist, "no-such-denort"));
    try {
      await assert.rejects(buildCompile({ entry, dist }), (e) => {
        assert.ok(e instanceof DenortUnavailableError);
        assert.match(e.message, /deno task build/);
        return true;
      });
    } finally {
      if (saved === undefined) Deno.env.delete("DENORT_BIN");
      else Deno.env.set("DENORT_BIN", saved);
    }
    assert.equal(await Deno.readTextFile(join(dist, "BUILD-INFO.json")), before);
    const r = await runCommand(join(dist, SHIM_BINARY), ["x"]);
    assert.equal(r.code, 0, "the bundle launcher still works");
  });
});

Deno.test("test runner: parses deno test's summary line", () => {
  assert.deepEqual(parseSummary("...\nok | 57 passed (3 steps) | 0 failed (10s)\n"), { passed: 57, failed: 0 });
  assert.deepEqual(
    parseSummary("\x1b[0m\x1b[31mFAILED\x1b[0m | 5 passed | 2 failed \x1b[0m\x1b[38;5;245m(3s)\x1b[0m\n"),
    { passed: 5, failed: 2 },
  );
  assert.deepEqual(parseSummary("ok | 1 passed (1 step) | 0 failed | 2 ignored (1ms)"), { passed: 1, failed: 0 });
  assert.equal(parseSummary("error: Module not found\n"), null);
  assert.equal(summaryLine({ passed: 0, failed: 1 }), "0 passed, 1 failed");
});

Deno.test("test runner: paths and globs select tests, other arguments pass through", async () => {
  const { paths, passThrough } = await splitArgs(["tests/", "--filter", "lab:", "tests/ttrpc_*", "--fail-fast"]);
  assert.deepEqual(paths, ["tests/", "tests/ttrpc_*"]);
  assert.deepEqual(passThrough, ["--filter", "lab:", "--fail-fast"]);
});
