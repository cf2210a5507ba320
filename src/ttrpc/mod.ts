/**
 * ttrpc for Deno: framing, a concurrent unary server, a client, and gRPC status codes. Wire-compatible with
 * `containerd/ttrpc` (Go) and knows nothing about containers.
 *
 * @example
 * ```ts
 * import { Client, Code, notFound, Server, TtrpcError } from "./mod.ts";
 * const path = "/tmp/demo.sock";
 * const server = new Server();
 * server.register("demo.v1.Store", {
 *   Get: (payload) => {
 *     if (payload.length === 0) throw notFound("key: not found");
 *     return payload;
 *   },
 * });
 * server.serve(Deno.listen({ transport: "unix", path }));
 * const client = await Client.connectUnix(path);
 * try {
 *   await client.call("demo.v1.Store", "Get", new Uint8Array());
 * } catch (e) {
 *   console.log(e instanceof TtrpcError && e.code === Code.NotFound); // true
 * }
 * client.close();
 * await server.shutdown();
 * ```
 * @module
 */
export { type Conn, denoConn, denoListener, type Listener, toConn, toListener } from "./conn.ts";
export {
  encodeFrame,
  type Frame,
  FrameDecoder,
  type FrameDecoderOptions,
  FrameFlags,
  type FrameHeader,
  FrameType,
  HEADER_LENGTH,
  MAX_DATA_LENGTH,
  readFrameHeader,
  writeFrameHeader,
} from "./frame.ts";
export {
  decodeRequest,
  decodeResponse,
  encodeRequestFrame,
  encodeResponseFrame,
  type KeyValue,
  type RequestMessage,
  type ResponseMessage,
} from "./message.ts";
export * from "./status.ts";
export { type CallContext, type Handler, Server, type ServerOptions, type ShutdownOptions } from "./server.ts";
export { type CallOptions, Client, type ClientOptions } from "./client.ts";
