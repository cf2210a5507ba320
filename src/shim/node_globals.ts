/**
 * Hides Deno's lazily created Node globals (`process`, `Buffer`, `global`, …) from bundled npm code.
 *
 * protobufjs probes `global.process` and `Buffer` while it loads; in Deno the first touch of either boots the Node
 * compatibility layer, which costs ~18 ms of start-up and ~10 MiB of memory per process. The shim uses neither
 * (it runs protobufjs on plain Uint8Arrays), so it shadows them with `undefined` before anything else loads.
 * Only the shim's entry point imports this module; tests and tools keep Node globals.
 *
 * @module
 */
for (const name of ["process", "Buffer", "global", "setImmediate", "clearImmediate"]) {
  Object.defineProperty(globalThis, name, { value: undefined, configurable: true, writable: true });
}
