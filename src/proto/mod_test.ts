import assert from "node:assert/strict";
import {
  bootstrap,
  Empty,
  encodeMessage,
  fromTimestamp,
  GO_ZERO_TIME_SECONDS,
  isZeroTimestamp,
  nowTimestamp,
  Status,
  task,
  TASK_SERVICE,
  taskMethods,
  Timestamp,
  toTimestamp,
  ttrpc,
} from "./mod.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("toTimestamp/fromTimestamp round-trip a Date", () => {
  const d = new Date("2024-05-06T07:08:09.123Z");
  const ts = toTimestamp(d);
  assert.deepEqual(ts, { seconds: Math.floor(d.getTime() / 1000), nanos: 123_000_000 });
  assert.equal(fromTimestamp(ts).toISOString(), d.toISOString());
  assert.equal(fromTimestamp(undefined).getTime(), 0);
  // before the epoch: seconds negative, nanos still in [0, 1e9)
  assert.deepEqual(toTimestamp(new Date(-1)), { seconds: -1, nanos: 999_000_000 });
  assert.equal(fromTimestamp({ seconds: GO_ZERO_TIME_SECONDS }).toISOString(), "0001-01-01T00:00:00.000Z");
});

Deno.test("nowTimestamp is current, valid and non-zero", () => {
  const before = Date.now();
  const ts = nowTimestamp();
  assert.ok(ts.nanos >= 0 && ts.nanos < 1e9 && Number.isInteger(ts.nanos));
  assert.ok(Math.abs(fromTimestamp(ts).getTime() - before) < 1000);
  assert.equal(isZeroTimestamp(ts), false);
  assert.ok(isZeroTimestamp(null) && isZeroTimestamp({}) && isZeroTimestamp({ seconds: GO_ZERO_TIME_SECONDS }));
});

Deno.test("64-bit integers are numbers and negative int64 seconds encode as 10-byte varints", () => {
  const bytes = encodeMessage(Timestamp, { seconds: GO_ZERO_TIME_SECONDS });
  // same bytes as `protoc --encode=google.protobuf.Timestamp` of seconds: -62135596800
  assert.equal(hex(bytes), "088092b8c398feffffff01");
  const back = Timestamp.decode(bytes);
  assert.equal(back.seconds, GO_ZERO_TIME_SECONDS);
  assert.equal(typeof back.seconds, "number");
});

Deno.test("proto3 zero values are not written, like Go", () => {
  assert.equal(encodeMessage(task.WaitResponse, { exitStatus: 0 }).length, 0);
  assert.equal(encodeMessage(Empty, {}).length, 0);
  assert.equal(hex(encodeMessage(task.StateResponse, { status: Status.RUNNING })), "2002");
});

Deno.test("every Task RPC has codecs and DeleteResponse matches the documented layout", () => {
  assert.equal(Object.keys(taskMethods).length, 17);
  assert.equal(TASK_SERVICE, "containerd.task.v2.Task");
  const del = encodeMessage(task.DeleteResponse, { pid: 1, exitStatus: 137, exitedAt: { seconds: 1, nanos: 2 } });
  // pid=1 (08 01), exit_status=2 (10 89 01), exited_at=3 (1a 04 08 01 10 02)
  assert.equal(hex(del), "08011089011a0408011002");
});

Deno.test("ttrpc envelope and bootstrap messages are generated", () => {
  const req = ttrpc.Request.decode(
    encodeMessage(ttrpc.Request, { service: TASK_SERVICE, method: "State", timeoutNano: 5e9 }),
  );
  assert.equal(req.method, "State");
  assert.equal(req.timeoutNano, 5e9);
  const params = bootstrap.BootstrapParams.decode(
    encodeMessage(bootstrap.BootstrapParams, {
      instanceId: "c1",
      namespace: "k8s.io",
      logLevel: bootstrap.LogLevel.LOG_LEVEL_DEBUG,
      socketDir: "",
    }),
  );
  assert.equal(params.logLevel, -4);
  // proto3 `optional`: an explicitly empty socket_dir is present on the wire
  assert.equal(params.socketDir, "");
  assert.ok(bootstrap.BootstrapParams.decode(new Uint8Array()).socketDir == null);
});

Deno.test("loading the codecs module builds no Task message codec: each is built on its method's first call", async () => {
  // A fresh process: this test file's own imports may already have used some codecs.
  const mod = JSON.stringify(new URL("./mod.ts", import.meta.url).href);
  const script = `
    import { task, taskMethods } from ${mod};
    const built = () => Object.keys(task).filter((k) => !Object.getOwnPropertyDescriptor(task, k).get);
    const before = built();
    taskMethods.State.request.decode(new Uint8Array());
    console.log(JSON.stringify({ before, after: built() }));
  `;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", "--ext=ts", script], stdout: "piped" }).output();
  assert.equal(out.code, 0);
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.deepEqual(r.before, [], "message codecs built while the module loaded");
  assert.deepEqual(r.after, ["StateRequest"]);
});
