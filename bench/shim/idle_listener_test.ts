import assert from "node:assert/strict";
import { rollupOf, threadCpu, threadCpuDelta } from "./idle_listener.ts";

Deno.test("threadCpuDelta: an exited thread is left out, not subtracted; a new one counts from zero", () => {
  const before = new Map([["1", { cpuNs: 1_000, switches: 10 }], ["2", { cpuNs: 50_000, switches: 5 }]]);
  const after = new Map([["1", { cpuNs: 3_000, switches: 12 }], ["3", { cpuNs: 700, switches: 1 }]]);
  assert.deepEqual(threadCpuDelta(before, after), { cpuNs: 2_700, switches: 3 });
});

Deno.test("threadCpu and rollupOf read this process; a missing pid is null", async () => {
  const t = await threadCpu(Deno.pid);
  assert.ok(t && t.size >= 1 && t.get(String(Deno.pid))!.cpuNs > 0);
  const r = await rollupOf(Deno.pid);
  assert.ok(r && r.privateDirtyKiB > 0 && r.ussKiB >= r.privateDirtyKiB);
  assert.equal(await threadCpu(2 ** 22 + 1), null);
  assert.equal(await rollupOf(2 ** 22 + 1), null);
});
