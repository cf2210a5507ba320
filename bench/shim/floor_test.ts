import assert from "node:assert/strict";
import { dLimitVsGo, floorMedians, lifecycleFloor, subcommandFloor } from "./floor.ts";
import { evaluateTargets } from "./targets.ts";
import { emptyLauncherScript, floorCommand } from "./phase_floor.ts";
import { launcherScript, RUNTIME_FILE } from "../../src/shim/launcher.ts";
import { sampleResults } from "./test_fixture.ts";

Deno.test("floor: medians of D and G; none without both sample sets", () => {
  assert.deepEqual(floorMedians(sampleResults()), { d: 30, g: 5 });
  assert.equal(floorMedians({ ...sampleResults(), floor: undefined }), null);
  const r = sampleResults();
  r.floor!.goVersion = [];
  assert.equal(floorMedians(r), null);
});

Deno.test("floor: the lifecycle formulas of issue 11", () => {
  // 2026-12-01: D 62–72 ms, G 16–25 ms; Go's lifecycle ≈ 300 ms gives ≈ 1.31 and ≈ 1.44 as in the issue
  const f = { d: 67, g: 20.5 };
  assert.equal(lifecycleFloor(300, f, 2).toFixed(2), "1.31");
  assert.equal(lifecycleFloor(300, f, 3).toFixed(2), "1.47");
  assert.equal(lifecycleFloor(100, { d: 10, g: 10 }, 3), 1); // a Deno as fast as Go allows nothing extra
  assert.equal(dLimitVsGo(4, { d: 30, g: 5 }, 1.1).toFixed(2), "8.25");
});

Deno.test("floor: D runs dist's deno with the build's flags, adding what deno run needs", () => {
  const bundle = floorCommand(
    { flavour: "bundle", flags: ["--allow-read", "--v8-flags=--expose-gc", "--no-config", "--no-lock"] },
    "/x/empty.js",
    "/d",
  );
  assert.equal(bundle.cmd, `/d/lib/${RUNTIME_FILE}`);
  assert.deepEqual(bundle.args, [
    "run",
    "--allow-read",
    "--v8-flags=--expose-gc",
    "--no-config",
    "--no-lock",
    "--no-remote",
    "--no-npm",
    "/x/empty.js",
  ]);
  assert.equal(bundle.env.DENO_DIR, "/d/lib/cache");
  const compiled = floorCommand({ flavour: "compile", flags: ["--allow-ffi"] }, "/x/e.js", "/d", "/usr/bin/deno");
  assert.equal(compiled.cmd, "/usr/bin/deno");
  assert.deepEqual(compiled.args.slice(0, 2), ["run", "--allow-ffi"]);
  assert.equal(compiled.env.DENO_DIR, undefined);
});

Deno.test("floor: start and delete are judged against the D timed in their own iterations when there is one", () => {
  const r = sampleResults();
  assert.equal(subcommandFloor(r)?.d, 30); // no D of its own: the floor phase's
  r.start!.emptyDeno = [9, 10, 11];
  assert.equal(subcommandFloor(r)?.d, 10);
  const rows = Object.fromEntries(evaluateTargets(r).map((t) => [t.key, t]));
  assert.equal(rows.start.toFloor, "1.10× D"); // 11 ms against 10
  assert.equal(rows.delete.status, "missed"); // 34 ms > 11 ms
  assert.equal(rows.lifecycle.floor?.toFixed(2), "2.21", "the lifecycle keeps the floor phase's D");
});

Deno.test("floor: L is the launcher itself, with an empty script where a command's bundle was", () => {
  const launcher = launcherScript("/opt/lib");
  const l = emptyLauncherScript(launcher, "/x/empty.js");
  assert.ok(l);
  assert.equal(l.split("\n").length, launcher.split("\n").length);
  assert.match(l, /^#!\/bin\/sh\n/);
  assert.match(l, / exec \/opt\/lib\/\S+ run .* "\/x\/empty\.js" "\$@"\n$/);
  assert.doesNotMatch(l, /"\$shim_entry"/);
  assert.equal(emptyLauncherScript("\x7fELF…", "/x/empty.js"), null, "a compiled shim has no launcher");
});
