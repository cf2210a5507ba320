/**
 * Helpers of `tools/capture-wire.sh`, which records the real bytes containerd 1.6 and its Go runc shim exchange
 * (see tests/fixtures/wire/README.md).
 *
 * - `proxy <listen.sock> <target.sock> <log.jsonl> [--once]`: a unix-socket proxy that forwards bytes unchanged and
 *   logs every ttrpc frame (10-byte header + data) per connection and direction as a JSON line. With `--once` it exits
 *   when its first connection has closed.
 * - `grpc-update <containerd.sock> <namespace> <id>`: calls containerd's Tasks/Update over gRPC (ctr 1.6 cannot), so
 *   that containerd sends the shim an UpdateTaskRequest.
 * - `extract <capture dir> <fixtures dir>`: turns the logs, the `start` stdins and the `delete` stdouts into fixture
 *   files plus `manifest.json`, choosing a few distinct payloads per RPC, event and error.
 *
 * @example
 * ```sh
 * deno run -A tools/capture-wire.ts proxy /tmp/wirelab/p/c1.sock /run/containerd/s/<hex> /tmp/task.c1.jsonl --once
 * deno run -A tools/capture-wire.ts extract /tmp/wirelab/cap tests/fixtures/wire
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import http2 from "node:http2";
import net from "node:net";
import { join } from "node:path";
import { decodeAny, encodeJsonAny, JSON_TYPE_URLS } from "../src/proto/any.ts";
import {
  encodeMessage,
  EVENTS_SERVICE,
  eventsService,
  google,
  task,
  TASK_SERVICE,
  taskMethods,
  ttrpc,
} from "../src/proto/mod.ts";

/** One logged ttrpc frame. */
interface FrameRecord {
  conn: number;
  /** c2s: from the side that connected (containerd for task sockets, the shim for the events socket). */
  dir: "c2s" | "s2c";
  stream: number;
  type: number;
  flags: number;
  /** The frame's data, base64. */
  data: string;
}

/** One manifest entry: a fixture file and what it holds. */
export interface FixtureEntry {
  file: string;
  /** Full protobuf name of the message in the file, or "ttrpc-frame" for a raw frame (header + data). */
  type: string;
  /** Who sent it. */
  from: "containerd" | "shim";
  /** How it travelled: a ttrpc call (service/method), `start` stdin or `delete` stdout. */
  via: string;
  container: string;
  note?: string;
}

const FRAME_HEADER = 10;
const enum FrameType {
  Request = 1,
  Response = 2,
}

/** Splits a byte stream into ttrpc frames. */
class Framer {
  #buf = new Uint8Array(0);
  constructor(private readonly emit: (stream: number, type: number, flags: number, data: Uint8Array) => void) {}

  push(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.#buf.length + chunk.length);
    joined.set(this.#buf);
    joined.set(chunk, this.#buf.length);
    let off = 0;
    while (joined.length - off >= FRAME_HEADER) {
      const view = new DataView(joined.buffer, off);
      const len = view.getUint32(0), stream = view.getUint32(4), type = view.getUint8(8), flags = view.getUint8(9);
      if (joined.length - off < FRAME_HEADER + len) break;
      this.emit(stream, type, flags, joined.slice(off + FRAME_HEADER, off + FRAME_HEADER + len));
      off += FRAME_HEADER + len;
    }
    this.#buf = joined.slice(off);
  }
}

async function pump(src: Deno.UnixConn, dst: Deno.UnixConn, framer: Framer): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await src.read(buf);
      if (n === null) break;
      const chunk = buf.slice(0, n);
      framer.push(chunk);
      for (let off = 0; off < chunk.length;) off += await dst.write(chunk.subarray(off));
    }
  } catch {
    // a reset on either side ends this direction; the other pump notices on its own
  }
  try {
    await dst.closeWrite();
  } catch {
    // already closed
  }
}

async function proxy(listenPath: string, targetPath: string, logPath: string, once: boolean): Promise<void> {
  await Deno.remove(listenPath).catch(() => {});
  const listener = Deno.listen({ transport: "unix", path: listenPath });
  let next = 0;
  const log = (rec: FrameRecord) => Deno.writeTextFileSync(logPath, JSON.stringify(rec) + "\n", { append: true });
  // a guard so a forgotten proxy never outlives the capture run
  const guard = setTimeout(() => Deno.exit(0), 15 * 60 * 1000);
  for await (const client of listener) {
    const conn = ++next;
    const upstream = await Deno.connect({ transport: "unix", path: targetPath });
    const framer = (dir: FrameRecord["dir"]) =>
      new Framer((stream, type, flags, data) =>
        log({ conn, dir, stream, type, flags, data: Buffer.from(data).toString("base64") })
      );
    const done = Promise.all([pump(client, upstream, framer("c2s")), pump(upstream, client, framer("s2c"))])
      .finally(() => {
        client.close();
        upstream.close();
      });
    if (once) {
      await done;
      break;
    }
  }
  clearTimeout(guard);
  listener.close();
  await Deno.remove(listenPath).catch(() => {});
}

/** A request/response pair seen on one connection. */
interface Call {
  container: string;
  service: string;
  method: string;
  request: Uint8Array;
  requestFrame: Uint8Array;
  requestEnvelope: Uint8Array;
  response?: Uint8Array;
  responseFrame?: Uint8Array;
  responseEnvelope?: Uint8Array;
  code: number;
}

function frameBytes(rec: FrameRecord, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  view.setUint32(4, rec.stream);
  view.setUint8(8, rec.type);
  view.setUint8(9, rec.flags);
  out.set(data, FRAME_HEADER);
  return out;
}

async function readCalls(logPath: string, container: string): Promise<Call[]> {
  const calls: Call[] = [];
  const open = new Map<string, Call>();
  const text = await Deno.readTextFile(logPath).catch(() => "");
  for (const line of text.split("\n")) {
    if (!line) continue;
    const rec = JSON.parse(line) as FrameRecord;
    const data = new Uint8Array(Buffer.from(rec.data, "base64"));
    const key = `${rec.conn}/${rec.stream}`;
    if (rec.dir === "c2s" && rec.type === FrameType.Request) {
      const req = ttrpc.Request.decode(data);
      const call: Call = {
        container,
        service: req.service,
        method: req.method,
        request: req.payload ?? new Uint8Array(),
        requestFrame: frameBytes(rec, data),
        requestEnvelope: data,
        code: 0,
      };
      open.set(key, call);
      calls.push(call);
    } else if (rec.dir === "s2c" && rec.type === FrameType.Response) {
      const call = open.get(key);
      if (!call) continue;
      const res = ttrpc.Response.decode(data);
      call.response = res.payload ?? new Uint8Array();
      call.responseEnvelope = data;
      call.responseFrame = frameBytes(rec, data);
      call.code = res.status?.code ?? 0;
      open.delete(key);
    }
  }
  return calls;
}

/** The field numbers present at the top level of a message: the "shape" used to pick distinct samples. */
function shape(bytes: Uint8Array): string {
  const tags = new Set<number>();
  let i = 0;
  const varint = () => {
    let v = 0, mul = 1;
    while (true) {
      if (i >= bytes.length) throw new Error("truncated varint");
      const b = bytes[i++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < bytes.length) {
    const tag = varint();
    tags.add(Math.floor(tag / 8));
    switch (tag & 7) {
      case 0:
        varint();
        break;
      case 1:
        i += 8;
        break;
      case 2: {
        const len = varint(); // not `i += varint()`: that would read i before varint() moves it
        i += len;
        break;
      }
      case 5:
        i += 4;
        break;
      default:
        throw new Error(`unexpected wire type ${tag & 7}`);
    }
  }
  return [...tags].sort((a, b) => a - b).join(",");
}

const MAX_SAMPLES = 4;

async function extract(capDir: string, outDir: string): Promise<void> {
  const entries: FixtureEntry[] = [];
  const seen = new Map<string, Set<string>>();
  const counters = new Map<string, number>();
  // replace what an earlier run wrote; README.md stays
  for (const old of ["task", "events", "ttrpc", "start", "delete", "manifest.json"]) {
    await Deno.remove(join(outDir, old), { recursive: true }).catch(() => {});
  }
  await Deno.mkdir(outDir, { recursive: true });
  /** Writes `bytes` unless `group` already has this shape (or enough samples); returns whether it wrote. */
  const keep = async (group: string, key: string, bytes: Uint8Array, entry: Omit<FixtureEntry, "file">) => {
    const shapes = seen.get(group) ?? new Set();
    seen.set(group, shapes);
    if (shapes.has(key) || shapes.size >= MAX_SAMPLES) return;
    shapes.add(key);
    const n = (counters.get(group) ?? 0) + 1;
    counters.set(group, n);
    const file = `${group}.${n}.bin`;
    await Deno.mkdir(join(outDir, file, ".."), { recursive: true });
    await Deno.writeFile(join(outDir, file), bytes);
    entries.push({ file, ...entry });
  };

  const names: string[] = [];
  for await (const e of Deno.readDir(capDir)) names.push(e.name);
  names.sort();
  const calls: Call[] = [];
  for (const name of names) {
    const m = /^(task|events)\.(.+)\.jsonl$/.exec(name);
    if (m) calls.push(...await readCalls(join(capDir, name), m[1] === "task" ? m[2] : ""));
  }

  for (const call of calls) {
    const via = `${call.service}/${call.method}`;
    if (call.service === TASK_SERVICE) {
      const codecs = taskMethods[call.method as keyof typeof taskMethods];
      if (!codecs) throw new Error(`unknown task method ${call.method}`);
      const reqType = typeName(call.method, "request");
      await keep(`task/${call.method}.request`, shape(call.request), call.request, {
        type: reqType,
        from: "containerd",
        via,
        container: call.container,
      });
      // containerd 1.6 sets a deadline on only some calls (Shutdown, some State): keep one of each kind
      const envelope = ttrpc.Request.decode(call.requestEnvelope);
      const kind = `${envelope.timeoutNano ? "deadline" : "none"}/${envelope.metadata.map((kv) => kv.key).join(",")}`;
      await keep(`ttrpc/Request.${call.method}`, kind, call.requestEnvelope, {
        type: "ttrpc.Request",
        from: "containerd",
        via,
        container: call.container,
      });
      if (call.response === undefined) continue;
      if (call.code !== 0) {
        const status = ttrpc.Response.decode(call.responseEnvelope!).status;
        await keep(`ttrpc/Response.${call.method}.error`, String(call.code), call.responseEnvelope!, {
          type: "ttrpc.Response",
          from: "shim",
          via,
          container: call.container,
          note: `error code ${call.code}: ${status?.message}`,
        });
        continue;
      }
      const resType = typeName(call.method, "response");
      if (resType !== "google.protobuf.Empty") {
        await keep(`task/${call.method}.response`, shape(call.response), call.response, {
          type: resType,
          from: "shim",
          via,
          container: call.container,
        });
      }
      await keep(`ttrpc/Response.${call.method}`, "one", call.responseEnvelope!, {
        type: "ttrpc.Response",
        from: "shim",
        via,
        container: call.container,
      });
      if (call.method === "Create") {
        await keep("ttrpc/frame.request", "one", call.requestFrame, {
          type: "ttrpc-frame",
          from: "containerd",
          via,
          container: call.container,
          note: "a whole frame: 10-byte header (length, stream id, type 1, flags) + ttrpc.Request",
        });
        await keep("ttrpc/frame.response", "one", call.responseFrame!, {
          type: "ttrpc-frame",
          from: "shim",
          via,
          container: call.container,
          note: "a whole frame: 10-byte header (length, stream id, type 2, flags) + ttrpc.Response",
        });
      }
    } else if (call.service === EVENTS_SERVICE && call.method === "Forward") {
      const fwd = eventsService.ForwardRequest.decode(call.request);
      const env = fwd.envelope;
      const event = env?.event?.type_url?.replace(/^containerd\.events\./, "") ?? "unknown";
      await keep(`events/${event}`, shape(env?.event?.value ?? new Uint8Array()), call.request, {
        type: "containerd.services.events.ttrpc.v1.ForwardRequest",
        from: "shim",
        via,
        container: env?.event ? eventContainer(env.event) : "",
        note: `topic ${env?.topic}, event ${env?.event?.type_url}`,
      });
      await keep("ttrpc/Request.Forward", "one", call.requestEnvelope, {
        type: "ttrpc.Request",
        from: "shim",
        via,
        container: "",
      });
      if (call.responseEnvelope) {
        await keep("ttrpc/Response.Forward", String(call.code), call.responseEnvelope, {
          type: "ttrpc.Response",
          from: "containerd",
          via,
          container: "",
        });
      }
    } else {
      throw new Error(`unexpected call ${via}`);
    }
  }

  for (const name of names) {
    const m = /^(start-stdin|delete-stdout)\.(.+)\.bin$/.exec(name);
    if (!m) continue;
    const bytes = await Deno.readFile(join(capDir, name));
    if (m[1] === "start-stdin") {
      await keep("start/stdin", shape(bytes) + "/" + shape(google.protobuf.Any.decode(bytes).value ?? []), bytes, {
        type: "google.protobuf.Any",
        from: "containerd",
        via: "start stdin",
        container: m[2],
      });
    } else {
      await keep("delete/stdout", shape(bytes), bytes, {
        type: "containerd.task.v2.DeleteResponse",
        from: "shim",
        via: "delete stdout",
        container: m[2],
      });
    }
  }

  entries.sort((a, b) => a.file.localeCompare(b.file, "en", { numeric: true }));
  for (const e of entries) {
    const sha = createHash("sha256").update(await Deno.readFile(join(outDir, e.file))).digest("hex");
    Object.assign(e, { sha256: sha });
  }
  await Deno.writeTextFile(join(outDir, "manifest.json"), JSON.stringify({ fixtures: entries }, null, 2) + "\n");
  console.log(`wrote ${entries.length} fixtures to ${outDir}`);
}

/** container_id of a task event (every task event has it as field 1). */
function eventContainer(event: { type_url?: string | null; value?: Uint8Array | null }): string {
  const decoded = decodeAny(event).message as { containerId?: string };
  return decoded.containerId ?? "";
}

/** Full name of the request or response message of a Task RPC. */
function typeName(method: string, dir: "request" | "response"): string {
  const special: Record<string, [string, string]> = {
    Create: ["CreateTaskRequest", "CreateTaskResponse"],
    Exec: ["ExecProcessRequest", ""],
    Checkpoint: ["CheckpointTaskRequest", ""],
    Update: ["UpdateTaskRequest", ""],
  };
  const empty = ["Pause", "Resume", "Checkpoint", "Kill", "Exec", "ResizePty", "CloseIO", "Update", "Shutdown"];
  if (dir === "response" && empty.includes(method)) return "google.protobuf.Empty";
  const [req, res] = special[method] ?? [`${method}Request`, `${method}Response`];
  return `containerd.task.v2.${dir === "request" ? req : res}`;
}

/**
 * Calls containerd's gRPC `containerd.services.tasks.v1.Tasks/Update` (ctr 1.6 has no `task update`), so that
 * containerd sends the shim an UpdateTaskRequest. The tasks service request has the shim request's layout
 * (container_id=1, resources=2, annotations=3), so the shim codec encodes it.
 */
async function grpcUpdate(sock: string, namespace: string, id: string): Promise<void> {
  const resources = { cpu: { shares: 512 }, pids: { limit: 64 } };
  const body = encodeMessage(task.UpdateTaskRequest, {
    id,
    resources: encodeJsonAny(JSON_TYPE_URLS.linuxResources, resources),
    annotations: { "io.example.first": "1", "io.example.second": "two" },
  });
  const frame = new Uint8Array(5 + body.length); // gRPC message prefix: uncompressed flag + big-endian length
  new DataView(frame.buffer).setUint32(1, body.length);
  frame.set(body, 5);
  const client = http2.connect("http://localhost", { createConnection: () => net.connect(sock) });
  try {
    const status = await new Promise<string>((resolve, reject) => {
      const req = client.request({
        ":method": "POST",
        ":path": "/containerd.services.tasks.v1.Tasks/Update",
        "content-type": "application/grpc",
        te: "trailers",
        "containerd-namespace": namespace,
      });
      let status = "";
      req.on("response", (h: Record<string, string>) => status = h["grpc-status"] ?? status);
      req.on("trailers", (t: Record<string, string>) => status = `${t["grpc-status"]} ${t["grpc-message"] ?? ""}`);
      req.on("data", () => {});
      req.on("end", () => resolve(status));
      req.on("error", reject);
      req.end(frame);
    });
    console.log(`Tasks/Update ${id}: grpc-status ${status}`);
  } finally {
    client.close();
  }
}

if (import.meta.main) {
  const [cmd, ...args] = Deno.args;
  if (cmd === "proxy" && args.length >= 3) {
    await proxy(args[0], args[1], args[2], args.includes("--once"));
  } else if (cmd === "grpc-update" && args.length === 3) {
    await grpcUpdate(args[0], args[1], args[2]);
  } else if (cmd === "extract" && args.length === 2) {
    await extract(args[0], args[1]);
  } else {
    console.error(
      "usage: capture-wire.ts proxy <listen> <target> <log.jsonl> [--once] | grpc-update <containerd.sock> <ns> <id>" +
        " | extract <capdir> <outdir>",
    );
    Deno.exit(2);
  }
}
