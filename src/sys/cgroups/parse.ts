/**
 * Parsing of cgroup file contents into the unsigned 64-bit values the metrics messages carry, with containerd's
 * cgroups library semantics: negative values read as 0, `max` reads as 0 or as 2^64-1 depending on the file.
 *
 * The generated codecs take 64-bit fields as JS numbers. A number is exact up to 2^53, and above that it still
 * encodes exactly whenever the kernel's value is a double (the v1 "no limit" 9223372036854771712 is). The one value
 * that matters and is not, 2^64-1 (v2 "max"), would round to 2^64 and encode as 0, so values a double cannot hold
 * exactly are returned as protobufjs long-bits objects (`{low, high}`), which the writer encodes bit for bit. They
 * are typed as `number` because that is what the message types accept: never do arithmetic on a {@linkcode U64}.
 *
 * @example
 * ```ts
 * import { forEachKV, u64 } from "./parse.ts";
 * u64("4096"); // 4096
 * forEachKV("cache 4096\nrss 0\n", (k, v) => console.log(k, u64(v)));
 * ```
 * @module
 */

/** An unsigned 64-bit value for the codecs: a number, or an exact long-bits object above 2^53 (see the module doc). */
export type U64 = number;

/** 2^64-1, exactly (what containerd reports for a v2 `max`). */
export const U64_MAX: U64 = longBits(0xffffffff, 0xffffffff);

function longBits(low: number, high: number): U64 {
  // protobufjs' writer accepts any object with low/high halves for 64-bit fields (util.LongBits.from).
  return { low, high, unsigned: true } as unknown as U64;
}

const TWO_64 = 1n << 64n;

/**
 * Parses a decimal unsigned value as containerd's `parseUint` does: negative values give 0; anything else that is
 * not a base-10 integer in range throws.
 */
export function u64(s: string): U64 {
  // Up to 15 digits every value is a safe integer: the common case takes no BigInt.
  if (s.length <= 15 && /^\d+$/.test(s)) return Number(s);
  if (/^-\d+$/.test(s)) return 0;
  if (!/^\d+$/.test(s)) throw new SyntaxError(`not an unsigned integer: ${JSON.stringify(s)}`);
  const big = BigInt(s);
  if (big >= TWO_64) throw new RangeError(`value out of range for uint64: ${s}`);
  const n = Number(big);
  if (BigInt(n) === big) return n;
  return longBits(Number(big & 0xffffffffn), Number(big >> 32n));
}

/** {@linkcode u64} of a single-value file's content; `max` maps to `max` (0 in v1, {@linkcode U64_MAX} in v2). */
export function u64OrMax(text: string, max: U64): U64 {
  const s = text.trim();
  return s === "max" ? max : u64(s);
}

/**
 * Calls `fn(key, value)` for each `key value` line of a flat-keyed file (memory.stat, cpu.stat, memory.events...).
 * Lines that do not have exactly two fields are skipped.
 */
export function forEachKV(text: string, fn: (key: string, value: string) => void): void {
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    // Exactly one space inside the line, with text on both sides: "key value" (the kernel's format).
    const sp = text.indexOf(" ", start);
    if (sp > start && sp < end - 1) {
      const next = text.indexOf(" ", sp + 1);
      if (next === -1 || next >= end) fn(text.slice(start, sp), text.slice(sp + 1, end));
    }
    start = end + 1;
  }
}

/** The value of one key of a flat-keyed file, or `undefined`. */
export function kvValue(text: string, key: string): string | undefined {
  let found: string | undefined;
  forEachKV(text, (k, v) => {
    if (found === undefined && k === key) found = v;
  });
  return found;
}

/**
 * Hugepage size name as the kernel spells it in hugetlb file names ("2MB", "1GB", "64KB") from a size in KiB, which
 * is how `/sys/kernel/mm/hugepages/hugepages-<N>kB` spells it. containerd formats the v1 names the same way.
 */
export function hugePageSizeName(kib: number): string {
  if (kib % (1024 * 1024) === 0) return `${kib / (1024 * 1024)}GB`;
  if (kib % 1024 === 0) return `${kib / 1024}MB`;
  return `${kib}KB`;
}
