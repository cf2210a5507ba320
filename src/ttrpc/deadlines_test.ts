import assert from "node:assert/strict";
import { Deadlines, MAX_TIMER_MS } from "./deadlines.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Awaits `p` with a ref'd timer pending: the deadlines' timer is unref'd and keeps no test alive by itself. */
async function alive<T>(p: Promise<T>): Promise<T> {
  const keep = setTimeout(() => {}, 30_000);
  try {
    return await p;
  } finally {
    clearTimeout(keep);
  }
}

/** Resolves with the keys in the order they expired, once `n` have. */
function collect<K>(n: number): { deadlines: Deadlines<K>; expired: K[]; done: Promise<void> } {
  const expired: K[] = [];
  const { promise, resolve } = Promise.withResolvers<void>();
  const deadlines = new Deadlines<K>((k) => {
    expired.push(k);
    if (expired.length === n) resolve();
  });
  return { deadlines, expired, done: promise };
}

Deno.test("deadlines: keys expire in deadline order, an earlier one added after a later re-arms the timer", async () => {
  const { deadlines, expired, done } = collect<string>(2);
  deadlines.add("late", 400);
  deadlines.add("early", 30);
  await alive(done);
  assert.deepEqual(expired, ["early", "late"]);
  assert.equal(deadlines.size, 0);
  assert.equal(deadlines.armed, false, "nothing left to watch: no timer");
});

Deno.test("deadlines: a deleted key never expires, and the others still do", async () => {
  const { deadlines, expired, done } = collect<number>(1);
  deadlines.add(1, 20);
  deadlines.add(3, 60);
  deadlines.delete(1);
  await alive(done);
  await sleep(30); // past key 1's deadline too
  assert.deepEqual(expired, [3]);
});

Deno.test("deadlines: clear() disarms the timer and forgets every key", async () => {
  const { deadlines, expired } = collect<number>(1);
  deadlines.add(1, 10);
  assert.equal(deadlines.armed, true);
  deadlines.clear();
  assert.equal(deadlines.armed, false);
  await sleep(40);
  assert.deepEqual(expired, []);
});

Deno.test("deadlines: a key added by an expiry callback is watched, before or after those left", async () => {
  const expired: string[] = [];
  const { promise, resolve } = Promise.withResolvers<void>();
  const deadlines: Deadlines<string> = new Deadlines((k) => {
    expired.push(k);
    if (k === "first") deadlines.add("added", 10);
    if (expired.length === 3) resolve();
  });
  deadlines.add("first", 10);
  deadlines.add("left", 200);
  await alive(promise);
  assert.deepEqual(expired, ["first", "added", "left"]);
});

Deno.test("deadlines: a deadline beyond the timer's range is not watched", () => {
  const deadlines = new Deadlines<number>(() => assert.fail("must not expire"));
  assert.equal(deadlines.add(1, MAX_TIMER_MS + 1), false);
  assert.equal(deadlines.add(2, Infinity), false);
  assert.equal(deadlines.size, 0);
  assert.equal(deadlines.armed, false);
});
