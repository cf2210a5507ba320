import assert from "node:assert/strict";
import {
  codecFor,
  decodeAny,
  decodeAnyAs,
  decodeJsonAny,
  encodeAny,
  encodeJsonAny,
  isJsonTypeUrl,
  isProtoTypeUrl,
  JSON_TYPE_URLS,
  packAny,
  PROTO_TYPE_URLS,
} from "./any.ts";
import { Any, encodeMessage, events, google, TASK_EVENT_TOPICS } from "./mod.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("encodeAny uses the bare full name as type URL and protobuf bytes as value", () => {
  const any = encodeAny("containerd.events.TaskOOM", { containerId: "c1" });
  assert.equal(any.type_url, "containerd.events.TaskOOM");
  // field 1 (container_id), length 2, "c1"
  assert.equal(hex(any.value), "0a026331");
  // and the Any itself: field 1 = type URL, field 2 = value
  const bytes = encodeMessage(Any, any);
  assert.equal(bytes[0], 0x0a);
  assert.equal(bytes[1], "containerd.events.TaskOOM".length);
});

Deno.test("decodeAny round-trips every registered type and narrows by type URL", () => {
  const exitedAt = { seconds: 1_700_000_000, nanos: 5 };
  const any = encodeAny("containerd.events.TaskExit", {
    containerId: "c1",
    id: "e1",
    pid: 42,
    exitStatus: 137,
    exitedAt,
  });
  const decoded = decodeAny(Any.decode(encodeMessage(Any, any)));
  assert.equal(decoded.typeUrl, "containerd.events.TaskExit");
  if (decoded.typeUrl !== "containerd.events.TaskExit") throw new Error("unreachable");
  assert.equal(decoded.message.exitStatus, 137);
  assert.equal(decoded.message.pid, 42);
  assert.deepEqual({ ...decoded.message.exitedAt }, exitedAt);
  for (const url of PROTO_TYPE_URLS) {
    // an empty message is a valid value of every type
    assert.equal(decodeAny(packAny(url, new Uint8Array())).typeUrl, url);
  }
});

Deno.test("every task event has a registered codec and a topic", () => {
  for (const url of Object.keys(TASK_EVENT_TOPICS)) assert.ok(isProtoTypeUrl(url), url);
  assert.equal(TASK_EVENT_TOPICS["containerd.events.TaskExecStarted"], "/tasks/exec-started");
  assert.equal(codecFor("containerd.events.TaskStart"), events.TaskStart);
});

Deno.test("registry covers runc options, legacy options, metrics and CRI runtime options", () => {
  for (
    const url of [
      "containerd.runc.v1.Options",
      "containerd.runc.v1.CheckpointOptions",
      "containerd.runc.v1.ProcessDetails",
      "containerd.linux.runc.CreateOptions",
      "containerd.linux.runc.CheckpointOptions",
      "io.containerd.cgroups.v1.Metrics",
      "io.containerd.cgroups.v2.Metrics",
      "runtimeoptions.v1.Options",
    ]
  ) assert.ok(isProtoTypeUrl(url), url);
  const opts = decodeAnyAs(
    encodeAny("containerd.runc.v1.Options", { binaryName: "/usr/sbin/runc", systemdCgroup: true }),
    "containerd.runc.v1.Options",
  );
  assert.equal(opts.binaryName, "/usr/sbin/runc");
  assert.equal(opts.systemdCgroup, true);
  assert.equal(opts.root, "");
  const cri = decodeAnyAs(
    encodeAny("runtimeoptions.v1.Options", { typeUrl: "x", configPath: "/etc/deno-shim.toml" }),
    "runtimeoptions.v1.Options",
  );
  assert.equal(cri.configPath, "/etc/deno-shim.toml");
});

Deno.test("64-bit metrics decode as plain numbers", () => {
  const any = encodeAny("io.containerd.cgroups.v1.Metrics", {
    memory: { usage: { usage: 2 ** 40 + 3, limit: 9223372036854771712 } },
    cpu: { usage: { total: 5741953, perCpu: [1, 2, 3] } },
    memoryOomControl: { oomKill: 1 },
  });
  const m = decodeAnyAs(any, "io.containerd.cgroups.v1.Metrics");
  assert.equal(typeof m.memory?.usage?.usage, "number");
  assert.equal(m.memory?.usage?.usage, 2 ** 40 + 3);
  // the v1 "unlimited" value (PAGE_COUNTER_MAX pages) survives as the nearest double
  assert.equal(m.memory?.usage?.limit, 9223372036854771712);
  assert.deepEqual(m.cpu?.usage?.perCpu, [1, 2, 3]);
  assert.equal(m.memoryOomControl?.oomKill, 1);
  const v2 = decodeAnyAs(
    encodeAny("io.containerd.cgroups.v2.Metrics", { memoryEvents: { oomKill: 2 } }),
    "io.containerd.cgroups.v2.Metrics",
  );
  assert.equal(v2.memoryEvents?.oomKill, 2);
});

Deno.test("decodeAny names an unknown type URL in its error", () => {
  assert.throws(
    () => decodeAny({ type_url: "example.com/Nope", value: new Uint8Array() }),
    (e: Error) => e instanceof TypeError && e.message.includes('"example.com/Nope"'),
  );
  assert.throws(() => decodeAny({}), /unknown Any type URL ""/);
  assert.throws(() => decodeAny({ type_url: JSON_TYPE_URLS.process }), /JSON type: use decodeJsonAny/);
  assert.throws(
    () => decodeAnyAs(encodeAny("containerd.events.TaskOOM", {}), "containerd.events.TaskExit"),
    /expected Any of type "containerd.events.TaskExit", got "containerd.events.TaskOOM"/,
  );
});

Deno.test("JSON Anys: compact JSON under types.containerd.io type URLs", () => {
  const proc = { terminal: false, user: { uid: 0, gid: 0 }, args: ["sh", "-c", "echo ü"], cwd: "/" };
  const any = encodeJsonAny(JSON_TYPE_URLS.process, proc);
  assert.equal(any.type_url, "types.containerd.io/opencontainers/runtime-spec/1/Process");
  assert.equal(new TextDecoder().decode(any.value), JSON.stringify(proc));
  assert.deepEqual(decodeJsonAny<typeof proc>(Any.decode(encodeMessage(Any, any))), proc);
  assert.equal(JSON_TYPE_URLS.linuxResources, "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources");
  assert.equal(JSON_TYPE_URLS.spec, "types.containerd.io/opencontainers/runtime-spec/1/Spec");
  assert.equal(JSON_TYPE_URLS.features, "types.containerd.io/opencontainers/runtime-spec/1/features/Features");
  for (const url of Object.values(JSON_TYPE_URLS)) assert.ok(isJsonTypeUrl(url) && !isProtoTypeUrl(url));
});

Deno.test("decodeJsonAny rejects protobuf type URLs and invalid JSON with the type URL in the message", () => {
  assert.throws(
    () => decodeJsonAny(encodeAny("containerd.runc.v1.Options", {})),
    /"containerd.runc.v1.Options" is not a JSON type \(a protobuf type: use decodeAny\)/,
  );
  const bad = packAny(JSON_TYPE_URLS.linuxResources, new TextEncoder().encode("{nope"));
  assert.throws(() => decodeJsonAny(bad), /LinuxResources" does not hold valid JSON/);
  const notUtf8 = packAny(JSON_TYPE_URLS.spec, new Uint8Array([0x22, 0xff, 0x22]));
  assert.throws(() => decodeJsonAny(notUtf8), /Spec" does not hold valid JSON/);
  assert.throws(() => encodeJsonAny("containerd.runc.v1.Options" as never, {}), /not a JSON type URL/);
  assert.throws(() => encodeJsonAny(JSON_TYPE_URLS.spec, undefined), /cannot encode undefined/);
});

Deno.test("packAny keeps the bytes as they are", () => {
  const value = new Uint8Array([1, 2, 3]);
  const any = packAny("anything", value);
  assert.ok(any instanceof google.protobuf.Any);
  assert.equal(any.type_url, "anything");
  assert.deepEqual(any.value, value);
});
