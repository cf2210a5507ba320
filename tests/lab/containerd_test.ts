/**
 * The lab's containerd selection (tests/lab/containerd.ts): series names, version parsing, and the download's clear
 * failure when the mirror cannot be reached. No containerd is started.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ensureContainerd, parseContainerdVersion, parseSeries, versionFits } from "./containerd.ts";

Deno.test("containerd series: names, versions, and which versions belong to which series", () => {
  assert.equal(parseSeries("1.6"), "1.6");
  assert.equal(parseSeries("2"), "2");
  assert.equal(parseSeries("2.x"), "2");
  assert.equal(parseSeries("2.1"), "2");
  assert.equal(parseSeries("1.7.24"), "1.7");
  assert.throws(() => parseSeries("3.0x"), /SHIM_LAB_CONTAINERD must be 1\.6 .*, 2 .* or 1\.7/);
  assert.equal(
    parseContainerdVersion("containerd github.com/containerd/containerd/v2 2.1.9+unknown \n"),
    "2.1.9+unknown",
  );
  assert.equal(parseContainerdVersion("containerd github.com/containerd/containerd v1.7.24 88bf19b"), "1.7.24");
  assert.equal(parseContainerdVersion("ctr github.com/containerd/containerd 1.6.20~ds1"), "1.6.20~ds1");
  assert.ok(versionFits("2", "2.1.9+unknown") && versionFits("2", "3.0.0"));
  assert.ok(!versionFits("2", "1.7.24") && !versionFits("1.7", "1.6.20~ds1") && versionFits("1.6", "1.6.20~ds1"));
});

Deno.test("containerd download: an unreachable mirror fails with a message naming the series, suite and mirror", async () => {
  const cache = await Deno.makeTempDir({ prefix: "shimlab-dl-" });
  const saved = Deno.env.get("SHIM_LAB_DEBIAN_MIRROR");
  Deno.env.set("SHIM_LAB_DEBIAN_MIRROR", "http://127.0.0.1:9/debian");
  try {
    await assert.rejects(
      ensureContainerd("2", cache),
      /downloading containerd 2 from Debian sid \(mirror http:\/\/127\.0\.0\.1:9\/debian\): could not fetch the package list/,
    );
    assert.equal(await Deno.stat(`${cache}/x`).then(() => true, () => false), false, "nothing extracted");
    await assert.rejects(ensureContainerd("2", cache, { download: false }), /has not been downloaded/);
  } finally {
    if (saved === undefined) Deno.env.delete("SHIM_LAB_DEBIAN_MIRROR");
    else Deno.env.set("SHIM_LAB_DEBIAN_MIRROR", saved);
    await Deno.remove(cache, { recursive: true });
  }
});
