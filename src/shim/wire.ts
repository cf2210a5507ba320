/**
 * Just enough protobuf wire format for the short-lived subcommands (`start`, `delete`): they must answer in a few
 * milliseconds, so they do not load protobufjs and the generated codecs that only the server needs. The server uses
 * the generated codecs; tests check that both agree byte for byte.
 *
 * @module
 */

/** One decoded field: varints as bigint-safe numbers, length-delimited fields as bytes. */
export interface WireField {
  field: number;
  wireType: number;
  varint?: number;
  bytes?: Uint8Array;
}

/** Iterates the top-level fields of a message; throws on malformed input. */
export function* readFields(buf: Uint8Array): Generator<WireField> {
  let i = 0;
  const varint = (): number => {
    let result = 0, mul = 1;
    for (let n = 0; n < 10; n++) {
      if (i >= buf.length) throw new Error("truncated varint");
      const b = buf[i++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new Error("varint too long");
  };
  while (i < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8), wireType = key & 7;
    if (field === 0) throw new Error("field number 0");
    if (wireType === 0) yield { field, wireType, varint: varint() };
    else if (wireType === 2) {
      const len = varint();
      if (i + len > buf.length) throw new Error("truncated bytes field");
      yield { field, wireType, bytes: buf.subarray(i, i + len) };
      i += len;
    } else if (wireType === 1) i += 8;
    else if (wireType === 5) i += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
    if (i > buf.length) throw new Error("truncated fixed field");
  }
}

const utf8 = new TextDecoder();

/** The string and bytes fields of a message by number (last one wins, as in proto3). */
export function stringFields(buf: Uint8Array): Map<number, string> {
  const out = new Map<number, string>();
  for (const f of readFields(buf)) if (f.bytes) out.set(f.field, utf8.decode(f.bytes));
  return out;
}

/** A small writer for the few messages the subcommands produce. */
export class WireWriter {
  #parts: number[] = [];

  #varint(v: number): void {
    if (v < 0) v += 2 ** 64; // int64 negatives are ten-byte varints; callers here never produce them
    while (v >= 128) {
      this.#parts.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.#parts.push(v);
  }

  /** A varint field; zero is omitted as proto3 does. */
  uint(field: number, v: number): this {
    if (v === 0) return this;
    this.#varint(field * 8);
    this.#varint(v);
    return this;
  }

  /** A length-delimited field (string, bytes or embedded message); empty is omitted unless `always`. */
  bytes(field: number, v: Uint8Array | string, always = false): this {
    const b = typeof v === "string" ? new TextEncoder().encode(v) : v;
    if (b.length === 0 && !always) return this;
    this.#varint(field * 8 + 2);
    this.#varint(b.length);
    for (const x of b) this.#parts.push(x);
    return this;
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }
}

/** Encodes a google.protobuf.Timestamp of a Date or of milliseconds since the epoch. */
export function timestampBytes(at: Date | number): Uint8Array {
  const ms = typeof at === "number" ? at : at.getTime();
  const seconds = Math.floor(ms / 1000);
  return new WireWriter().uint(1, seconds).uint(2, (ms - seconds * 1000) * 1_000_000).finish();
}
