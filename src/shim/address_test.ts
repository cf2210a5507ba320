import assert from "node:assert/strict";
import { addressPath, cleanPath, joinPath, socketAddress, socketPath } from "./address.ts";

Deno.test("cleanPath and joinPath follow Go's filepath", () => {
  assert.equal(cleanPath("/a//b/./c/../d/"), "/a/b/d");
  assert.equal(cleanPath("/../x"), "/x");
  assert.equal(cleanPath("a/../../b"), "../b");
  assert.equal(cleanPath(""), ".");
  assert.equal(
    joinPath("/run/containerd/containerd.sock", "default", "c1"),
    "/run/containerd/containerd.sock/default/c1",
  );
  assert.equal(joinPath("/x/", "", "ns", "../g"), "/x/g");
});

Deno.test("socketPath hashes address/namespace/group like containerd", async () => {
  // sha256("/run/containerd/containerd.sock/default/c1"), computed independently with sha256sum.
  const p = socketPath("/run/containerd/containerd.sock", "default", "c1");
  const expected = new TextDecoder().decode(
    (await new Deno.Command("sh", {
      args: ["-c", "printf %s /run/containerd/containerd.sock/default/c1 | sha256sum | cut -d' ' -f1"],
      stdout: "piped",
    }).output()).stdout,
  ).trim();
  assert.equal(p, `/run/containerd/s/${expected}`);
  assert.equal(p.length, "/run/containerd/s/".length + 64);
  assert.equal(socketPath("/a", "n", "g", "/tmp/s"), socketPath("/a/", "n", "g", "/tmp/s"));
});

Deno.test("addresses carry the unix scheme", () => {
  assert.equal(socketAddress("/run/containerd/s/ab"), "unix:///run/containerd/s/ab");
  assert.equal(addressPath("unix:///run/containerd/s/ab"), "/run/containerd/s/ab");
  assert.equal(addressPath("/plain"), "/plain");
});
