import assert from "node:assert/strict";

/** Runs `script` in a fresh Deno process (as the shim's entry point starts) and parses the JSON it prints. */
async function runFresh(script: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("node_globals keeps protobufjs from evaluating the long package (a WebAssembly compile per process)", async () => {
  // A fresh process, as the shim's entry point starts. long.js compiles its WebAssembly module while it loads, so a
  // WebAssembly.Module constructor that counts its calls tells whether the package was evaluated.
  const script = `
    import ${JSON.stringify(new URL("./node_globals.ts", import.meta.url).href)};
    let compiled = 0;
    const Module = WebAssembly.Module;
    WebAssembly.Module = function (...a) { compiled++; return new Module(...a); };
    const { encodeMessage, task } = await import(${JSON.stringify(new URL("../proto/mod.ts", import.meta.url).href)});
    const bytes = encodeMessage(task.WaitResponse, { exitStatus: 3, exitedAt: { seconds: 2 ** 40 } });
    console.log(JSON.stringify({ compiled, bytes: bytes.length, dcodeIO: typeof globalThis.dcodeIO }));
  `;
  const r = await runFresh(script);
  assert.equal(r.compiled, 0, "long's WebAssembly module was compiled: the package was evaluated");
  assert.ok(r.bytes > 8, "64-bit fields still encode");
  assert.equal(r.dcodeIO, "undefined", "the stand-in is removed once protobufjs loaded");
});

Deno.test("node_globals hides Node's globals, and the server can still boot Node compatibility for reactor reads", async () => {
  // A fresh process, as the shim's entry point starts: node_globals first, then a socket read on the reactor.
  const script = `
    import ${JSON.stringify(new URL("./node_globals.ts", import.meta.url).href)};
    import { UnixConn, UnixListener } from ${JSON.stringify(new URL("../sys/unix_stream.ts", import.meta.url).href)};
    const hidden = [typeof globalThis.process, typeof globalThis.Buffer];
    const dir = await Deno.makeTempDir();
    const l = UnixListener.listen(dir + "/s.sock", { reads: "reactor" });
    const [a, b] = await Promise.all([l.accept(), UnixConn.connect(dir + "/s.sock", { reads: "reactor" })]);
    await Deno.remove(dir, { recursive: true });
    await b.write(new Uint8Array([7]));
    const got = await a.read();
    console.log(JSON.stringify({ hidden, reads: [a.reads, b.reads], got: [...got] }));
    for (const c of [a, b, l]) c.close();
  `;
  const r = await runFresh(script);
  assert.deepEqual(r.hidden, ["undefined", "undefined"], "npm code loaded after node_globals sees no Node globals");
  assert.deepEqual(r.reads, ["reactor", "reactor"], "the hidden process getter still reaches Node's stream handle");
  assert.deepEqual(r.got, [7]);
});
