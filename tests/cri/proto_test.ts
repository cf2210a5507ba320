/**
 * `proto/cri/runtime/v1/api.proto` is a hand-written subset of the CRI v1 API. Its field numbers and types are checked
 * here against the authority on this host: the `runtime.v1` FileDescriptorProto that containerd 1.6 carries in its own
 * binary (gogo-protobuf registers every .proto file as gzipped descriptor bytes). Every message, field, enum value and
 * RPC of the subset must exist there with the same number, type and label; a typo in a field number fails this test.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { constants, gunzipSync } from "node:zlib";
import * as protoLoader from "@grpc/proto-loader";
import { CRI_PROTO, LOADER_OPTIONS } from "./client.ts";

const CONTAINERD = "/usr/bin/containerd";
/** compress/gzip's header with mtime 0, XFL 2 (best compression, what gogo uses) and OS 255. */
const GZIP_HEADER = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0x02, 0xff];
/** A FileDescriptorProto starts with name=1 "api.proto" and package=2 "runtime.v1". */
const FILE_PREFIX = new TextEncoder().encode("\n\tapi.proto\x12\nruntime.v1");

function startsWith(b: Uint8Array, prefix: Uint8Array): boolean {
  return b.length >= prefix.length && prefix.every((x, i) => b[i] === x);
}

/** The runtime.v1 FileDescriptorProto embedded in `binary`, or null. */
async function embeddedDescriptor(binary: string): Promise<Uint8Array | null> {
  const data = await Deno.readFile(binary);
  for (let i = data.indexOf(GZIP_HEADER[0]); i >= 0; i = data.indexOf(GZIP_HEADER[0], i + 1)) {
    if (!GZIP_HEADER.every((x, k) => data[i + k] === x)) continue;
    let out: Uint8Array;
    try {
      // A generous window; SYNC_FLUSH tolerates a window that ends inside the member, the member's end stops it.
      out = gunzipSync(data.subarray(i, i + (1 << 20)), { finishFlush: constants.Z_SYNC_FLUSH });
    } catch {
      continue; // not gzip after all
    }
    if (startsWith(out, FILE_PREFIX)) return out;
  }
  return null;
}

/** A FileDescriptorSet holding one file (field 1, length-delimited). */
function descriptorSet(file: Uint8Array): Uint8Array {
  const len: number[] = [];
  for (let n = file.length;; n >>>= 7) {
    if (n < 0x80) {
      len.push(n);
      break;
    }
    len.push((n & 0x7f) | 0x80);
  }
  const out = new Uint8Array(1 + len.length + file.length);
  out.set([0x0a, ...len]);
  out.set(file, 1 + len.length);
  return out;
}

interface FieldDescriptor {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}
interface MessageDescriptor {
  name: string;
  field: FieldDescriptor[];
  nestedType: MessageDescriptor[];
  options: { mapEntry?: boolean } | null;
}
interface EnumDescriptor {
  name: string;
  value: { name: string; number: number }[];
}

function isMessage(d: protoLoader.AnyDefinition): d is protoLoader.MessageTypeDefinition<object, object> {
  return (d as protoLoader.MessageTypeDefinition<object, object>).format === "Protocol Buffer 3 DescriptorProto";
}
function isEnum(d: protoLoader.AnyDefinition): d is protoLoader.EnumTypeDefinition {
  return (d as protoLoader.EnumTypeDefinition).format === "Protocol Buffer 3 EnumDescriptorProto";
}

/** A field's type as comparable text: maps become `map<k,v>` (protobufjs names the entry types differently). */
function fieldType(msg: MessageDescriptor, f: FieldDescriptor): string {
  const entry = msg.nestedType.find((n) => n.name === f.typeName && n.options?.mapEntry);
  if (entry) return `map<${entry.field.map((e) => e.typeName || e.type).join(",")}>`;
  return `${f.label} ${f.type} ${f.typeName}`;
}

/**
 * Throws (an AssertionError naming the culprit) unless every message, field, enum value and RPC of `ours` exists in
 * `theirs` with the same number and type. Returns how many fields were compared.
 */
function assertSubset(ours: protoLoader.PackageDefinition, theirs: protoLoader.PackageDefinition): number {
  let fields = 0;
  for (const [name, def] of Object.entries(ours)) {
    const other = theirs[name];
    assert.ok(other, `${name} is not in containerd's runtime.v1`);
    if (isMessage(def)) {
      assert.ok(isMessage(other), `${name} is a message in our proto only`);
      const mine = def.type as unknown as MessageDescriptor, real = other.type as unknown as MessageDescriptor;
      for (const f of mine.field) {
        const g = real.field.find((x) => x.name === f.name);
        assert.ok(g, `${name}.${f.name} does not exist upstream`);
        assert.equal(f.number, g.number, `${name}.${f.name}: field number`);
        assert.equal(fieldType(mine, f), fieldType(real, g), `${name}.${f.name}: type`);
        fields++;
      }
    } else if (isEnum(def)) {
      assert.ok(isEnum(other), `${name} is an enum in our proto only`);
      const real = (other.type as unknown as EnumDescriptor).value;
      for (const v of (def.type as unknown as EnumDescriptor).value) {
        assert.equal(real.find((x) => x.name === v.name)?.number, v.number, `${name}.${v.name}: enum number`);
      }
    } else {
      // A service: every RPC exists upstream with the same path and message types.
      const mine = def as protoLoader.ServiceDefinition, real = other as protoLoader.ServiceDefinition;
      const typeName = (t: protoLoader.MessageTypeDefinition<object, object>) => (t.type as { name: string }).name;
      for (const [rpc, m] of Object.entries(mine)) {
        assert.ok(real[rpc], `${name}/${rpc} does not exist upstream`);
        assert.equal(m.path, real[rpc].path);
        assert.equal(typeName(m.requestType), typeName(real[rpc].requestType), `${rpc} request`);
        assert.equal(typeName(m.responseType), typeName(real[rpc].responseType), `${rpc} response`);
      }
    }
  }
  return fields;
}

const embedded = await embeddedDescriptor(CONTAINERD).catch(() => null);
const containerdDefinition = () =>
  protoLoader.loadFileDescriptorSetFromBuffer(
    Buffer.from(descriptorSet(embedded!)),
    LOADER_OPTIONS,
  );

Deno.test({
  name: "the CRI subset matches the runtime.v1 descriptor embedded in containerd",
  ignore: embedded === null,
  fn() {
    const fields = assertSubset(protoLoader.loadSync(CRI_PROTO, LOADER_OPTIONS), containerdDefinition());
    assert.ok(fields > 100, `only ${fields} fields compared`);
  },
});

Deno.test({
  name: "the comparison catches a wrong field number and a wrong type",
  ignore: embedded === null,
  async fn() {
    const text = await Deno.readTextFile(CRI_PROTO);
    const dir = await Deno.makeTempDir({ prefix: "cri-proto-" });
    try {
      for (
        const [from, to, culprit] of [
          ["string log_path = 11;", "string log_path = 20;", /ContainerConfig\.log_path: field number/],
          ["int32 exit_code = 3;", "int64 exit_code = 3;", /ExecSyncResponse\.exit_code: type/],
        ] as const
      ) {
        assert.ok(text.includes(from), `the proto no longer has ${from}`);
        const path = `${dir}/api.proto`;
        await Deno.writeTextFile(path, text.replace(from, to));
        assert.throws(() => assertSubset(protoLoader.loadSync(path, LOADER_OPTIONS), containerdDefinition()), culprit);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
