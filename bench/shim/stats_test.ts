import assert from "node:assert/strict";
import { abOrder, paired, quantile, ratio, summarize } from "./stats.ts";

Deno.test("summarize: median of an odd and an even count, p90 interpolated, spread", () => {
  const odd = summarize([5, 1, 3]);
  assert.equal(odd.median, 3);
  assert.equal(odd.min, 1);
  assert.equal(odd.max, 5);
  assert.equal(odd.n, 3);
  const even = summarize([61, 59, 64, 70]);
  assert.equal(even.median, 62.5);
  assert.ok(Math.abs(even.p90 - 68.2) < 1e-9, `p90 ${even.p90}`);
  assert.equal(even.mean, 63.5);
  assert.ok(Math.abs(even.stdev - Math.sqrt(23)) < 1e-9, `stdev ${even.stdev}`);
});

Deno.test("summarize: one sample has no spread; no samples is an error", () => {
  const one = summarize([42]);
  assert.deepEqual([one.median, one.p90, one.stdev], [42, 42, 0]);
  assert.throws(() => summarize([]), RangeError);
});

Deno.test("quantile: ends and bounds", () => {
  assert.equal(quantile([1, 2, 3, 4, 5], 0), 1);
  assert.equal(quantile([1, 2, 3, 4, 5], 1), 5);
  assert.equal(quantile([1, 2, 3, 4, 5], 0.9), 4.6);
  assert.throws(() => quantile([1], 1.5), RangeError);
});

Deno.test("paired: differences b − a, lengths must match", () => {
  const d = paired([60, 61, 70], [66, 64, 69]);
  assert.equal(d.median, 3);
  assert.equal(d.min, -1);
  assert.throws(() => paired([1], [1, 2]), RangeError);
});

Deno.test("ratio and A/B order", () => {
  assert.equal(ratio(3, 2), 1.5);
  assert.equal(ratio(1, 0), null);
  assert.deepEqual(abOrder(0, "a", "b"), ["a", "b"]);
  assert.deepEqual(abOrder(1, "a", "b"), ["b", "a"]);
});
