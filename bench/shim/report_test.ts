import assert from "node:assert/strict";
import { README_BEGIN, README_END, readmeSummary, renderReport, terminalTable, withReadmeSummary } from "./report.ts";
import { logTicks, renderChart } from "./svg.ts";
import { evaluateTargets } from "./targets.ts";
import { sampleResults, sampleSoak } from "./test_fixture.ts";

Deno.test("targets: each is met or missed by its own rule; a path ours cannot serve is missed", () => {
  const rows = Object.fromEntries(evaluateTargets(sampleResults(), sampleSoak()).map((t) => [t.key, t]));
  assert.equal(rows.lifecycle.status, "missed"); // 126 / 62
  assert.equal(rows.lifecycle.shown, "2.03×");
  assert.equal(rows.start.status, "met"); // 11 / 4 = 2.75 ≤ 3
  assert.equal(rows.exec.status, "missed"); // 1.2 > 1.1
  assert.equal(rows["throughput-fifo"].status, "met"); // 1100 / 1000
  assert.equal(rows["throughput-file-devnull"].status, "missed");
  assert.equal(rows["throughput-file-devnull"].shown, "fails");
  assert.equal(rows["throughput-file-tmpfs"].status, "not measured");
  assert.equal(rows.idle.status, "missed"); // 50 / 10
  assert.equal(rows["pss-node-50"].status, "met"); // 20 MiB / 50 = 0.4
  assert.equal(rows["pss-node-50"].shown, "0.40 MiB");
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
  assert.match(md, /## Targets: 4 met, 4 missed, 2 not measured/);
  assert.match(
    md,
    new RegExp(
      String.raw`\| lifecycle: \`ctr run --rm … true\` \| 62\.0 / 63\.6 \(60\.0–64\.0\) \| ` +
        String.raw`126\.0 / 129\.2 \(120\.0–130\.0\) \| 2\.03× \| \+64\.0`,
    ),
  );
  assert.match(md, /\| lifecycle: ctr run --rm … true \| 2\.03× \| ≤ 1\.05 \| ❌ missed \|/);
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

Deno.test("chart: one labelled row per target, escaped text, the memory goal line", () => {
  const svg = renderChart(evaluateTargets(sampleResults(), sampleSoak()), sampleResults().memory!, "a < b");
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assert.match(svg, /a &lt; b/);
  for (const name of ["lifecycle: ctr run --rm … true", "start, server already runs", "idle CPU, 20 containers"]) {
    assert.ok(svg.includes(`>${name}<`), name);
  }
  assert.match(svg, /goal: node mode PSS ≤ 0\.5 MiB at 50/);
  assert.match(svg, /2\.03× {2}goal ≤ 1\.05 {2}✘ missed/);
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
  assert.equal((s.match(/^\| /gm) ?? []).length, 1 + evaluateTargets(sampleResults(), sampleSoak()).length);
});
