import assert from "node:assert/strict";
import { nudgeRestarts, nudgeTicks, watchCompletion, watchedCalls } from "./nudge.ts";

/** Waits (in 1 ms steps, at most 5,000 of them) for `n` wake-ups of the backstop; returns how many were seen. */
async function ticksPass(n: number): Promise<number> {
  const start = nudgeTicks();
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 5_000 && nudgeTicks() - start < n; i++) {
    const w = Atomics.waitAsync(cell, 0, 0, 1);
    if (w.async) await w.value;
  }
  return nudgeTicks() - start;
}

Deno.test("nudge: the event loop is woken while a watched call is pending, and no longer once it settled", async () => {
  // Stands in for what a real pending FFI call does: keep the process alive (waitAsync timeouts do not).
  const keepAlive = setInterval(() => {}, 60_000);
  const { promise, resolve } = Promise.withResolvers<number>();
  const call = watchCompletion(promise);
  assert.equal(watchedCalls(), 1);
  assert.ok(await ticksPass(3) >= 3);
  resolve(7);
  assert.equal(await call, 7);
  assert.equal(watchedCalls(), 0);
  // After the last settled call the chain ends at its next wake-up and counts no more.
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 3; i++) {
    const w = Atomics.waitAsync(cell, 0, 0, 300);
    if (w.async) await w.value;
  }
  const after = nudgeTicks();
  const w = Atomics.waitAsync(cell, 0, 0, 300);
  if (w.async) await w.value;
  assert.equal(nudgeTicks(), after);
  clearInterval(keepAlive);
});

Deno.test("nudge: a rejected call is released too and its rejection reaches the caller", async () => {
  const call = watchCompletion(Promise.reject(new Error("boom")));
  await assert.rejects(call, /boom/);
  assert.equal(watchedCalls(), 0);
});

Deno.test("nudge: a call watched after a quiet spell cuts the long interval short", async () => {
  const keepAlive = setInterval(() => {}, 60_000);
  const first = Promise.withResolvers<void>();
  watchCompletion(first.promise);
  // Let the interval grow past the shortest one (doubling from NUDGE_MIN_MS).
  assert.ok(await ticksPass(3) >= 3);
  const restarts = nudgeRestarts();
  const second = Promise.withResolvers<void>();
  watchCompletion(second.promise);
  // The long wait armed meanwhile is cut short; the chain goes on from the shortest interval.
  assert.equal(nudgeRestarts(), restarts + 1);
  assert.ok(await ticksPass(1) >= 1);
  first.resolve();
  second.resolve();
  await Promise.all([first.promise, second.promise]);
  clearInterval(keepAlive);
});
