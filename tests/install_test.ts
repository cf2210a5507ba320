/**
 * Registration (issue: Kubernetes and density): `install` puts a working shim under a prefix and merges the CRI
 * handler into a containerd config once; `check` reports a usable machine; a container runs through the installed
 * binary.
 */
import assert from "node:assert/strict";
import { useLab } from "./lab/mod.ts";
import { SHIM } from "./harness/shim.ts";

const decoder = new TextDecoder();

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  return { code: o.code, out: decoder.decode(o.stdout), err: decoder.decode(o.stderr) };
}

Deno.test("install places a working shim and merges the CRI handler once; containers run through it", async () => {
  const prefix = await Deno.makeTempDir({ prefix: "shim-install-" });
  const config = `${prefix}/config.toml`;
  await Deno.writeTextFile(config, 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n');
  try {
    const first = await run(SHIM, ["install", "--prefix", prefix, "--merge-config", config]);
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /runtime_type = "io.containerd.deno.v2"/);
    const bin = `${prefix}/bin/containerd-shim-deno-v2`;
    assert.equal((await Deno.stat(bin)).mode! & 0o111, 0o111);
    const v = await run(bin, ["-v"]);
    assert.match(v.out, /io\.containerd\.deno\.v2/);
    const again = await run(SHIM, ["install", "--prefix", prefix, "--merge-config", config]);
    assert.equal(again.code, 0, again.err);
    const text = await Deno.readTextFile(config);
    assert.equal(text.split('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.deno]').length, 2, text);

    const lab = await useLab();
    const r = await lab.ctr(["run", "--rm", "--runtime", bin, lab.image, "installed", "echo", "installed-ok"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "installed-ok\n");
  } finally {
    await Deno.remove(prefix, { recursive: true }).catch(() => {});
  }
});

Deno.test("check reports a usable machine, and fails with a fix when runc is missing", async () => {
  const lab = await useLab();
  const ok = await run(SHIM, ["check", "-address", lab.address]);
  assert.equal(ok.code, 0, ok.out + ok.err);
  assert.match(ok.out, /^ok\s+runc: runc /m);
  assert.match(ok.out, /^ok\s+containerd: /m);
  const bad = await run(SHIM, ["check", "-address", lab.address, "-runc-binary", "/nonexistent/runc"]);
  assert.equal(bad.code, 1);
  assert.match(bad.out, /^FAIL\s+runc: .*install runc/m);
});
