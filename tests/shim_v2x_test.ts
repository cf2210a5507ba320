/**
 * The containerd 2.x side of the `start` and `-info` exchanges, played by the harness: BootstrapParams on stdin
 * answered by a BootstrapResult (2.3+), the Task API version chosen by containerd's version (3 to 2.x, the plain
 * address to 1.6/1.7) or by the shim config, the v3 Task service name, `-info`'s RuntimeInfo, and node grouping
 * sharing one server across namespaces.
 */
import assert from "node:assert/strict";
import { Any, bootstrap, encodeMessage, TASK_SERVICE_V3, types } from "../src/proto/mod.ts";
import { decodeJsonAny, encodeAny } from "../src/proto/any.ts";
import { addressPath, socketPath } from "../src/shim/address.ts";
import { busyboxRootfs, FakeEvents, makeBundle, runShim, SHIM, TaskClient } from "./harness/shim.ts";

interface Ctx {
  dir: string;
  events: FakeEvents;
  /** Servers to shut down at the end, with the container each start reserved a place for. */
  servers: { address: string; id: string; namespace: string }[];
}

async function withDir(fn: (c: Ctx) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shim-2x-" });
  const events = FakeEvents.start(dir);
  const c: Ctx = { dir, events, servers: [] };
  try {
    await busyboxRootfs(dir);
    await fn(c);
  } finally {
    for (const { address, id, namespace } of c.servers) {
      // Shutdown of the container whose Create never came drops its reservation; with nothing left the server
      // exits, and that removes its socket.
      const t = await TaskClient.connect(address, namespace).catch(() => undefined);
      await t?.call("Shutdown", { id }).catch(() => {});
      t?.close();
    }
    events.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const decoder = new TextDecoder();

Deno.test("2.3+: BootstrapParams on stdin is answered by a BootstrapResult at socket_dir", async () => {
  await withDir(async (c) => {
    const ns = "boot";
    const bundle = await makeBundle(c.dir, "b1", ["sleep", "100"]);
    const socketDir = `${c.dir}/s`;
    const params = encodeMessage(bootstrap.BootstrapParams, {
      instanceId: "b1",
      namespace: ns,
      logLevel: bootstrap.LogLevel.LOG_LEVEL_DEBUG,
      containerdVersion: "v2.3.0",
      containerdTtrpcAddress: c.events.path,
      containerdGrpcAddress: `${c.dir}/containerd.sock`,
      containerdBinary: "/usr/bin/containerd",
      extensions: [{ value: encodeAny("containerd.runc.v1.Options", { binaryName: "runc" }) }],
      socketDir,
    });
    const opts = { bundle, id: "b1", namespace: ns, address: `${c.dir}/containerd.sock`, ttrpcAddress: c.events.path };
    const r = await runShim("start", { ...opts, stdin: params });
    assert.equal(r.code, 0, r.stderr);
    const result = bootstrap.BootstrapResult.decode(r.stdout);
    assert.equal(result.version, 3, "containerd 2.3+ gets Task API version 3 by default");
    assert.equal(result.protocol, "ttrpc");
    assert.equal(result.address, `unix://${socketPath(opts.address, ns, "b1", socketDir)}`);
    c.servers.push({ address: result.address, id: "b1", namespace: ns });
    assert.ok((await Deno.stat(addressPath(result.address))).isSocket);
    assert.equal(await Deno.readTextFile(`${bundle}/address`), result.address);
  });
});

Deno.test("a legacy options Any is not mistaken for BootstrapParams (instance id and namespace must match)", async () => {
  await withDir(async (c) => {
    const bundle = await makeBundle(c.dir, "l1", ["sleep", "100"]);
    const any = Any.encode(encodeAny("containerd.runc.v1.Options", { binaryName: "runc" })).finish();
    const opts = {
      bundle,
      id: "l1",
      namespace: "legacy",
      address: `${c.dir}/containerd.sock`,
      ttrpcAddress: c.events.path,
    };
    const r = await runShim("start", { ...opts, stdin: any });
    assert.equal(r.code, 0, r.stderr);
    const out = decoder.decode(r.stdout);
    assert.equal(out, `unix://${socketPath(opts.address, "legacy", "l1")}`);
    c.servers.push({ address: out, id: "l1", namespace: "legacy" });
  });
});

Deno.test("JSON answers: version 2 on request, version 3 with the v3 Task service", async () => {
  await withDir(async (c) => {
    for (const [n, config, version] of [[1, { startOutput: "json" }, 2], [2, { taskApiVersion: 3 }, 3]] as const) {
      const configPath = `${c.dir}/config-${n}.json`;
      await Deno.writeTextFile(configPath, JSON.stringify(config));
      const id = `j${n}`;
      const bundle = await makeBundle(c.dir, id, ["sleep", "100"]);
      const r = await runShim("start", {
        bundle,
        id,
        namespace: "json",
        address: `${c.dir}/containerd.sock`,
        ttrpcAddress: c.events.path,
        env: { CONTAINERD_SHIM_DENO_CONFIG: configPath },
      });
      assert.equal(r.code, 0, r.stderr);
      const answer = JSON.parse(decoder.decode(r.stdout));
      assert.equal(answer.version, version);
      assert.equal(answer.protocol, "ttrpc");
      assert.match(answer.address, /^unix:\/\//);
      c.servers.push({ address: answer.address, id, namespace: "json" });
      const client = await TaskClient.connect(answer.address, "json", TASK_SERVICE_V3);
      const connect = await client.call("Connect", { id });
      assert.ok(connect.shimPid > 0);
      client.close();
    }
  });
});

Deno.test("a malformed shim config is a clear start error", async () => {
  await withDir(async (c) => {
    const configPath = `${c.dir}/bad.json`;
    await Deno.writeTextFile(configPath, JSON.stringify({ grouping: "galaxy" }));
    const bundle = await makeBundle(c.dir, "bad", ["sleep", "100"]);
    const r = await runShim("start", {
      bundle,
      id: "bad",
      namespace: "cfg",
      address: `${c.dir}/containerd.sock`,
      ttrpcAddress: c.events.path,
      env: { CONTAINERD_SHIM_DENO_CONFIG: configPath },
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /grouping must be one of container, pod, namespace, node/);
  });
});

Deno.test("node grouping: every namespace's start finds the same server", async () => {
  await withDir(async (c) => {
    const configPath = `${c.dir}/node.json`;
    await Deno.writeTextFile(configPath, JSON.stringify({ grouping: "node" }));
    const addresses = new Set<string>();
    for (const [id, ns] of [["n1", "alpha"], ["n2", "beta"], ["n3", "alpha"]]) {
      c.servers.push({ address: "", id, namespace: ns });
      const bundle = await makeBundle(c.dir, id, ["sleep", "100"]);
      const r = await runShim("start", {
        bundle,
        id,
        namespace: ns,
        address: `${c.dir}/containerd.sock`,
        ttrpcAddress: c.events.path,
        env: { CONTAINERD_SHIM_DENO_CONFIG: configPath },
      });
      assert.equal(r.code, 0, r.stderr);
      addresses.add(decoder.decode(r.stdout));
    }
    assert.equal(addresses.size, 1);
    for (const s of c.servers) s.address = [...addresses][0];
  });
});

/** A stand-in for containerd's binary: answers `--version` like `line` and counts how often it was asked. */
async function fakeContainerd(dir: string, name: string, line: string): Promise<{ path: string; asked(): number }> {
  const path = `${dir}/${name}`;
  const count = `${dir}/${name}.asked`;
  await Deno.writeTextFile(path, `#!/bin/sh\necho x >> "${count}"\necho "${line}"\n`);
  await Deno.chmod(path, 0o755);
  return {
    path,
    asked: () => {
      try {
        return Deno.readTextFileSync(count).trim().split("\n").length;
      } catch {
        return 0;
      }
    },
  };
}

Deno.test("Task API version by containerd: 3 to 2.x (asked once, then cached), the plain address to 1.7 and 1.6", async () => {
  await withDir(async (c) => {
    const v2 = await fakeContainerd(c.dir, "containerd-2", "containerd github.com/containerd/containerd/v2 v2.1.9 abc");
    const v17 = await fakeContainerd(c.dir, "containerd-17", "containerd github.com/containerd/containerd 1.7.24 abc");
    const base = { namespace: "ver", address: `${c.dir}/containerd.sock`, ttrpcAddress: c.events.path };
    const start = async (id: string, extra: { publishBinary: string; env?: Record<string, string> }) => {
      const bundle = await makeBundle(c.dir, id, ["sleep", "100"]);
      const r = await runShim("start", { ...base, bundle, id, ...extra });
      assert.equal(r.code, 0, r.stderr);
      const out = decoder.decode(r.stdout);
      c.servers.push({ address: out.startsWith("{") ? JSON.parse(out).address : out, id, namespace: "ver" });
      return out;
    };

    for (const id of ["v1", "v2"]) {
      const answer = JSON.parse(await start(id, { publishBinary: v2.path }));
      assert.equal(answer.version, 3);
      assert.equal(answer.protocol, "ttrpc");
      const client = await TaskClient.connect(answer.address, "ver", TASK_SERVICE_V3);
      assert.ok((await client.call("Connect", { id })).shimPid > 0);
      client.close();
    }
    assert.equal(v2.asked(), 1, "containerd's version is asked once, then cached");

    assert.match(await start("v3", { publishBinary: v17.path }), /^unix:\/\/\//, "1.7 fails on version 3");
    // containerd 1.6 sets no GRPC_ADDRESS: recognised without asking anything.
    const before = v2.asked();
    assert.match(await start("v4", { publishBinary: v2.path, env: { GRPC_ADDRESS: "" } }), /^unix:\/\/\//);
    assert.equal(v2.asked(), before);
    // The config still decides when it says so.
    const configPath = `${c.dir}/v2.json`;
    await Deno.writeTextFile(configPath, JSON.stringify({ taskApiVersion: 2 }));
    const forced = await start("v5", { publishBinary: v2.path, env: { CONTAINERD_SHIM_DENO_CONFIG: configPath } });
    assert.match(forced, /^unix:\/\/\//);
  });
});

Deno.test("-info answers a RuntimeInfo with runc's features", async () => {
  const out = await new Deno.Command(SHIM, { args: ["-info"], stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  assert.equal(out.code, 0, decoder.decode(out.stderr));
  const info = types.RuntimeInfo.decode(out.stdout);
  assert.equal(info.name, "io.containerd.deno.v2");
  assert.ok(info.version?.version);
  assert.equal(info.features?.type_url, "types.containerd.io/opencontainers/runtime-spec/1/features/Features");
  const features = decodeJsonAny<{ ociVersionMin?: string; linux?: unknown }>(info.features!);
  assert.ok(features.ociVersionMin, "runc features carry ociVersionMin");
});
