/**
 * `install --merge-config` writes the configuration shape of the containerd it finds (pure: temp files, no
 * containerd needed; tests/install_test.ts runs the real binaries).
 */
import assert from "node:assert/strict";
import {
  configFileVersion,
  type ContainerdTarget,
  criConfigSnippet,
  mergeConfig,
  parseContainerdVersion,
} from "./install.ts";

const BIN = "/usr/local/bin/containerd-shim-deno-v2";
const C16 = parseContainerdVersion("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n");
const C17 = parseContainerdVersion("containerd github.com/containerd/containerd v1.7.24 88bf19b\n");
const C21 = parseContainerdVersion("containerd github.com/containerd/containerd/v2 2.1.9+unknown \n");

async function withFile(text: string | null, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shim-merge-" });
  try {
    const path = `${dir}/config.toml`;
    if (text !== null) await Deno.writeTextFile(path, text);
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("install: containerd --version output is parsed for 1.6, 1.7 and 2.x", () => {
  assert.deepEqual(C16, { version: "1.6.20~ds1", major: 1, minor: 6, configVersion: 2 });
  assert.deepEqual(C17, { version: "1.7.24", major: 1, minor: 7, configVersion: 2 });
  assert.deepEqual(C21, { version: "2.1.9+unknown", major: 2, minor: 1, configVersion: 3 });
  assert.throws(() => parseContainerdVersion("runc version 1.1.5"), /not containerd --version output/);
});

Deno.test("install: the config file's own version line is found, and only at top level", () => {
  assert.equal(configFileVersion("# x\nversion = 3\nroot = '/r'\n"), 3);
  assert.equal(configFileVersion("version=2\n[plugins]\n"), 2);
  assert.equal(configFileVersion("root = '/r'\n[plugins.x]\nversion = 3\n"), null);
});

Deno.test("install: containerd 1.6 gets runtime_type io.containerd.deno.v2 in config version 2, once", async () => {
  await withFile('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n', async (path) => {
    const r = await mergeConfig(path, C16, BIN);
    assert.deepEqual(r, { changed: true, configVersion: 2, form: "type" });
    const text = await Deno.readTextFile(path);
    assert.match(
      text,
      /^\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.deno\]\n {2}runtime_type = "io\.containerd\.deno\.v2"\n/m,
    );
    assert.doesNotMatch(text, /runtime_path|cri\.v1\.runtime/);
    assert.equal((await mergeConfig(path, C16, BIN)).changed, false);
    assert.equal(await Deno.readTextFile(path), text);
  });
});

Deno.test("install: containerd 1.6 refuses the runtime_path form, which it would ignore", async () => {
  await withFile(null, async (path) => {
    await assert.rejects(mergeConfig(path, C16, BIN, { form: "path" }), /ignores runtime_path/);
    assert.equal(await Deno.stat(path).then(() => true, () => false), false, "nothing written");
  });
});

Deno.test("install: containerd 2.x gets config version 3 with the runtime_path form", async () => {
  await withFile(null, async (path) => {
    const r = await mergeConfig(path, C21, BIN);
    assert.deepEqual(r, { changed: true, configVersion: 3, form: "path" });
    const text = await Deno.readTextFile(path);
    assert.match(text, /^version = 3\n/);
    assert.match(
      text,
      /^\[plugins\."io\.containerd\.cri\.v1\.runtime"\.containerd\.runtimes\.deno\]\n {2}runtime_type = "io\.containerd\.runc\.v2"\n {2}runtime_path = "\/usr\/local\/bin\/containerd-shim-deno-v2"\n/m,
    );
    assert.doesNotMatch(text, /grpc\.v1\.cri/);
    assert.equal((await mergeConfig(path, C21, BIN)).changed, false);
  });
  // containerd config default writes single-quoted keys: an existing handler is still recognised.
  await withFile(
    "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.deno]\n  runtime_type = 'x'\n",
    async (path) => assert.equal((await mergeConfig(path, C21, BIN)).changed, false),
  );
});

Deno.test("install: containerd 2.x with --runtime-form type", async () => {
  await withFile("version = 3\n", async (path) => {
    await mergeConfig(path, C21, BIN, { form: "type" });
    const text = await Deno.readTextFile(path);
    assert.match(text, /runtimes\.deno\]\n {2}runtime_type = "io\.containerd\.deno\.v2"\n/);
    assert.doesNotMatch(text, /runtime_path/);
  });
});

Deno.test("install: an existing file keeps its config version; impossible combinations are refused", async () => {
  // containerd 2.x reads (migrates) version 2 files: the section goes in the version 2 layout.
  await withFile('version = 2\nroot = "/var/lib/containerd"\n', async (path) => {
    const r = await mergeConfig(path, C21, BIN);
    assert.equal(r.configVersion, 2);
    assert.match(
      await Deno.readTextFile(path),
      /grpc\.v1\.cri"\.containerd\.runtimes\.deno\]\n {2}runtime_type = "io\.containerd\.runc\.v2"/,
    );
  });
  await withFile("version = 3\n", async (path) => {
    await assert.rejects(mergeConfig(path, C17, BIN), /version 3 config, which containerd 1\.7\.24 cannot read/);
  });
  await withFile('root = "/var/lib/containerd"\n', async (path) => {
    await assert.rejects(mergeConfig(path, C21, BIN), /no top-level "version" line/);
  });
});

Deno.test("install: the printed snippets lead with the found containerd's shape", () => {
  const two = criConfigSnippet(BIN, "deno", C21 as ContainerdTarget);
  assert.ok(two.indexOf("cri.v1.runtime") < two.indexOf("grpc.v1.cri"), two);
  assert.match(two, /runtime_path = "\/usr\/local\/bin\/containerd-shim-deno-v2"/);
  const one = criConfigSnippet(BIN, "deno", C16);
  assert.ok(one.indexOf("grpc.v1.cri") < one.indexOf("cri.v1.runtime"), one);
});
