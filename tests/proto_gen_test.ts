/**
 * The committed codecs in src/proto/gen/ must be exactly what `deno task gen` makes from proto/: a schema edit
 * without regeneration (or a hand edit of the generated code) fails here.
 */
import assert from "node:assert/strict";

const root = new URL("..", import.meta.url);

Deno.test("src/proto/gen is what `deno task gen` generates from proto/", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      "--allow-env",
      "--allow-sys",
      "tools/gen.ts",
      "--check",
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, `generated code is stale or generation failed:\n${out}`);
  assert.match(out, /up to date/);
});

Deno.test("every schema file says it was authored here and what it is wire-compatible with", async () => {
  const files: string[] = [];
  const walk = async (dir: URL) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await walk(new URL(`${e.name}/`, dir));
      else if (e.name.endsWith(".proto")) files.push(new URL(e.name, dir).pathname);
    }
  };
  await walk(new URL("proto/", root));
  assert.ok(files.length >= 14);
  for (const f of files) {
    const head = (await Deno.readTextFile(f)).split("\n", 3).join("\n");
    assert.match(head, /^\/\/ Authored for containerd-shim-deno\./, f);
    assert.match(head, /[Ww]ire-compatible with/, f);
  }
});
