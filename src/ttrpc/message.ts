/**
 * The ttrpc envelope messages (`ttrpc.Request`, `ttrpc.Response`) as whole frames.
 *
 * Decoding uses the generated codecs. Encoding is done here, straight into the frame buffer behind a reserved
 * header, so a call or an answer costs one allocation and one copy of its payload and goes out in one write; the
 * bytes are identical to what the generated encoder (and Go's marshaller) produce, which the tests check.
 *
 * @example
 * ```ts
 * import { decodeRequest, encodeRequestFrame } from "./message.ts";
 * import { HEADER_LENGTH } from "./frame.ts";
 * const frame = encodeRequestFrame(1, { service: "svc", method: "M", payload: new Uint8Array([1]) });
 * const req = decodeRequest(frame.subarray(HEADER_LENGTH));
 * console.log(req.service, req.method);
 * ```
 * @module
 */
import { ttrpc } from "../proto/mod.ts";
import { int64Size, varintSize, writeInt64, writeVarint } from "../proto/varint.ts";
import { FrameType, HEADER_LENGTH, MAX_DATA_LENGTH, writeFrameHeader } from "./frame.ts";
import { resourceExhausted, type Status, type StatusDetail } from "./status.ts";

/** One metadata entry on the wire (keys are lower-case; a key may repeat). */
export interface KeyValue {
  key: string;
  value: string;
}

/** A call as it travels in a Request frame. */
export interface RequestMessage {
  service: string;
  method: string;
  payload: Uint8Array;
  /** Relative deadline in nanoseconds; 0 means none. */
  timeoutNano?: number;
  metadata?: KeyValue[];
}

/** An answer as it travels in a Response frame. A missing status means OK. */
export interface ResponseMessage {
  status?: Status;
  payload: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const utf8 = new TextDecoder();

/**
 * Decodes a Request frame's data. Throws when the bytes are not a valid `ttrpc.Request`: truncated, a known field
 * with the wrong wire type, field number 0, or a wire type that does not exist (as the gogo-generated unmarshaller of
 * ttrpc 1.1, containerd 1.6's, refuses them).
 *
 * Every call goes through here, so it reads the five fields by hand rather than through the generic table-driven
 * decoder (half the time in the server's tiers, bench/analysis.md session 22); unknown fields are skipped, and the last
 * of a repeated singular field wins, as in proto3.
 */
export function decodeRequest(data: Uint8Array): Required<RequestMessage> {
  buf = data;
  pos = 0;
  try {
    return readRequest(data.length);
  } finally {
    buf = EMPTY; // the request's bytes are not kept past the call
  }
}

// The reader's cursor lives in module variables and its steps are plain functions: a reader class with a private
// cursor was no faster than the generic decoder in the interpreter (a property access per byte), and closures over a
// local cursor cost an allocation each per call, plus a `defineProperty` each in the bundle (its `--keep-names` names
// every closure as it is created). decodeRequest is synchronous and calls nothing that could re-enter it.
let buf: Uint8Array = EMPTY;
let pos = 0;

function readRequest(n: number): Required<RequestMessage> {
  let service = "", method = "", payload: Uint8Array = EMPTY, timeoutNano = 0;
  const metadata: KeyValue[] = [];
  while (pos < n) {
    const key = readVarint(n);
    const field = Math.floor(key / 8), wireType = key % 8;
    if (field === 1) service = readString(n, wireType);
    else if (field === 2) method = readString(n, wireType);
    else if (field === 3) {
      const end = readLength(n, wireType);
      payload = buf.subarray(pos, end);
      pos = end;
    } else if (field === 4) {
      if (wireType !== 0) throw new Error(`ttrpc: wire type ${wireType} for an integer field`);
      timeoutNano = readInt64(n);
    } else if (field === 5) {
      const end = readLength(n, wireType);
      let k = "", v = "";
      while (pos < end) {
        const kvKey = readVarint(n);
        const kvField = Math.floor(kvKey / 8), kvWire = kvKey % 8;
        if (kvField === 1) k = readString(n, kvWire);
        else if (kvField === 2) v = readString(n, kvWire);
        else skipField(n, kvField, kvWire);
      }
      if (pos !== end) throw new Error("ttrpc: embedded message overruns its length");
      metadata.push({ key: k, value: v });
    } else skipField(n, field, wireType);
  }
  return { service, method, payload, timeoutNano, metadata };
}

function readVarint(n: number): number {
  let v = 0, mul = 1;
  for (let i = 0; i < 8; i++) {
    if (pos >= n) throw new Error("ttrpc: truncated varint");
    const b = buf[pos++];
    v += (b & 0x7f) * mul;
    if (b < 0x80) return v;
    mul *= 128;
  }
  throw new Error("ttrpc: varint too long");
}

/** An int64 varint as a number: negatives take ten bytes, their high word read signed. */
function readInt64(n: number): number {
  let lo = 0, hi = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= n) throw new Error("ttrpc: truncated varint");
    const b = buf[pos++];
    const bits = b & 0x7f;
    if (i < 4) lo |= bits << (7 * i);
    else if (i === 4) {
      lo |= bits << 28;
      hi |= bits >>> 4;
    } else hi |= bits << (7 * i - 32);
    if (b < 0x80) return (hi | 0) * 4294967296 + (lo >>> 0);
  }
  throw new Error("ttrpc: varint too long");
}

/** The end of a length-delimited field whose length is next. */
function readLength(n: number, wireType: number): number {
  if (wireType !== 2) throw new Error(`ttrpc: wire type ${wireType} for a length-delimited field`);
  const end = readVarint(n) + pos;
  if (end > n) throw new Error("ttrpc: truncated field");
  return end;
}

function readString(n: number, wireType: number): string {
  const end = readLength(n, wireType);
  const s = end === pos ? "" : utf8.decode(buf.subarray(pos, end));
  pos = end;
  return s;
}

function skipField(n: number, field: number, wireType: number): void {
  if (field === 0) throw new Error("ttrpc: field number 0");
  if (wireType === 0) readVarint(n);
  else if (wireType === 2) pos = readLength(n, 2);
  else if (wireType === 1 || wireType === 5) {
    pos += wireType === 1 ? 8 : 4;
    if (pos > n) throw new Error("ttrpc: truncated field");
  } else if (wireType === 3) {
    // A group: skipped with everything inside it, up to its own end.
    for (;;) {
      if (pos >= n) throw new Error("ttrpc: unterminated group");
      const key = readVarint(n);
      if (key % 8 === 4) {
        if (Math.floor(key / 8) !== field) throw new Error("ttrpc: mismatched end of group");
        return;
      }
      skipField(n, Math.floor(key / 8), key % 8);
    }
  } else throw new Error(`ttrpc: invalid wire type ${wireType}`);
}

/** Decodes a Response frame's data. Throws when the bytes are not a valid `ttrpc.Response`. */
export function decodeResponse(data: Uint8Array): ResponseMessage {
  const m = ttrpc.Response.decode(data);
  const s = m.status;
  if (!s) return { payload: m.payload };
  const details: StatusDetail[] = (s.details ?? []).map((d) => ({
    typeUrl: d.type_url ?? "",
    value: d.value ?? EMPTY,
  }));
  return { status: { code: s.code ?? 0, message: s.message ?? "", details }, payload: m.payload };
}

/**
 * Encodes a Request frame. Throws a ResourceExhausted {@link TtrpcError} when the message exceeds the 4 MiB frame
 * limit (Go's `OversizedMessageErr`).
 */
export function encodeRequestFrame(streamId: number, req: RequestMessage): Uint8Array {
  const svcLen = utf8Length(req.service);
  const mthLen = utf8Length(req.method);
  const timeout = req.timeoutNano ?? 0;
  const md = req.metadata;
  let size = stringFieldSize(svcLen) + stringFieldSize(mthLen) + stringFieldSize(req.payload.length);
  if (timeout !== 0) size += 1 + int64Size(timeout);
  let mdSizes: number[] | undefined;
  if (md && md.length > 0) {
    mdSizes = new Array(md.length * 3);
    for (let i = 0; i < md.length; i++) {
      const k = utf8Length(md[i].key), v = utf8Length(md[i].value);
      const inner = stringFieldSize(k) + stringFieldSize(v);
      mdSizes[i * 3] = k;
      mdSizes[i * 3 + 1] = v;
      mdSizes[i * 3 + 2] = inner;
      size += 1 + varintSize(inner) + inner;
    }
  }
  const buf = allocFrame(streamId, FrameType.Request, size);
  let p = HEADER_LENGTH;
  p = writeString(buf, p, 0x0a, req.service, svcLen);
  p = writeString(buf, p, 0x12, req.method, mthLen);
  p = writeBytes(buf, p, 0x1a, req.payload);
  if (timeout !== 0) {
    buf[p++] = 0x20;
    p = writeInt64(buf, p, timeout);
  }
  if (md && mdSizes) {
    for (let i = 0; i < md.length; i++) {
      buf[p++] = 0x2a;
      p = writeVarint(buf, p, mdSizes[i * 3 + 2]);
      p = writeString(buf, p, 0x0a, md[i].key, mdSizes[i * 3]);
      p = writeString(buf, p, 0x12, md[i].value, mdSizes[i * 3 + 1]);
    }
  }
  return buf;
}

/**
 * Encodes a Response frame. Like Go, a status is always written (an empty one for OK). Throws a ResourceExhausted
 * {@link TtrpcError} when the message exceeds the 4 MiB frame limit.
 */
export function encodeResponseFrame(streamId: number, res: ResponseMessage): Uint8Array {
  const st = res.status;
  const code = st?.code ?? 0;
  const msgLen = st ? utf8Length(st.message) : 0;
  const details = st?.details ?? [];
  let statusSize = (code !== 0 ? 1 + int64Size(code) : 0) + stringFieldSize(msgLen);
  const detailSizes: number[] = [];
  for (const d of details) {
    const u = utf8Length(d.typeUrl);
    const inner = stringFieldSize(u) + stringFieldSize(d.value.length);
    detailSizes.push(u, inner);
    statusSize += 1 + varintSize(inner) + inner;
  }
  const size = 1 + varintSize(statusSize) + statusSize + stringFieldSize(res.payload.length);
  const buf = allocFrame(streamId, FrameType.Response, size);
  let p = HEADER_LENGTH;
  buf[p++] = 0x0a;
  p = writeVarint(buf, p, statusSize);
  if (code !== 0) {
    buf[p++] = 0x08;
    p = writeInt64(buf, p, code);
  }
  if (st) p = writeString(buf, p, 0x12, st.message, msgLen);
  for (let i = 0; i < details.length; i++) {
    buf[p++] = 0x1a;
    p = writeVarint(buf, p, detailSizes[i * 2 + 1]);
    p = writeString(buf, p, 0x0a, details[i].typeUrl, detailSizes[i * 2]);
    p = writeBytes(buf, p, 0x12, details[i].value);
  }
  writeBytes(buf, p, 0x12, res.payload);
  return buf;
}

function allocFrame(streamId: number, type: number, size: number): Uint8Array {
  if (size > MAX_DATA_LENGTH) {
    throw resourceExhausted(`message length ${size} exceed maximum message size of ${MAX_DATA_LENGTH}`);
  }
  const buf = new Uint8Array(HEADER_LENGTH + size);
  writeFrameHeader(buf, 0, size, streamId, type, 0);
  return buf;
}

/** Encoded size of a length-delimited field of `len` bytes with a one-byte tag; 0 when empty (proto3 default). */
function stringFieldSize(len: number): number {
  return len === 0 ? 0 : 1 + varintSize(len) + len;
}

function writeString(buf: Uint8Array, p: number, tag: number, s: string, len: number): number {
  if (len === 0) return p;
  buf[p++] = tag;
  p = writeVarint(buf, p, len);
  if (len === s.length && len < 128) {
    // ASCII (a UTF-8 length equal to the UTF-16 length means no multi-byte character): a plain loop beats
    // encodeInto's call and subarray for the short names and metadata that dominate here.
    for (let i = 0; i < len; i++) buf[p + i] = s.charCodeAt(i);
    return p + len;
  }
  const { written } = encoder.encodeInto(s, buf.subarray(p, p + len));
  if (written !== len) throw new Error(`ttrpc: utf-8 length mismatch (${written} != ${len})`);
  return p + len;
}

function writeBytes(buf: Uint8Array, p: number, tag: number, b: Uint8Array): number {
  if (b.length === 0) return p;
  buf[p++] = tag;
  p = writeVarint(buf, p, b.length);
  buf.set(b, p);
  return p + b.length;
}

/** UTF-8 byte length of `s` as `TextEncoder` encodes it (lone surrogates become U+FFFD, three bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
