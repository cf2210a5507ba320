import assert from "node:assert/strict";
import { README_BEGIN, README_END, readmeSummary, renderReport, terminalTable, withReadmeSummary } from "./report.ts";
import { logTicks, renderChart } from "./svg.ts";
import { evaluateTargets } from "./targets.ts";
import { sampleResults, sampleSoak } from "./test_fixture.ts";

Deno.test("targets: each is met or missed by its own rule; a path ours cannot serve is missed", () => {
  const rows = Object.fromEntries(evaluateTargets(sampleResults(), sampleSoak()).map((t) => [t.key, t]));
  // per pod: 126 / 62 = 2.03×, floor (62 + 3·(30 − 5)) / 62 = 2.21, so met, 0.18 under it
  assert.equal(rows.lifecycle.status, "met");
  assert.equal(rows.lifecycle.shown, "2.03×");
  assert.equal(rows.lifecycle.toFloor, "−0.18");
  assert.equal(rows.lifecycle.floor?.toFixed(2), "2.21");
  // node grouping: 116 / 62 = 1.87×, floor (62 + 2·25) / 62 = 1.81 + 0.05 = 1.86: missed by 0.01
  assert.equal(rows["lifecycle-node"].status, "missed");
  assert.equal(rows["lifecycle-node"].toFloor, "+0.06");
  assert.equal(rows["lifecycle-node"].goal, "≤ 1.86 (floor + 0.05)");
  assert.equal(rows.start.status, "met"); // 11 ms ≤ 1.10 × 30 ms
  assert.equal(rows.start.shown, "2.75×");
  assert.equal(rows.start.toFloor, "0.37× D");
  assert.equal(rows.start.goal, "≤ 1.10× D (8.25×)");
  assert.equal(rows["start-new"].status, "missed"); // 90 ms > 2.2 × 30 ms
  assert.equal(rows["start-new"].toFloor, "3.00× D");
  assert.equal(rows.delete.status, "missed"); // 34 ms > 33 ms
  assert.equal(rows.delete.toFloor, "1.13× D");
  assert.equal(rows["rpc-Create"].status, "met"); // 10.5 / 10
  assert.equal(rows["rpc-Start"].status, "missed"); // 8 / 5
  assert.equal(rows["rpc-Kill"].status, "not measured");
  // private dirty per container: pod 16 MiB, Go 2 MiB, listener 10 MiB: 8× Go against 1.2 × 10 / 2 = 6×
  assert.equal(rows["private-dirty-pod"].status, "missed");
  assert.equal(rows["private-dirty-pod"].shown, "8.00×");
  assert.equal(rows["private-dirty-pod"].toFloor, "1.60× listener");
  // targets without a floor say nothing about one
  assert.equal(rows.exec.floor, undefined);
  assert.equal(rows.exec.status, "missed"); // 1.2 > 1.1
  assert.equal(rows["throughput-fifo"].status, "met"); // 1100 / 1000
  assert.equal(rows["throughput-file-devnull"].status, "missed");
  assert.equal(rows["throughput-file-devnull"].shown, "fails");
  assert.equal(rows["throughput-file-tmpfs"].status, "not measured");
  assert.equal(rows.idle.status, "missed"); // 50 / 10
  assert.equal(rows["pss-node-50"].status, "met"); // 20 MiB / 50 = 0.4
  assert.equal(rows["pss-node-50"].shown, "0.40 MiB");
  assert.equal(rows["pss-node-50"].goal, "≤ 0.60 MiB");
  assert.equal(rows["node-slope"].status, "missed"); // (26 − 20) MiB / 50 = 123 KiB > 100
  assert.equal(rows["node-slope"].shown, "123 KiB");
  assert.equal(rows.soak.status, "met"); // 1 MiB < 2
});

Deno.test("targets: a soak shorter than 100,000 execs does not count; no soak is not measured", () => {
  const short = Object.fromEntries(evaluateTargets(sampleResults(), sampleSoak(5000)).map((t) => [t.key, t]));
  assert.equal(short.soak.status, "not measured");
  assert.equal(short.soak.shown, "1.00 MiB");
  const none = Object.fromEntries(evaluateTargets(sampleResults()).map((t) => [t.key, t]));
  assert.equal(none.soak.status, "not measured");
  assert.equal(none.soak.value, null);
});

Deno.test("report: both shims side by side, ratios, statuses, the chart and the failures", () => {
  const md = renderReport(sampleResults(), sampleSoak(), "benchmarks.svg");
  assert.match(md, /!\[[^\]]*\]\(benchmarks\.svg\)/);
  assert.match(md, /## Targets: 6 met, 9 missed, 6 not measured/);
  assert.match(
    md,
    new RegExp(
      String.raw`\| lifecycle: \`ctr run --rm … true\` \| 62\.0 / 63\.6 \(60\.0–64\.0\) \| ` +
        String.raw`126\.0 / 129\.2 \(120\.0–130\.0\) \| 2\.03× \| \+64\.0`,
    ),
  );
  assert.match(
    md,
    /\| lifecycle, per pod: ctr run --rm … true \| 2\.03× \| 2\.21× \| −0\.18 \| ≤ 2\.26 \(floor \+ 0\.05\) \| ✅ met \|/,
  );
  assert.match(
    md,
    /\| start, server already runs \| 2\.75× \| 7\.50× \| 0\.37× D \| ≤ 1\.10× D \(8\.25×\) \| ✅ met \|/,
  );
  assert.match(md, /\| exec latency \(ctr task exec\) \| 1\.20× \| {2}\| {2}\| ≤ 1\.10 \| ❌ missed \|/);
  assert.match(md, /\| D: empty `deno run` with the shim's flags \| 30\.0 \/ 31\.6 \(28\.0–32\.0\) \|/);
  assert.match(md, /\| MiB \| 40\.0 \| 30\.0 \| 20\.0 \| 10\.0 \|/);
  assert.match(
    md,
    /\| Create \| 10\.00 \/ 10\.00 \(10\.00–10\.00\) \| 10\.50 \/ 10\.90 \(10\.00–11\.00\) \| 1\.05× \|/,
  );
  assert.match(md, /\| `delete` after the task: exec → exit \| 10\.0 .* \| 3\.40× \|/);
  assert.match(md, /\| lifecycle, node grouping \(one container kept running\) \| /);
  assert.match(md, /— \(no successful run\)/);
  assert.match(md, /ours, container → shim → `file:\/\/\/dev\/null`: ctr: failed to create shim task/);
  assert.match(md, /\| 50 \| 3\.00 \/ 2\.40 MiB \| 20\.00 \/ 17\.00 MiB \| 0\.40 \/ 0\.30 MiB \|/);
  assert.match(md, /\| ours, per pod \| 20 \| 20 \| 5–65 s \| 50\.0 ms \/ 60 s \| 0\.083 % \| 60\.0 \| 5\.00× \|/);
  // the second window is compared with the Go shim's second window; the target keeps the first
  assert.match(md, /\| ours, per pod \| 20 \| 20 \| 65–125 s \| 4\.0 ms \/ 60 s \| 0\.007 % \| 1\.0 \| 0\.50× \|/);
  assert.match(md, /\| idle CPU, 20 containers \| 5\.00× \|/);
  assert.match(md, /- something odd/);
  assert.match(terminalTable(sampleResults()), /== targets/);
});

Deno.test("report: L, the launcher with an empty script, beside the start phase's D, only when timed with it", () => {
  const r = sampleResults();
  r.start!.emptyDeno = [20, 30, 40];
  assert.doesNotMatch(renderReport(r, undefined, "c.svg"), /L, our launcher/);
  r.start!.emptyLauncher = [21, 33, 42];
  assert.match(
    renderReport(r, undefined, "c.svg"),
    /L, our launcher running an empty script .* 33\.0 \/ 40\.2 \(21\.0–42\.0\) ms, 1\.05× D \(median per iteration\)/,
  );
  r.start!.emptyLauncher = [21, 33]; // not one per iteration: not comparable
  assert.doesNotMatch(renderReport(r, undefined, "c.svg"), /L, our launcher/);
});

Deno.test("report: with D′ timed after a server's boot, start with a server running is judged against it", () => {
  const r = sampleResults();
  assert.doesNotMatch(renderReport(r, undefined, "c.svg"), /D′/);
  r.start!.emptyDenoAfterBoot = [9, 9.5, 10]; // ours 11 ms, Go 4 ms: 1.16× D′, the limit 1.10 × 9.5 / 4
  const md = renderReport(r, undefined, "c.svg");
  assert.match(
    md,
    /\| start, server already runs \| 2\.75× \| 2\.38× \| 1\.16× D′ \| ≤ 1\.10× D′ \(2\.61×\) \| ❌ missed \|/,
  );
  assert.match(md, /D′, D timed right after one of our servers answered its first call.*: 9\.5 \//);
  // The other subcommands keep D.
  assert.match(md, /\| delete \(after the task\) \| .* D \| ≤ 1\.10× D \(/);
});

Deno.test("chart: one labelled row per target, escaped text, the memory goal line", () => {
  const svg = renderChart(evaluateTargets(sampleResults(), sampleSoak()), sampleResults().memory!, "a < b");
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assert.match(svg, /a &lt; b/);
  for (
    const name of ["lifecycle, per pod: ctr run --rm … true", "start, server already runs", "idle CPU, 20 containers"]
  ) {
    assert.ok(svg.includes(`>${name}<`), name);
  }
  assert.match(svg, /goal: node mode PSS ≤ 0\.6 MiB at 50/);
  assert.match(svg, /2\.03× {2}goal ≤ 2\.26 \(floor \+ 0\.05\) {2}✔ met/);
  // A goal without its floor has no tick and does not break the axis.
  const noFloor = { ...sampleResults(), floor: undefined };
  const svg2 = renderChart(evaluateTargets(noFloor), noFloor.memory!);
  assert.doesNotMatch(svg2, /NaN/);
  assert.match(svg2, /not measured/);
  // A reading that found no process is left out rather than breaking the log axis.
  const empty = { processes: 0, rssKiB: 0, pssKiB: 0, ussKiB: 0, threads: 0 };
  const broken = renderChart([], [{ mode: "pod", containers: 1, totals: empty, denoSharers: 0 }]);
  assert.match(broken, /not measured in this run/);
  // Every opened text element is closed.
  assert.equal(svg.match(/<text /g)?.length, svg.match(/<\/text>/g)?.length);
});

Deno.test("logTicks: 1-2-5 steps within the range", () => {
  assert.deepEqual(logTicks(0.5, 20), [0.5, 1, 2, 5, 10, 20]);
  assert.deepEqual(logTicks(0.2, 0.9), [0.2, 0.5]);
  assert.deepEqual(logTicks(0, 10), []);
});

Deno.test("the README summary replaces only the text between its markers", () => {
  const readme = `# x\n\nbefore\n\n${README_BEGIN}\nold table\n${README_END}\n\nafter\n`;
  const out = withReadmeSummary(readme, "NEW");
  assert.equal(out, `# x\n\nbefore\n\n${README_BEGIN}\n\nNEW\n\n${README_END}\n\nafter\n`);
  assert.equal(withReadmeSummary(out, "NEW"), out, "idempotent");
  assert.equal(withReadmeSummary("no markers", "NEW"), "no markers");
});

Deno.test("the README summary names the date and machine, links the chart and lists every target", () => {
  const s = readmeSummary(sampleResults(), sampleSoak(), "docs/benchmarks.svg");
  assert.match(s, /^Latest run: \d{4}-\d{2}-\d{2} on /);
  assert.match(s, /!\[[^\]]+\]\(docs\/benchmarks\.svg\)/);
  assert.match(s, /containerd 1\.6\.20/);
  assert.match(
    s,
    /Floor in this run: an empty `deno run` with the shim's flags \(D\) 30\.0 ms, the Go shim's `-v` \(G\) 5\.0 ms; an idle Deno unix-socket listener 10\.0 MiB private dirty/,
  );
  assert.match(s, /\| target \| ours \/ Go \| the floor allows \| ours vs floor \| goal \| status \|/);
  assert.equal((s.match(/^\| /gm) ?? []).length, 1 + evaluateTargets(sampleResults(), sampleSoak()).length);
});

Deno.test("targets: without the floor in the run, the floor-bound targets are not measured, never met", () => {
  const r = { ...sampleResults(), floor: undefined };
  const rows = Object.fromEntries(evaluateTargets(r).map((t) => [t.key, t]));
  for (const key of ["lifecycle", "lifecycle-node", "start", "start-new", "delete", "private-dirty-pod"]) {
    assert.equal(rows[key].status, "not measured", key);
    assert.equal(rows[key].floor, null, key);
  }
  assert.equal(rows.lifecycle.shown, "2.03×"); // ours / Go is still shown
  assert.equal(readmeSummary(r, undefined, "x.svg").includes("Floor in this run"), false);
});

Deno.test("targets: the CRI row is judged on containerd 2.x when the run measured it there, else on its own", () => {
  const base = sampleResults();
  const own = Object.fromEntries(
    evaluateTargets({ ...base, cri: { go: [100], deno: [150] } }).map((t) => [t.key, t]),
  );
  assert.equal(own.cri.status, "missed"); // 1.50×
  assert.equal(own.cri.name, "CRI container create→remove in a running pod");
  const withTwo = { ...base, cri: { go: [100], deno: [150] }, cri2x: { go: [100], deno: [104], containerd: "c 2.1" } };
  const rows = Object.fromEntries(evaluateTargets(withTwo).map((t) => [t.key, t]));
  assert.equal(rows.cri.status, "met"); // 1.04×
  assert.equal(rows.cri.shown, "1.04×");
  assert.equal(rows.cri.name, "CRI container create→remove in a running pod (2.x)");
  const md = renderReport(withTwo, undefined, "benchmarks.svg");
  assert.match(md, /CRI, the same on c 2\.1/);
});
