/**
 * Wire compatibility against real bytes: every payload captured between containerd 1.6.20 and the Go runc shim
 * (tests/fixtures/wire/, made by tools/capture-wire.sh) must decode with our codecs, carry sane key fields, and
 * re-encode to exactly the same bytes, including every protobuf message nested in an Any.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  decodeAny,
  decodeAnyAs,
  decodeJsonAny,
  isJsonTypeUrl,
  isProtoTypeUrl,
  JSON_TYPE_URLS,
  type ProtoTypeUrl,
} from "../src/proto/any.ts";
import {
  type Codec,
  containerd,
  encodeMessage,
  EVENTS_SERVICE,
  google,
  io,
  isZeroTimestamp,
  runtimeoptions,
  Status,
  task,
  TASK_EVENT_TOPICS,
  TASK_SERVICE,
  taskMethods,
  ttrpc,
} from "../src/proto/mod.ts";

interface Entry {
  file: string;
  type: string;
  from: string;
  via: string;
  container: string;
  sha256: string;
}

const dir = new URL("./fixtures/wire/", import.meta.url);
const manifest = JSON.parse(await Deno.readTextFile(new URL("manifest.json", dir))) as { fixtures: Entry[] };
const NAMESPACE = "wire";
const roots: Record<string, unknown> = { containerd, google, io, runtimeoptions, ttrpc };

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const read = (e: Entry) => Deno.readFile(new URL(e.file, dir));

/** The generated codec of a full message name, e.g. "containerd.task.v2.StateResponse". */
function codecByName(name: string): Codec<unknown> {
  let node: unknown = roots;
  for (const part of name.split(".")) node = (node as Record<string, unknown> | undefined)?.[part];
  assert.ok(node && typeof (node as Codec<unknown>).decode === "function", `no codec for ${name}`);
  return node as Codec<unknown>;
}

/** Decodes with `codec` and checks the re-encoding is byte-identical. */
function roundTrip<T>(codec: Codec<unknown>, bytes: Uint8Array, what: string): T {
  const message = codec.decode(bytes);
  assert.equal(hex(encodeMessage(codec, message)), hex(bytes), `${what}: re-encoding differs`);
  return message as T;
}

/** Every Any reachable from a decoded message: registered ones must round-trip too, JSON ones must parse. */
function checkNestedAnys(message: unknown, what: string, seen: string[] = []): string[] {
  if (message instanceof google.protobuf.Any) {
    const url = message.type_url;
    if (isProtoTypeUrl(url)) {
      const inner = roundTrip(codecByName(url), message.value, `${what} > Any(${url})`);
      checkNestedAnys(inner, what, seen);
    } else {
      assert.ok(isJsonTypeUrl(url), `${what}: Any with unexpected type URL "${url}"`);
      const json = decodeJsonAny<unknown>(message);
      assert.equal(typeof json, "object", `${what}: JSON Any ${url}`);
    }
    seen.push(url);
  } else if (Array.isArray(message)) {
    for (const m of message) checkNestedAnys(m, what, seen);
  } else if (message && typeof message === "object" && !(message instanceof Uint8Array)) {
    for (const v of Object.values(message)) checkNestedAnys(v, what, seen);
  }
  return seen;
}

function metadata(req: ttrpc.Request): Record<string, string> {
  return Object.fromEntries(req.metadata.map((kv) => [kv.key, kv.value]));
}

Deno.test("fixtures are intact and cover the protocol", async () => {
  assert.ok(manifest.fixtures.length > 50);
  for (const e of manifest.fixtures) {
    const sha = createHash("sha256").update(await read(e)).digest("hex");
    assert.equal(sha, e.sha256, `${e.file} changed since capture`);
  }
  const methods = new Set(manifest.fixtures.filter((e) => e.file.startsWith("task/")).map((e) => e.via.split("/")[1]));
  for (const m of Object.keys(taskMethods)) assert.ok(methods.has(m), `no ${m} captured`);
  const events = new Set(
    manifest.fixtures.filter((e) => e.file.startsWith("events/")).map((e) => e.file.split(/[/.]/)[1]),
  );
  for (const ev of ["Create", "Start", "Exit", "Delete", "OOM", "ExecAdded", "ExecStarted", "Paused", "Resumed"]) {
    assert.ok(events.has(`Task${ev}`), `no Task${ev} event captured`);
  }
});

for (const e of manifest.fixtures) {
  Deno.test(`${e.file} (${e.type}) decodes and re-encodes byte-identically`, async () => {
    const bytes = await read(e);
    if (e.type === "ttrpc-frame") return checkFrame(bytes, e);
    const message = roundTrip<unknown>(codecByName(e.type), bytes, e.file);
    checkNestedAnys(message, e.file);
    checkFields(e, message);
  });
}

/** A whole ttrpc frame: 10-byte big-endian header, then a Request (type 1) or Response (type 2). */
function checkFrame(bytes: Uint8Array, e: Entry): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(view.getUint32(0), bytes.length - 10, "length field counts the data only");
  assert.equal(view.getUint32(4) % 2, 1, "client stream ids are odd");
  assert.equal(view.getUint8(9), 0, "unary calls carry no flags");
  const data = bytes.subarray(10);
  if (e.from === "containerd") {
    assert.equal(view.getUint8(8), 1);
    const req = roundTrip<ttrpc.Request>(ttrpc.Request, data, e.file);
    assert.equal(`${req.service}/${req.method}`, e.via);
  } else {
    assert.equal(view.getUint8(8), 2);
    roundTrip(ttrpc.Response, data, e.file);
  }
}

/** Key fields a user of each message relies on. */
function checkFields(e: Entry, message: unknown): void {
  switch (e.type) {
    case "ttrpc.Request": {
      const req = message as ttrpc.Request;
      assert.equal(`${req.service}/${req.method}`, e.via);
      assert.ok([TASK_SERVICE, EVENTS_SERVICE].includes(req.service));
      if (req.service === EVENTS_SERVICE) {
        // the Go publisher: namespace in metadata and a 5 s deadline per Forward
        assert.equal(metadata(req)["containerd-namespace-ttrpc"], NAMESPACE);
        assert.ok(req.timeoutNano > 4e9 && req.timeoutNano <= 5e9);
      } else {
        // containerd 1.6 sends the shim no metadata at all: the namespace comes from the -namespace flag
        assert.deepEqual(req.metadata, []);
      }
      if (req.service === TASK_SERVICE) {
        const codec = taskMethods[req.method as keyof typeof taskMethods].request;
        checkNestedAnys(roundTrip(codec, req.payload, `${e.file} payload`), e.file);
      }
      break;
    }
    case "ttrpc.Response": {
      const res = message as ttrpc.Response;
      if (e.file.includes(".error.")) {
        assert.ok((res.status?.code ?? 0) > 0 && (res.status?.message ?? "").length > 0);
        assert.equal(res.payload.length, 0, "an error carries no payload");
      } else {
        assert.ok(!res.status?.code, "success has no status code");
      }
      break;
    }
    case "containerd.task.v2.CreateTaskRequest": {
      const req = message as task.CreateTaskRequest;
      assert.equal(req.id, e.container);
      assert.ok(req.bundle.endsWith(`/${NAMESPACE}/${req.id}`));
      assert.equal(req.rootfs[0].type, "overlay");
      assert.ok((req.rootfs[0].options ?? []).some((o) => o.startsWith("lowerdir=")));
      assert.equal(req.options?.type_url, "containerd.runc.v1.Options");
      assert.ok(req.terminal ? req.stdin.length > 0 : req.stdout.length > 0);
      break;
    }
    case "containerd.task.v2.ExecProcessRequest": {
      const req = message as task.ExecProcessRequest;
      assert.ok(req.execId.length > 0);
      assert.equal(req.spec?.type_url, JSON_TYPE_URLS.process);
      const spec = decodeJsonAny<{ args: string[]; cwd: string }>(req.spec!);
      assert.ok(Array.isArray(spec.args) && spec.args.length > 0);
      break;
    }
    case "containerd.task.v2.CheckpointTaskRequest": {
      const req = message as task.CheckpointTaskRequest;
      const opts = decodeAnyAs(req.options!, "containerd.runc.v1.CheckpointOptions");
      assert.ok(opts.imagePath.endsWith("/cp-image") && opts.workPath.endsWith("/cp-work"));
      break;
    }
    case "containerd.task.v2.UpdateTaskRequest": {
      const req = message as task.UpdateTaskRequest;
      assert.equal(req.id, e.container);
      const res = decodeJsonAny<{ pids: { limit: number } }>(req.resources!);
      assert.equal(req.resources?.type_url, JSON_TYPE_URLS.linuxResources);
      assert.equal(res.pids.limit, 64);
      assert.deepEqual({ ...req.annotations }, { "io.example.first": "1", "io.example.second": "two" });
      break;
    }
    case "containerd.task.v2.ResizePtyRequest": {
      const req = message as task.ResizePtyRequest;
      assert.ok(req.width > 0 && req.height > 0);
      break;
    }
    case "containerd.task.v2.KillRequest":
      assert.equal((message as task.KillRequest).signal, 9);
      break;
    case "containerd.task.v2.StateResponse": {
      const res = message as task.StateResponse;
      // id is the container id for init and the exec id for an exec; bundle is the container's
      assert.ok(res.id.length > 0 && res.bundle.endsWith(`/${NAMESPACE}/${e.container}`));
      assert.ok(res.status >= Status.CREATED && res.status <= Status.PAUSING);
      // the Go shim always sends exited_at, Go's zero time while the process lives
      assert.ok(res.exitedAt);
      assert.equal(isZeroTimestamp(res.exitedAt), res.status !== Status.STOPPED);
      break;
    }
    case "containerd.task.v2.WaitResponse":
    case "containerd.task.v2.DeleteResponse": {
      const res = message as task.WaitResponse;
      assert.ok(!isZeroTimestamp(res.exitedAt));
      assert.ok(res.exitedAt!.seconds! > 1.6e9);
      break;
    }
    case "containerd.task.v2.PidsResponse": {
      const res = message as task.PidsResponse;
      assert.ok(res.processes.length >= 2 && res.processes.every((p) => (p.pid ?? 0) > 0));
      const execs = res.processes.filter((p) => p.info).map((p) =>
        decodeAnyAs(p.info!, "containerd.runc.v1.ProcessDetails")
      );
      assert.deepEqual(execs.map((d) => d.execId), ["e2"]);
      break;
    }
    case "containerd.task.v2.StatsResponse": {
      const m = decodeAnyAs((message as task.StatsResponse).stats!, "io.containerd.cgroups.v1.Metrics");
      assert.ok((m.memory?.usage?.usage ?? 0) > 0 && (m.cpu?.usage?.total ?? 0) > 0 && (m.pids?.current ?? 0) >= 1);
      assert.ok((m.cpu?.usage?.perCpu ?? []).length >= 1, "per_cpu is present (packed)");
      break;
    }
    case "containerd.task.v2.ConnectResponse": {
      const res = message as task.ConnectResponse;
      assert.ok(res.shimPid > 0);
      break;
    }
    case "containerd.services.events.ttrpc.v1.ForwardRequest": {
      const env = (message as containerd.services.events.ttrpc.v1.ForwardRequest).envelope!;
      assert.equal(env.namespace, NAMESPACE);
      assert.ok(!isZeroTimestamp(env.timestamp), "containerd rejects zero envelope timestamps");
      const url = env.event!.type_url as ProtoTypeUrl;
      assert.equal(env.topic, TASK_EVENT_TOPICS[url as keyof typeof TASK_EVENT_TOPICS]);
      const { message: ev } = decodeAny(env.event!);
      assert.equal((ev as { containerId: string }).containerId, e.container);
      if (url === "containerd.events.TaskExit") {
        const exit = ev as containerd.events.TaskExit;
        assert.ok(exit.pid > 0 && !isZeroTimestamp(exit.exitedAt));
      }
      break;
    }
    case "google.protobuf.Any": {
      // `start` stdin: the runtime options
      const opts = decodeAnyAs(message as google.protobuf.Any, "containerd.runc.v1.Options");
      assert.ok(opts.binaryName === "" || opts.binaryName === "/usr/sbin/runc");
      break;
    }
  }
}

Deno.test("the OOM-killed container: TaskOOM is published before its TaskExit 137", async () => {
  const events = manifest.fixtures.filter((e) => e.file.startsWith("events/") && e.container === "w-oom");
  const types = new Set<string>();
  for (const e of events) {
    const env = containerd.services.events.ttrpc.v1.ForwardRequest.decode(await read(e)).envelope!;
    types.add(env.event?.type_url ?? "");
  }
  assert.ok(types.has("containerd.events.TaskOOM"));
});
