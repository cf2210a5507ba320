import assert from "node:assert/strict";
import { encodeAny, packAny } from "../proto/any.ts";
import { Code, TtrpcError } from "../ttrpc/status.ts";
import { defaultOptions, optionsFromJson, optionsToJson, runcRoot } from "./options.ts";
import { optionsFromAny } from "./options_any.ts";

Deno.test("runc v1 Options from a Create request", () => {
  const o = optionsFromAny(encodeAny("containerd.runc.v1.Options", {
    noPivotRoot: true,
    binaryName: "/usr/local/bin/runc",
    root: "/run/custom",
    systemdCgroup: true,
    shimCgroup: "/shims",
    ioUid: 1000,
    criuWorkPath: "/w",
  }));
  assert.equal(o.noPivotRoot, true);
  assert.equal(o.binaryName, "/usr/local/bin/runc");
  assert.equal(o.systemdCgroup, true);
  assert.equal(o.shimCgroup, "/shims");
  assert.equal(o.ioUid, 1000);
  assert.equal(o.criuWorkPath, "/w");
  assert.equal(runcRoot(o, "k8s.io"), "/run/custom/k8s.io");
});

Deno.test("legacy CreateOptions and RuncOptions, CRI's generic options, and none", () => {
  const legacy = optionsFromAny(
    encodeAny("containerd.linux.runc.CreateOptions", { noNewKeyring: true, shimCgroup: "/x" }),
  );
  assert.equal(legacy.noNewKeyring, true);
  assert.equal(legacy.shimCgroup, "/x");
  assert.equal(legacy.binaryName, "");
  const runcOpts = optionsFromAny(
    encodeAny("containerd.linux.runc.RuncOptions", { runtime: "crun", runtimeRoot: "/r" }),
  );
  assert.equal(runcOpts.binaryName, "crun");
  assert.equal(runcRoot(runcOpts, "default"), "/r/default");
  const cri = optionsFromAny(encodeAny("runtimeoptions.v1.Options", { typeUrl: "x", configPath: "/etc/shim.json" }));
  assert.equal(cri.configPath, "/etc/shim.json");
  assert.deepEqual(optionsFromAny(undefined), defaultOptions());
  assert.equal(runcRoot(defaultOptions(), "default"), "/run/containerd/runc/default");
});

Deno.test("unknown or corrupt options are InvalidArgument", () => {
  const check = (any: Parameters<typeof optionsFromAny>[0]) =>
    assert.throws(() => optionsFromAny(any), (e) => e instanceof TtrpcError && e.code === Code.InvalidArgument);
  check(packAny("containerd.events.TaskOOM", new Uint8Array()));
  check(packAny("example.com/Unknown", new Uint8Array([1, 2, 3])));
  check(packAny("containerd.runc.v1.Options", new Uint8Array([0x0a, 0xff])));
});

Deno.test("options.json uses the Go shim's names and round-trips", () => {
  const o = { ...defaultOptions(), binaryName: "runc", root: "/run/r", systemdCgroup: true, ioGid: 5 };
  const json = optionsToJson(o);
  assert.deepEqual(JSON.parse(json), { binary_name: "runc", root: "/run/r", systemd_cgroup: true, io_gid: 5 });
  assert.deepEqual(optionsFromJson(json), o);
  assert.deepEqual(optionsFromJson("{}"), defaultOptions());
});
