/**
 * Protobuf varints written straight into a byte array, for the encoders that build a message or frame by hand into
 * one buffer of known size (the ttrpc envelope, State's answer). int64 negatives take ten bytes, as in Go.
 *
 * @example
 * ```ts
 * import { varintSize, writeVarint } from "./varint.ts";
 * const buf = new Uint8Array(varintSize(300));
 * writeVarint(buf, 0, 300); // [0xac, 0x02]
 * ```
 * @module
 */

/** Size of a non-negative varint (exact for integers up to 2^53). */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes non-negative `v` at `p`; returns the position after it. */
export function writeVarint(buf: Uint8Array, p: number, v: number): number {
  while (v >= 128) {
    buf[p++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  buf[p++] = v;
  return p;
}

/** Size of an int64/int32 varint: negatives take ten bytes (two's complement, sign-extended). */
export function int64Size(v: number): number {
  return v < 0 ? 10 : varintSize(v);
}

/** Writes int64 `v` at `p` (negatives as ten bytes); returns the position after it. */
export function writeInt64(buf: Uint8Array, p: number, v: number): number {
  if (v >= 0) return writeVarint(buf, p, v);
  let u = BigInt.asUintN(64, BigInt(Math.trunc(v)));
  for (let i = 0; i < 9; i++) {
    buf[p++] = Number(u & 0x7fn) | 128;
    u >>= 7n;
  }
  buf[p++] = Number(u);
  return p;
}
