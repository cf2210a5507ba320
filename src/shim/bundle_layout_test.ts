import assert from "node:assert/strict";
import {
  bundleLibDir,
  bundleMainPath,
  bundleServerPath,
  COMMAND_BUNDLES,
  commandBundleFile,
  SERVER_BUNDLE_FILE,
} from "./bundle_layout.ts";

Deno.test("bundleLibDir: main.js, the server's and every command's own bundle name their library directory", () => {
  const lib = "/usr/local/lib/containerd-shim-deno";
  assert.equal(bundleLibDir(`${lib}/js/main.js`), lib);
  assert.equal(bundleLibDir(`${lib}/${SERVER_BUNDLE_FILE}`), lib);
  assert.equal(bundleServerPath(lib), `${lib}/js/server/server.js`);
  for (const c of COMMAND_BUNDLES) assert.equal(bundleLibDir(`${lib}/${commandBundleFile(c)}`), lib);
  assert.equal(bundleLibDir(`${lib}/js/start/start.js`), lib);
  assert.equal(bundleMainPath(lib), `${lib}/js/main.js`);
});

Deno.test("bundleLibDir: anything else is not a bundle (a run from source, a chunk, another command's directory)", () => {
  for (
    const path of [
      "/src/main.ts",
      "/src/shim/start_main.ts",
      "/lib/js/chunk-ABC.js",
      "/lib/js/start/delete.js",
      "/lib/js/install/install.js",
      "/lib/js/server/start.js",
      "/lib/main.js",
    ]
  ) {
    assert.equal(bundleLibDir(path), undefined, path);
  }
});
