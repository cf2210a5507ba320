import assert from "node:assert/strict";
import { cgroupsV2, encodeMessage } from "../../proto/mod.ts";
import { forEachKV, hugePageSizeName, kvValue, u64, U64_MAX, u64OrMax } from "./parse.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("u64 parses decimal values; negatives read as 0 and garbage throws, as in containerd", () => {
  assert.equal(u64("0"), 0);
  assert.equal(u64("67108864"), 67108864);
  assert.equal(u64("9007199254740991"), 2 ** 53 - 1);
  assert.equal(u64("-1"), 0);
  assert.equal(u64("-9223372036854775808"), 0);
  assert.throws(() => u64("max"), SyntaxError);
  assert.throws(() => u64("12 "), SyntaxError);
  assert.throws(() => u64("18446744073709551616"), RangeError);
});

Deno.test("64-bit values reach the wire exactly, including 2^64-1 and v1's no-limit value", () => {
  // 2^64-1 as a varint: nine 0xff bytes and 0x01. As a plain number it would round to 2^64 and encode as 0.
  const max = encodeMessage(cgroupsV2.PidsStat, { limit: u64("18446744073709551615") });
  assert.equal(hex(max), "10ffffffffffffffffff01");
  assert.equal(hex(encodeMessage(cgroupsV2.PidsStat, { limit: U64_MAX })), hex(max));
  assert.equal(hex(encodeMessage(cgroupsV2.PidsStat, { limit: u64OrMax("max\n", U64_MAX) })), hex(max));
  // 2^63-4096 (PAGE_COUNTER_MAX in bytes) is a double: it stays a number and encodes exactly.
  const v1NoLimit = u64("9223372036854771712");
  assert.equal(typeof v1NoLimit, "number");
  assert.equal(hex(encodeMessage(cgroupsV2.PidsStat, { limit: v1NoLimit })), "1080e0ffffffffffff7f");
  // A value no double holds (2^53+1) still encodes bit for bit.
  assert.equal(
    hex(encodeMessage(cgroupsV2.PidsStat, { limit: u64("9007199254740993") })),
    "10" + "81" + "80".repeat(6) + "10",
  );
  assert.equal(u64OrMax("max", 0), 0);
});

Deno.test("forEachKV visits 'key value' lines only", () => {
  const seen: string[] = [];
  forEachKV("cache 4096\nrss 0\nbroken\ntoo many fields\n\nlast 7", (k, v) => seen.push(`${k}=${v}`));
  assert.deepEqual(seen, ["cache=4096", "rss=0", "last=7"]);
  assert.equal(kvValue("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"), "3");
  assert.equal(kvValue("oom_kill_disable 0\n", "oom_kill"), undefined);
});

Deno.test("hugepage size names match the kernel's hugetlb file names", () => {
  assert.equal(hugePageSizeName(2048), "2MB");
  assert.equal(hugePageSizeName(1048576), "1GB");
  assert.equal(hugePageSizeName(64), "64KB");
  assert.equal(hugePageSizeName(32768), "32MB");
});
