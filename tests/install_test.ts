/**
 * Registration (issue: Kubernetes and density): `install` puts a working shim under a prefix and merges the CRI
 * handler into a containerd config once; `check` reports a usable machine; a container runs through the installed
 * binary.
 */
import assert from "node:assert/strict";
import { labSeries, useLab } from "./lab/mod.ts";
import { SHIM } from "./harness/shim.ts";

const decoder = new TextDecoder();

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  return { code: o.code, out: decoder.decode(o.stdout), err: decoder.decode(o.stderr) };
}

const SERIES = labSeries();

/** The CRI handler `deno` as the containerd binary itself loads it from `config` (`containerd config dump`). */
async function loadedHandler(containerd: string, config: string): Promise<{ plugin: string; body: string }> {
  const dump = await run(containerd, ["--config", config, "config", "dump"]);
  assert.equal(dump.code, 0, `${containerd} --config ${config} config dump: ${dump.err}`);
  const m = /^\s*\[plugins\.(["'])([^"']+)\1\.containerd\.runtimes\.deno\]\n((?:\s+\S.*\n)+)/m.exec(dump.out);
  assert.ok(m, `containerd did not load a "deno" handler from:\n${await Deno.readTextFile(config)}`);
  return { plugin: m[2], body: m[3] };
}

Deno.test(
  `install (containerd ${SERIES}) places a working shim and merges the CRI handler once, in the shape this ` +
    `containerd loads; containers run through it`,
  async () => {
    const prefix = await Deno.makeTempDir({ prefix: "shim-install-" });
    const config = `${prefix}/config.toml`;
    try {
      const lab = await useLab();
      const containerd = lab.containerdBinary;
      const bin = `${prefix}/bin/containerd-shim-deno-v2`;
      // Run twice: the second run must find the handler and leave the file alone.
      const install = () =>
        run(SHIM, ["install", "--prefix", prefix, "--containerd", containerd, "--merge-config", config]);
      const first = await install();
      assert.equal(first.code, 0, first.err);
      assert.match(first.out, new RegExp(`for containerd ${lab.containerd.version.replace(/[.+]/g, "\\$&")}`));
      assert.equal((await Deno.stat(bin)).mode! & 0o111, 0o111);
      // Warmed for the server too: its own DENO_DIR holds the analysis of its bundle.
      const cache = `${prefix}/lib/containerd-shim-deno/cache`;
      const analysis = await Deno.stat(`${cache}/server/dep_analysis_cache_v2`).catch(() => null);
      assert.ok(analysis, "the server's module analysis is stored at install");
      const v = await run(bin, ["-v"]);
      assert.match(v.out, /io\.containerd\.deno\.v2/);
      const again = await install();
      assert.equal(again.code, 0, again.err);
      assert.match(again.out, /already has the "deno" runtime handler/);
      const text = await Deno.readTextFile(config);
      assert.equal(text.split("containerd.runtimes.deno]").length, 2, text);

      // What this containerd makes of the merged file.
      const loaded = await loadedHandler(containerd, config);
      if (lab.containerd.series === "2") {
        assert.match(text, /^version = 3\n/);
        assert.equal(loaded.plugin, "io.containerd.cri.v1.runtime");
        assert.match(loaded.body, /runtime_type = 'io\.containerd\.runc\.v2'/);
        assert.match(loaded.body, new RegExp(`runtime_path = '${bin}'`));
      } else {
        assert.match(text, /^version = 2\n/);
        assert.equal(loaded.plugin, "io.containerd.grpc.v1.cri");
        assert.match(loaded.body, /runtime_type = "io\.containerd\.deno\.v2"/);
      }

      const r = await lab.ctr(["run", "--rm", "--runtime", bin, lab.image, "installed", "echo", "installed-ok"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "installed-ok\n");
    } finally {
      await Deno.remove(prefix, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test(`install (containerd ${SERIES}): a --containerd that does not run fails before anything is written`, async () => {
  const prefix = await Deno.makeTempDir({ prefix: "shim-install-" });
  try {
    const r = await run(SHIM, [
      "install",
      "--prefix",
      prefix,
      "--containerd",
      "/nonexistent/containerd",
      "--merge-config",
      `${prefix}/c.toml`,
    ]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.err, /cannot run \/nonexistent\/containerd --version/);
    assert.equal(await Deno.stat(`${prefix}/c.toml`).then(() => true, () => false), false);
    assert.equal(await Deno.stat(`${prefix}/bin/containerd-shim-deno-v2`).then(() => true, () => false), false);
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
