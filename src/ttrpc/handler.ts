/**
 * What a ttrpc service method is to the server: a function from the encoded request message to the encoded reply,
 * with a context carrying the call's names, metadata, deadline and cancellation.
 *
 * @example
 * ```ts
 * import type { Handler } from "./handler.ts";
 * const echo: Handler = (payload, ctx) => {
 *   if (ctx.signal.aborted) throw ctx.signal.reason;
 *   return payload;
 * };
 * ```
 * @module
 */

/** What a handler knows about its call. */
export interface CallContext {
  /** Full service name, e.g. `containerd.task.v2.Task`. */
  service: string;
  /** Bare method name, e.g. `Create`. */
  method: string;
  /** Request metadata; keys lower-cased, values in arrival order. */
  metadata: Map<string, string[]>;
  /** Aborts when the call's deadline passes or its connection closes. */
  signal: AbortSignal;
  /** Absolute deadline (epoch ms, as `Date.now()`), when the client sent a timeout. */
  deadline?: number;
  /** The connection the call arrived on: an identity for state a service keeps per client connection. */
  connection?: object;
}

/** Handles one unary call: takes the encoded request message, returns the encoded reply (or throws). */
export type Handler = (payload: Uint8Array, ctx: CallContext) => Promise<Uint8Array> | Uint8Array;
