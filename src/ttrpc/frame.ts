/**
 * ttrpc framing: the 10-byte header (`u32 BE length`, `u32 BE stream id`, `u8 type`, `u8 flags`) in front of every
 * message, and an incremental decoder that turns an arbitrarily chunked byte stream back into frames.
 *
 * Frames whose declared length exceeds the maximum are not buffered: the decoder reports their header as soon as it
 * is parsed and then skips the body as it streams past, so the caller can answer ResourceExhausted on that stream
 * and keep the connection.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameDecoder, FrameType } from "./frame.ts";
 * const decoder = new FrameDecoder({
 *   onFrame: (f) => console.log(f.streamId, f.type, f.data.length),
 *   onOversize: (h) => console.log("too big", h.streamId, h.length),
 * });
 * const bytes = encodeFrame(1, FrameType.Request, 0, new Uint8Array([1, 2, 3]));
 * decoder.push(bytes.subarray(0, 4)); // nothing yet
 * decoder.push(bytes.subarray(4)); // -> onFrame(1, 1, 3)
 * ```
 * @module
 */

/** Size of the fixed frame header. */
export const HEADER_LENGTH = 10;

/** Largest data length a frame may carry (4 MiB), as in Go's ttrpc. */
export const MAX_DATA_LENGTH = 4 << 20;

/** Frame types. Unknown types must be ignored by receivers, for forward compatibility. */
export const FrameType = {
  Request: 0x1,
  Response: 0x2,
  Data: 0x3,
} as const;

/** Flag bits. Their meaning depends on the frame type; none are used by unary calls. */
export const FrameFlags = {
  /** Request/Data: the sender will send no more data on this stream. */
  RemoteClosed: 0x1,
  /** Request: the client will stream data after the request. */
  RemoteOpen: 0x2,
  /** Data: the frame carries no message (as opposed to an empty one). */
  NoData: 0x4,
} as const;

/** A parsed frame header. */
export interface FrameHeader {
  /** Length of the data following the header. */
  length: number;
  streamId: number;
  type: number;
  flags: number;
}

/** A complete frame: its header fields and its data. `data` is owned by the receiver (never reused). */
export interface Frame {
  streamId: number;
  type: number;
  flags: number;
  data: Uint8Array;
}

/** Writes a header into `buf` at `offset` (which must leave room for {@link HEADER_LENGTH} bytes). */
export function writeFrameHeader(
  buf: Uint8Array,
  offset: number,
  length: number,
  streamId: number,
  type: number,
  flags: number,
): void {
  buf[offset] = length >>> 24;
  buf[offset + 1] = length >>> 16;
  buf[offset + 2] = length >>> 8;
  buf[offset + 3] = length;
  buf[offset + 4] = streamId >>> 24;
  buf[offset + 5] = streamId >>> 16;
  buf[offset + 6] = streamId >>> 8;
  buf[offset + 7] = streamId;
  buf[offset + 8] = type;
  buf[offset + 9] = flags;
}

/** Reads a header from `buf` at `offset` (which must hold {@link HEADER_LENGTH} bytes). */
export function readFrameHeader(buf: Uint8Array, offset = 0): FrameHeader {
  return {
    length: readU32(buf, offset),
    streamId: readU32(buf, offset + 4),
    type: buf[offset + 8],
    flags: buf[offset + 9],
  };
}

function readU32(buf: Uint8Array, o: number): number {
  return ((buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]) >>> 0;
}

/**
 * Encodes a whole frame (header + data) into one new buffer, so it goes out in a single write.
 * Throws a RangeError when `data` exceeds {@link MAX_DATA_LENGTH}; callers that know the stream map it to a status.
 */
export function encodeFrame(streamId: number, type: number, flags: number, data: Uint8Array): Uint8Array {
  if (data.length > MAX_DATA_LENGTH) {
    throw new RangeError(`message length ${data.length} exceed maximum message size of ${MAX_DATA_LENGTH}`);
  }
  const out = new Uint8Array(HEADER_LENGTH + data.length);
  writeFrameHeader(out, 0, data.length, streamId, type, flags);
  out.set(data, HEADER_LENGTH);
  return out;
}

/** Callbacks of a {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Called for every complete frame, in stream order. */
  onFrame(frame: Frame): void;
  /** Called when a header announces more than `maxDataLength` bytes; its body is then skipped, not buffered. */
  onOversize(header: FrameHeader): void;
  /** Maximum data length accepted; defaults to {@link MAX_DATA_LENGTH}. */
  maxDataLength?: number;
}

/**
 * Incremental frame decoder. Feed it whatever the socket returned; it copies each frame's data into a buffer of its
 * own (the caller may reuse the chunk it pushed) and invokes the callbacks synchronously from {@link push}.
 */
export class FrameDecoder {
  readonly #onFrame: (frame: Frame) => void;
  readonly #onOversize: (header: FrameHeader) => void;
  readonly #max: number;
  readonly #header = new Uint8Array(HEADER_LENGTH);
  #headerFill = 0;
  /** Body being assembled, or null while reading a header. */
  #body: Uint8Array | null = null;
  #bodyFill = 0;
  #streamId = 0;
  #type = 0;
  #flags = 0;
  /** Bytes of an oversized body still to skip. */
  #skip = 0;

  constructor(opts: FrameDecoderOptions) {
    this.#onFrame = opts.onFrame;
    this.#onOversize = opts.onOversize;
    this.#max = opts.maxDataLength ?? MAX_DATA_LENGTH;
  }

  /** True when no partial frame is pending (the stream sits on a frame boundary). */
  get idle(): boolean {
    return this.#headerFill === 0 && this.#body === null && this.#skip === 0;
  }

  /** Number of bytes still to be discarded from an oversized frame. */
  get skipping(): number {
    return this.#skip;
  }

  /** Consumes `chunk`. Callbacks run before this returns; exceptions they throw propagate to the caller. */
  push(chunk: Uint8Array): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, end - pos);
        this.#skip -= n;
        pos += n;
        continue;
      }
      if (this.#body !== null) {
        const body = this.#body;
        const n = Math.min(body.length - this.#bodyFill, end - pos);
        body.set(chunk.subarray(pos, pos + n), this.#bodyFill);
        this.#bodyFill += n;
        pos += n;
        if (this.#bodyFill === body.length) this.#emit(body);
        continue;
      }
      // Reading a header: fast path when the whole header is inside this chunk.
      let h: Uint8Array, o: number;
      if (this.#headerFill === 0 && end - pos >= HEADER_LENGTH) {
        h = chunk;
        o = pos;
        pos += HEADER_LENGTH;
      } else {
        const n = Math.min(HEADER_LENGTH - this.#headerFill, end - pos);
        this.#header.set(chunk.subarray(pos, pos + n), this.#headerFill);
        this.#headerFill += n;
        pos += n;
        if (this.#headerFill < HEADER_LENGTH) return;
        this.#headerFill = 0;
        h = this.#header;
        o = 0;
      }
      const length = readU32(h, o);
      this.#streamId = readU32(h, o + 4);
      this.#type = h[o + 8];
      this.#flags = h[o + 9];
      if (length > this.#max) {
        this.#skip = length;
        this.#onOversize({ length, streamId: this.#streamId, type: this.#type, flags: this.#flags });
        continue;
      }
      if (length === 0) {
        this.#emit(new Uint8Array(0));
        continue;
      }
      // Whole body present: copy it out in one go instead of going through the partial path.
      if (end - pos >= length) {
        const body = chunk.slice(pos, pos + length);
        pos += length;
        this.#emitWith(body);
        continue;
      }
      this.#body = new Uint8Array(length);
      this.#bodyFill = 0;
    }
  }

  #emit(body: Uint8Array): void {
    this.#body = null;
    this.#bodyFill = 0;
    this.#emitWith(body);
  }

  #emitWith(data: Uint8Array): void {
    this.#onFrame({ streamId: this.#streamId, type: this.#type, flags: this.#flags, data });
  }
}
