/**
 * The table-driven codecs (runtime.ts, what gen/shim.js builds) against the code protobufjs generates for the same
 * schema (`pbjs -t static-module`, the previous gen/shim.js), message by message: the same bytes for messages with
 * every field set, with every field at its default, and empty; and the same decoded result (own fields, prototype
 * defaults, unknown fields) for those bytes and for crafted ones: unknown fields, wrong wire types, packed fields sent
 * unpacked, defaults on the wire, map entries without key or value, truncated input.
 */
import assert from "node:assert/strict";
import protobuf from "protobufjs";
import { pbjsOutputs } from "../../tools/gen.ts";
import * as lazy from "./gen/shim.js";
import { schemaRoot } from "./runtime.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const dir = await Deno.makeTempDir({ prefix: "runtime-test-" });
const out = await pbjsOutputs(dir);
const staticCodecs: Record<string, Any> = await import(new URL(`file://${out.staticJs}`).href);
const schema = protobuf.Root.fromJSON(JSON.parse(await Deno.readTextFile(out.json)));
schema.resolveAll();
await Deno.remove(dir, { recursive: true });

const types: protobuf.Type[] = [];
const walk = (ns: protobuf.NamespaceBase) => {
  for (const c of ns.nestedArray) {
    if (c instanceof protobuf.Type) types.push(c);
    if (c instanceof protobuf.Namespace || c instanceof protobuf.Type) walk(c);
  }
};
walk(schema);

function lookup(root: Record<string, Any>, fullName: string): Any {
  return fullName.slice(1).split(".").reduce((o, k) => o[k], root);
}

/** A value for every field of `t` (non-default), nested messages `depth` deep. */
function sample(t: protobuf.Type, depth = 2, seed = 1): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of t.fieldsArray) {
    const one = (i: number): unknown => {
      if (f.resolvedType instanceof protobuf.Type) return depth > 0 ? sample(f.resolvedType, depth - 1, seed + i) : {};
      if (f.resolvedType instanceof protobuf.Enum) return Object.values(f.resolvedType.values).at(-1);
      switch (f.type) {
        case "string":
          return `${f.name}-${seed + i}-é☃`;
        case "bool":
          return true;
        case "bytes":
          return new Uint8Array([seed, i, 255]);
        case "int32":
          return -(seed + i) * 1000;
        case "int64":
          return -(seed + i) * 2 ** 40;
        default:
          return (seed + i) * (f.type.endsWith("64") ? 2 ** 40 : 7);
      }
    };
    if (f instanceof protobuf.MapField) out[f.name] = { a: `x${seed}`, "": "empty key", b: "" };
    else if (f.repeated) out[f.name] = [one(0), one(1), one(2)];
    else out[f.name] = one(0);
  }
  return out;
}

/** Every field at its proto3 default, set explicitly (own properties). */
function defaults(t: protobuf.Type): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of t.fieldsArray) {
    if (f instanceof protobuf.MapField) out[f.name] = {};
    else if (f.repeated) out[f.name] = [];
    else if (f.resolvedType instanceof protobuf.Type) out[f.name] = {};
    else if (f.resolvedType instanceof protobuf.Enum) out[f.name] = 0;
    else out[f.name] = { string: "", bool: false, bytes: new Uint8Array() }[f.type as "string"] ?? 0;
  }
  return out;
}

/** A decoded message as plain data: own fields, the prototype's value of every schema field, and `$unknowns`. */
function plain(t: protobuf.Type, m: Any): unknown {
  const o: Record<string, unknown> = { own: Object.keys(m).sort() };
  if (m.$unknowns) o.$unknowns = m.$unknowns;
  for (const f of t.fieldsArray) {
    const v = m[f.name];
    if (f.resolvedType instanceof protobuf.Type && !(f instanceof protobuf.MapField)) {
      const sub = f.resolvedType;
      o[f.name] = f.repeated ? v.map((x: Any) => plain(sub, x)) : v === null ? null : plain(sub, v);
    } else if (f instanceof protobuf.MapField) {
      o[f.name] = Object.getOwnPropertyNames(v).sort().map((k) => [k, Object.getOwnPropertyDescriptor(v, k)?.value]);
    } else o[f.name] = v instanceof Uint8Array ? [...v] : Array.isArray(v) ? [...v] : v;
  }
  for (const oneof of t.oneofsArray) o[oneof.name] = m[oneof.name];
  return o;
}

function encodeBoth(t: protobuf.Type, message: unknown): Uint8Array {
  const a = lookup(staticCodecs, t.fullName).encode(message).finish();
  const b = lookup(lazy, t.fullName).encode(message).finish();
  assert.deepEqual([...b], [...a], `${t.fullName}: encodings differ for ${JSON.stringify(message)}`);
  return a;
}

/** Decodes with both, from the bytes and from a Reader that keeps unknown fields (protobufjs drops them by default). */
function decodeBoth(t: protobuf.Type, bytes: Uint8Array, what: string): void {
  for (const keepUnknown of [false, true]) {
    const input = () => {
      if (!keepUnknown) return bytes;
      const r = protobuf.Reader.create(bytes);
      r.discardUnknown = false;
      return r;
    };
    let a: unknown, b: unknown, ea: unknown, eb: unknown;
    try {
      a = plain(t, lookup(staticCodecs, t.fullName).decode(input()));
    } catch (e) {
      ea = String(e);
    }
    try {
      b = plain(t, lookup(lazy, t.fullName).decode(input()));
    } catch (e) {
      eb = String(e);
    }
    const how = `${t.fullName} (${what}${keepUnknown ? ", unknown fields kept" : ""})`;
    assert.deepEqual(eb, ea, `${how}: errors differ`);
    assert.deepEqual(b, a, `${how}: decoded messages differ`);
  }
}

/** `bytes` with field `id` re-sent with wire type `wt` (a varint 1 or a length-delimited "x"). */
function withField(bytes: Uint8Array, id: number, wt: 0 | 2): Uint8Array {
  const w = protobuf.Writer.create();
  w.bytes(bytes);
  const raw = w.finish().subarray(1 + (bytes.length >= 128 ? 1 : 0) + (bytes.length >= 16384 ? 1 : 0));
  const extra = protobuf.Writer.create().uint32((id << 3) | wt);
  if (wt === 0) extra.uint32(1);
  else extra.string("x");
  return new Uint8Array([...raw, ...extra.finish()]);
}

Deno.test("the schema covers every message (88) and the lazy root names them all", () => {
  assert.ok(types.length >= 88, `${types.length} messages`);
  for (const t of types) {
    assert.equal(lookup(lazy, t.fullName).getTypeUrl(), `type.googleapis.com/${t.fullName.slice(1)}`);
  }
});

Deno.test("every message encodes to the same bytes as pbjs' static code: full, defaults, empty", () => {
  for (const t of types) {
    encodeBoth(t, sample(t));
    encodeBoth(t, defaults(t));
    encodeBoth(t, {});
    encodeBoth(t, lookup(lazy, t.fullName).create(sample(t, 1, 9)));
  }
});

Deno.test("every message decodes like pbjs' static code, crafted input included", () => {
  for (const t of types) {
    const full = encodeBoth(t, sample(t));
    decodeBoth(t, full, "full");
    decodeBoth(t, new Uint8Array(), "empty");
    decodeBoth(t, withField(full, 999, 0), "unknown varint");
    decodeBoth(t, withField(full, 1000, 2), "unknown bytes");
    for (const f of t.fieldsArray) {
      decodeBoth(t, withField(full, f.id, 0), `${f.name} as varint`);
      decodeBoth(t, withField(full, f.id, 2), `${f.name} as bytes`);
    }
    if (full.length > 1) decodeBoth(t, full.subarray(0, full.length - 1), "truncated");
  }
});

Deno.test("defaults on the wire, packed fields sent unpacked, map entries without key or value", () => {
  const w = () => protobuf.Writer.create();
  for (const t of types) {
    for (const f of t.fieldsArray) {
      if (f instanceof protobuf.MapField) {
        decodeBoth(t, w().uint32((f.id << 3) | 2).fork().uint32(18).string("v").ldelim().finish(), "no key");
        decodeBoth(t, w().uint32((f.id << 3) | 2).fork().uint32(10).string("k").ldelim().finish(), "no value");
        decodeBoth(t, w().uint32((f.id << 3) | 2).fork().uint32(24).uint32(5).ldelim().finish(), "unknown in entry");
        decodeBoth(t, w().uint32((f.id << 3) | 2).fork().uint32(16).uint32(5).ldelim().finish(), "value as varint");
        const proto = w().uint32((f.id << 3) | 2).fork().uint32(10).string("__proto__").uint32(18).string("p").ldelim();
        decodeBoth(t, proto.finish(), "__proto__ key");
      } else if (f.repeated && !(f.resolvedType instanceof protobuf.Type) && f.type !== "string") {
        decodeBoth(t, w().uint32(f.id << 3).uint32(3).uint32(f.id << 3).uint32(0).finish(), `${f.name} unpacked`);
      } else if (!f.repeated && !(f.resolvedType instanceof protobuf.Type)) {
        const b = w().uint32((f.id << 3) | (["string", "bytes"].includes(f.type) ? 2 : 0));
        decodeBoth(t, (["string", "bytes"].includes(f.type) ? b.uint32(0) : b.uint32(0)).finish(), `${f.name} = 0`);
      }
    }
  }
});

Deno.test("decoding merges into a message field sent twice, and re-encoding keeps unknown fields", () => {
  let merged = 0;
  for (const t of types) {
    for (const f of t.fieldsArray) {
      const sub = f.resolvedType;
      if (f.repeated || !(sub instanceof protobuf.Type) || sub.fieldsArray.length < 2) continue;
      const full = sample(sub, 0);
      const [x, y] = sub.fieldsArray;
      const part = (field: protobuf.Field) =>
        lookup(staticCodecs, sub.fullName).encode({ [field.name]: full[field.name] }).finish();
      const twice = protobuf.Writer.create().uint32((f.id << 3) | 2).bytes(part(x)).uint32((f.id << 3) | 2)
        .bytes(part(y)).uint32(77 << 3).uint32(5).finish();
      decodeBoth(t, twice, `${f.name} twice`);
      const r = () => Object.assign(protobuf.Reader.create(twice), { discardUnknown: false });
      assert.deepEqual([...lookup(lazy, t.fullName).encode(lookup(lazy, t.fullName).decode(r())).finish()], [
        ...lookup(staticCodecs, t.fullName).encode(lookup(staticCodecs, t.fullName).decode(r())).finish(),
      ]);
      merged++;
    }
  }
  assert.ok(merged > 10, `${merged} message fields tried`);
});

Deno.test("fields are written in id order, whatever order the table lists them in", () => {
  const root = schemaRoot({ M: { m: "b 2 string;a 1 string" } }) as Any;
  assert.deepEqual([...root.M.encode({ b: "B", a: "A" }).finish()], [10, 1, 65, 18, 1, 66]);
});

Deno.test("enums are pbjs' objects: NAME → value, and value → NAME through the prototype", () => {
  const ours = lazy.containerd.v1.types.Status as Any, theirs = staticCodecs.containerd.v1.types.Status;
  assert.deepEqual({ ...ours }, { ...theirs });
  assert.equal(ours[ours.RUNNING], "RUNNING");
});

Deno.test("a message class is built on first access only, once", () => {
  const root = schemaRoot({ a: { n: { M: { m: "x 1 string" }, N: { m: "y 1 .a.M" } } } }) as Any;
  const a = root.a;
  assert.equal(typeof Object.getOwnPropertyDescriptor(a, "M")?.get, "function", "built before use");
  const M = a.M;
  assert.equal(Object.getOwnPropertyDescriptor(a, "M")?.value, M);
  assert.equal(a.M, M);
  assert.equal(typeof Object.getOwnPropertyDescriptor(a, "N")?.get, "function", "a sibling was built too");
  assert.deepEqual([...a.N.encode({ y: { x: "hi" } }).finish()], [10, 4, 10, 2, 104, 105]);
});

Deno.test("a schema table with an unknown field kind is refused when its message is built", () => {
  const root = schemaRoot({ B: { m: "x 1 float" } }) as Any;
  assert.throws(() => root.B, /unknown kind float/);
});
