import assert from "node:assert/strict";
import { describeFigures, memoryFigures, type MemoryResults } from "./phase_memory.ts";
import type { MemoryMode } from "./results.ts";

const totals = (pssKiB: number, ussKiB: number, processes = 1) => ({
  processes,
  rssKiB: 0,
  pssKiB,
  ussKiB,
  threads: 0,
});
const point = (mode: MemoryMode, containers: number, pssKiB: number, ussKiB: number) => ({
  mode,
  containers,
  totals: totals(pssKiB, ussKiB),
  denoSharers: 1,
});

Deno.test("memoryFigures: per-pod private dirty vs the listener, node slope 50 → 100, PSS @50, idle per window", () => {
  const r: MemoryResults = {
    memory: [point("node", 1, 20_000, 15_000), point("node", 50, 30_000, 25_000), point("node", 100, 34_000, 29_000)],
    privateDirty: [
      { mode: "pod", containers: 1, processes: 1, kiB: 11_000 },
      { mode: "pod", containers: 20, processes: 20, kiB: 20 * 10_000 },
    ],
    listener: { pssKiB: 11_000, ussKiB: 8_900, privateDirtyKiB: 8_000 },
    idle: [
      { mode: "go", containers: 20, processes: 20, seconds: 60, cpuMs: 100, switchesPerS: 1, startedAfterS: 5 },
      { mode: "pod", containers: 20, processes: 20, seconds: 60, cpuMs: 150, switchesPerS: 1, startedAfterS: 5 },
      { mode: "go", containers: 20, processes: 20, seconds: 60, cpuMs: 100, switchesPerS: 1, startedAfterS: 65 },
      { mode: "pod", containers: 20, processes: 20, seconds: 60, cpuMs: 50, switchesPerS: 1, startedAfterS: 65 },
    ],
  };
  const f = memoryFigures(r);
  assert.equal(f.podPrivateDirtyKiB, 10_000, "the largest step's mean per server");
  assert.equal(f.podVsListener, 1.25);
  assert.deepEqual([f.slopeFrom, f.slopeTo, f.nodeSlopePssKiB, f.nodeSlopeUssKiB], [50, 100, 80, 80]);
  assert.equal(f.nodePssPerContainerAt50MiB, 30_000 / 50 / 1024);
  assert.deepEqual(f.idleRatios, [{ startedAfterS: 5, ratio: 1.5 }, { startedAfterS: 65, ratio: 0.5 }]);
  assert.match(describeFigures(f).join("\n"), /1\.25× \(goal ≤ 1\.20\)/);
});

Deno.test("memoryFigures: missing readings are null, not zero", () => {
  const f = memoryFigures({ memory: [], idle: [], privateDirty: [] });
  assert.equal(f.podVsListener, null);
  assert.equal(f.nodeSlopePssKiB, null);
  assert.equal(f.nodePssPerContainerAt50MiB, null);
  assert.deepEqual(f.idleRatios, []);
  assert.match(describeFigures(f)[0], /—/);
});
