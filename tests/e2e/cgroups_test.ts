/**
 * Stats and OOM through ctr (issue: whole Task API, acceptance 4–5): v1 metrics of a running container, and TaskOOM
 * before TaskExit (status 137) for a container killed by its memory limit, every time.
 */
import assert from "node:assert/strict";
import { EventLog, labWith, rounds, RUNTIME } from "./helpers.ts";

const NS = "e2e-cg";

Deno.test("ctr task metrics returns sane v1 numbers", async () => {
  const lab = await labWith(NS);
  try {
    const run = await lab.ctr(["run", "-d", "--runtime", RUNTIME, lab.image, "metrics", "sleep", "1000"], {
      namespace: NS,
    });
    assert.equal(run.code, 0, run.stderr);
    const m = await lab.ctr(["task", "metrics", "--format", "json", "metrics"], { namespace: NS });
    assert.equal(m.code, 0, m.stderr);
    const data = JSON.parse(m.stdout);
    assert.ok(data.memory.usage.usage > 0, m.stdout);
    assert.ok(data.pids.current >= 1, m.stdout);
    assert.ok(data.cpu.usage.total > 0, m.stdout);
  } finally {
    await lab.cleanupNamespace(NS);
  }
});

const OOM_RUNS = rounds(20, 5);

Deno.test(`OOM: /tasks/oom comes before /tasks/exit with status 137, ${OOM_RUNS} times out of ${OOM_RUNS}`, async () => {
  const lab = await labWith(NS);
  const events = new EventLog(lab);
  try {
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < OOM_RUNS; i++) {
      const id = `oom-${i}`;
      const r = await lab.ctr([
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--memory-limit",
        `${32 * 1024 * 1024}`,
        lab.image,
        id,
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
      ], { namespace: NS });
      assert.equal(r.code, 137, `${id}: ${r.stderr}`);
      assert.ok(await events.waitFor(() => events.topicsFor(id).includes("/tasks/delete")), id);
      const topics = events.topicsFor(id).filter((t) => t === "/tasks/oom" || t === "/tasks/exit");
      assert.deepEqual(topics, ["/tasks/oom", "/tasks/exit"], `${id}: ${events.topicsFor(id).join(", ")}`);
      const exit = events.lines.find((l) => l.includes("/tasks/exit") && l.includes(`"${id}"`))!;
      assert.match(exit, /"exit_status":137/);
    }
  } finally {
    await events.stop();
    await lab.cleanupNamespace(NS);
  }
});
