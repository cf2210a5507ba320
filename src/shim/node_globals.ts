/**
 * Hides Deno's lazily created Node globals (`process`, `Buffer`, `global`, …) from bundled npm code.
 *
 * protobufjs probes `global.process` and `Buffer` while it loads; in Deno the first touch of either boots the Node
 * compatibility layer, which costs ~18 ms of start-up and ~10 MiB of memory per process. The shim uses neither
 * (it runs protobufjs on plain Uint8Arrays), so it shadows them with `undefined` before anything else loads. The layer
 * boots only if a socket is read on Deno's reactor (src/sys/reactor_reader.ts, opt-in).
 * Only the shim's entry point imports this module; tests and tools keep Node globals.
 *
 * @module
 */
import { setNodeProcessSource } from "../sys/reactor_reader.ts";

// Sockets can be read through Node compatibility's stream handle (src/sys/reactor_reader.ts, opt-in: `reads` in
// src/sys/unix_stream.ts), which boots the layer when first used: keep the original lazy getter for that.
const processGetter = Object.getOwnPropertyDescriptor(globalThis, "process")?.get;
if (processGetter) setNodeProcessSource(() => processGetter.call(globalThis));

for (const name of ["process", "Buffer", "global", "setImmediate", "clearImmediate"]) {
  Object.defineProperty(globalThis, name, { value: undefined, configurable: true, writable: true });
}

/**
 * protobufjs takes long.js's `Long` from a `dcodeIO.Long` global when there is one, and only otherwise evaluates the
 * bundled `long` package, whose WebAssembly module (the isolate's first wasm compile) cost the server's boot 23–25 ms
 * here. The shim never uses `Long` (src/proto/runtime.ts turns it off before any codec exists, and removes this
 * stand-in), so protobufjs gets a stand-in and `long` is never evaluated.
 */
export function LongStandIn(): never {
  throw new Error("the shim's protobuf codecs use plain numbers, not Long");
}
Object.defineProperty(globalThis, "dcodeIO", {
  value: { Long: LongStandIn },
  configurable: true,
  writable: true,
});
