/**
 * The runtime of the generated codecs (`gen/shim.js`): message classes, enums and namespaces built on first access
 * from a compact schema table that `deno task gen` writes, with one table-driven encoder and decoder for every
 * message instead of pbjs' static code (572 KB of it for 88 messages, all compiled and kept by every server).
 *
 * The encoder and decoder do, field kind by field kind, what the code protobufjs 8.8 generates does (`pbjs -t
 * static-module`, the previous form of `gen/shim.js`), on protobufjs' own Reader and Writer: fields in id order,
 * proto3 defaults left out (and deleted when decoded), presence fields (messages, proto3 `optional`) written when set,
 * packed repeated scalars read packed or not, map entries key then value, unknown fields kept in `$unknowns` and
 * written back, the same depth limit and errors. So the bytes on the wire are the same (tests/wire_compat_test.ts and
 * src/proto/runtime_test.ts compare them).
 *
 * Schema table, one entry per namespace, message or enum (see `tools/gen.ts`):
 * - a namespace: `{ n: { Child: entry, … } }`;
 * - a message: `{ m: "field;field;…", o?: "oneof=field,field;…", n?: { nested } }`, each field
 *   `<name> <id> <kind>` where kind is a scalar type (`string`, `bool`, `int32`, `uint32`, `int64`, `uint64`, `bytes`),
 *   `enum`, `.full.Name` for a message, or `map`/`string`/`string` for `map<string, string>`, prefixed with `*` for
 *   repeated, `+` for packed repeated and `?` for proto3 `optional`;
 * - an enum: `{ e: "NAME=0,OTHER=1" }`.
 *
 * @module
 */
import $protobuf from "protobufjs/minimal";

// 64-bit fields are plain numbers and bytes are Uint8Arrays: set before any codec exists (prototype defaults and the
// reader's and writer's buffer types are fixed by configure()).
$protobuf.util.Long = undefined as never;
$protobuf.util.Buffer = null as never;
$protobuf.configure();
// The stand-in src/shim/node_globals.ts gives protobufjs so that it never evaluates the `long` package: done with.
const g = globalThis as { dcodeIO?: { Long?: { name?: string } } };
if (g.dcodeIO?.Long?.name === "LongStandIn") delete g.dcodeIO;

const { Reader, Writer, util } = $protobuf;
const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** One entry of the schema table. */
export type SchemaEntry = { n?: Record<string, SchemaEntry>; m?: string; o?: string; e?: string };

type Scalar = "string" | "bool" | "int32" | "uint32" | "int64" | "uint64" | "bytes";
const SCALARS = new Set<string>(["string", "bool", "int32", "uint32", "int64", "uint64", "bytes"]);
const WIRE: Record<Scalar, number> = { string: 2, bytes: 2, bool: 0, int32: 0, uint32: 0, int64: 0, uint64: 0 };

interface Field {
  name: string;
  id: number;
  /** Scalar type, "enum" (read and written as int32), or "message". */
  kind: Scalar | "enum" | "message";
  /** Full name of a message field's type. */
  type?: string;
  rule: "single" | "repeated" | "packed" | "optional" | "map";
  /** The oneof a proto3 optional field is part of. */
  oneof?: string;
}

// deno-lint-ignore no-explicit-any
type Msg = any;
interface MessageClass {
  new (properties?: Msg): Msg;
  create(properties?: Msg): Msg;
  encode(message: Msg, writer?: $protobuf.Writer, depth?: number): $protobuf.Writer;
  decode(reader: $protobuf.Reader | Uint8Array, length?: number, end?: number, depth?: number, target?: Msg): Msg;
  getTypeUrl(prefix?: string): string;
}

function parseFields(spec: string, where: string): Field[] {
  const fields: Field[] = [];
  for (const part of spec ? spec.split(";") : []) {
    const [name, id, rawKind] = part.split(" ");
    let kind = rawKind;
    let rule: Field["rule"] = "single";
    const prefix = ({ "*": "repeated", "+": "packed", "?": "optional" } as const)[kind[0] as "*" | "+" | "?"];
    if (prefix) {
      rule = prefix;
      kind = kind.slice(1);
    }
    if (rule === "optional" && kind.startsWith(".")) {
      throw new Error(`schema table: optional message field ${where}.${name} is not supported`);
    }
    if (kind === "map/string/string") {
      fields.push({ name, id: Number(id), kind: "string", rule: "map" });
    } else if (kind.startsWith(".")) {
      fields.push({ name, id: Number(id), kind: "message", type: kind.slice(1), rule });
    } else if (kind === "enum" || SCALARS.has(kind)) {
      fields.push({ name, id: Number(id), kind: kind as Field["kind"], rule });
    } else {
      throw new Error(`schema table: field ${where}.${name} has unknown kind ${rawKind}`);
    }
  }
  return fields.sort((a, b) => a.id - b.id);
}

/** The proto3 default a scalar field is left out of the wire at. */
function isDefault(kind: Field["kind"], v: Msg): boolean {
  switch (kind) {
    case "string":
      return v === "";
    case "bool":
      return v === false;
    case "bytes":
      return !v.length;
    case "int64":
    case "uint64":
      return typeof v === "object" ? !(v.low || v.high) : v === 0;
    default:
      return v === 0;
  }
}

function writeScalar(w: $protobuf.Writer, kind: Field["kind"], v: Msg): void {
  switch (kind) {
    case "enum":
      w.int32(v);
      return;
    case "string":
      w.string(v);
      return;
    case "bytes":
      w.bytes(v);
      return;
    default:
      (w as unknown as Record<string, (v: unknown) => void>)[kind](v);
  }
}

function readScalar(r: $protobuf.Reader, kind: Field["kind"]): Msg {
  switch (kind) {
    case "enum":
      return r.int32();
    case "string":
      return r.stringVerify();
    case "bytes":
      return r.bytes();
    default:
      return (r as unknown as Record<string, () => unknown>)[kind]();
  }
}

/** A registry of the classes and enums of one schema table, built on first access. */
class Schema {
  readonly #byName = new Map<string, MessageClass>();
  readonly #entries = new Map<string, SchemaEntry>();

  constructor(table: Record<string, SchemaEntry>) {
    const index = (prefix: string, nested: Record<string, SchemaEntry>) => {
      for (const [key, entry] of Object.entries(nested)) {
        const full = prefix ? `${prefix}.${key}` : key;
        this.#entries.set(full, entry);
        if (entry.n) index(full, entry.n);
      }
    };
    index("", table);
  }

  /** The class of message `name` (full name without the leading dot). */
  message(name: string): MessageClass {
    let cls = this.#byName.get(name);
    if (!cls) {
      const entry = this.#entries.get(name);
      if (!entry?.m && entry?.m !== "") throw new Error(`schema table: no message ${name}`);
      cls = this.#build(name, entry);
      this.#byName.set(name, cls);
    }
    return cls;
  }

  /** Namespace, class or enum object for the entry at `name`. */
  value(name: string, entry: SchemaEntry): unknown {
    if (entry.e !== undefined) return enumObject(entry.e);
    if (entry.m !== undefined) return this.message(name);
    const ns = {};
    this.define(ns, name, entry.n ?? {});
    return ns;
  }

  /** Lazy properties on `target` for the nested entries of `prefix`. */
  define(target: object, prefix: string, nested: Record<string, SchemaEntry>): void {
    for (const [key, entry] of Object.entries(nested)) {
      const full = prefix ? `${prefix}.${key}` : key;
      Object.defineProperty(target, key, {
        configurable: true,
        enumerable: true,
        get: () => {
          const value = this.value(full, entry);
          Object.defineProperty(target, key, { value, writable: true, configurable: true, enumerable: true });
          return value;
        },
      });
    }
  }

  #build(fullName: string, entry: SchemaEntry): MessageClass {
    const fields = parseFields(entry.m!, fullName);
    const byId = new Map(fields.map((f) => [f.id, f]));
    // deno-lint-ignore no-this-alias
    const schema = this; // for the encoders and decoders below, which are called with their class as `this`
    const fresh = fields.filter((f) => f.rule === "repeated" || f.rule === "packed" || f.rule === "map");
    const Message = function (this: Msg, properties?: Msg) {
      for (const f of fresh) this[f.name] = f.rule === "map" ? {} : [];
      if (properties) {
        for (let keys = Object.keys(properties), i = 0; i < keys.length; ++i) {
          if (properties[keys[i]] != null && keys[i] !== "__proto__") this[keys[i]] = properties[keys[i]];
        }
      }
    } as unknown as MessageClass;
    const proto = Message.prototype;
    for (const f of fields) {
      if (f.rule === "repeated" || f.rule === "packed") proto[f.name] = util.emptyArray;
      else if (f.rule === "map") proto[f.name] = util.emptyObject;
      else if (f.kind === "message" || f.rule === "optional") proto[f.name] = null;
      else if (f.kind === "bytes") proto[f.name] = util.newBuffer([]);
      else proto[f.name] = f.kind === "string" ? "" : f.kind === "bool" ? false : 0;
    }
    for (const part of entry.o ? entry.o.split(";") : []) {
      const [name, members] = part.split("=");
      const names = members.split(",");
      for (const n of names) byId.get(fields.find((f) => f.name === n)!.id)!.oneof = name;
      Object.defineProperty(proto, name, { get: util.oneOfGetter(names), set: util.oneOfSetter(names) });
    }
    if (entry.n) this.define(Message, fullName, entry.n);

    Message.create = (properties?: Msg) => new Message(properties);
    Message.getTypeUrl = (prefix = "type.googleapis.com") => `${prefix}/${fullName}`;
    Message.encode = (m: Msg, writer?: $protobuf.Writer, depth = 0) => {
      const w = writer ?? Writer.create();
      if (depth > util.recursionLimit) throw Error("max depth exceeded");
      for (const f of fields) {
        const v = m[f.name];
        const tag = (f.id << 3) | (f.kind === "message" ? 2 : f.kind === "enum" ? 0 : WIRE[f.kind as Scalar]);
        switch (f.rule) {
          case "single":
            if (v == null || !hasOwn(m, f.name)) break;
            if (f.kind === "message") {
              schema.message(f.type!).encode(v, w.uint32(tag).fork(), depth + 1).ldelim();
            } else if (!isDefault(f.kind, v)) {
              writeScalar(w.uint32(tag), f.kind, v);
            }
            break;
          case "optional":
            if (v != null && hasOwn(m, f.name)) writeScalar(w.uint32(tag), f.kind, v);
            break;
          case "repeated":
            if (v == null || !v.length) break;
            for (let i = 0; i < v.length; ++i) {
              if (f.kind === "message") schema.message(f.type!).encode(v[i], w.uint32(tag).fork(), depth + 1).ldelim();
              else writeScalar(w.uint32(tag), f.kind, v[i]);
            }
            break;
          case "packed":
            if (v == null || !v.length) break;
            w.uint32((f.id << 3) | 2);
            if (f.kind === "uint64") w.uint64s(v);
            else if (f.kind === "int32" || f.kind === "enum") w.int32s(v);
            else throw new Error(`schema table: packed ${f.kind} is not supported (${fullName}.${f.name})`);
            break;
          case "map":
            if (v == null || !hasOwn(m, f.name)) break;
            for (let keys = Object.keys(v), i = 0; i < keys.length; ++i) {
              w.uint32((f.id << 3) | 2).fork().uint32(10).string(keys[i]).uint32(18).string(v[keys[i]]).ldelim();
            }
            break;
        }
      }
      if (m.$unknowns != null && hasOwn(m, "$unknowns")) {
        for (let i = 0; i < m.$unknowns.length; ++i) w.raw(m.$unknowns[i]);
      }
      return w;
    };
    Message.decode = (input, length, _end, depth = 0, target) => {
      const r = input instanceof Reader ? input : Reader.create(input);
      if (depth > Reader.recursionLimit) throw Error("max depth exceeded");
      let end: number;
      if (length === undefined) end = r.len;
      else {
        end = r.pos + length;
        if (end > r.len) throw RangeError("index out of range");
        length = r.len;
        r.len = end;
      }
      const m = target || new Message();
      while (r.pos < end) {
        const start = r.pos;
        let tag = r.tag();
        if (tag === _end) {
          _end = undefined;
          break;
        }
        const wireType = tag & 7;
        tag >>>= 3;
        const f = byId.get(tag);
        if (f && decodeField(schema, r, m, f, wireType, depth, end)) continue;
        r.skipType(wireType, depth, tag);
        if (!r.discardUnknown) {
          util.makeProp(m, "$unknowns", false);
          (m.$unknowns || (m.$unknowns = [])).push(r.raw(start, r.pos));
        }
      }
      if (length !== undefined) {
        if (r.pos !== end) throw RangeError("index out of range");
        r.len = length;
      }
      if (_end !== undefined) throw Error("missing end group");
      return m;
    };
    return Message;
  }
}

/** Decodes one occurrence of field `f` into `m`; false when the wire type does not fit (kept as unknown). */
function decodeField(
  schema: Schema,
  r: $protobuf.Reader,
  m: Msg,
  f: Field,
  wireType: number,
  depth: number,
  end: number,
): boolean {
  const wire = f.kind === "message" ? 2 : f.kind === "enum" ? 0 : WIRE[f.kind as Scalar];
  if (f.rule === "packed") {
    if (wireType === 2) {
      if (!(m[f.name] && m[f.name].length)) m[f.name] = [];
      if (f.kind === "uint64") r.uint64s(m[f.name]);
      else r.int32s(m[f.name]);
      return true;
    }
    if (wireType !== 0) return false;
    if (!(m[f.name] && m[f.name].length)) m[f.name] = [];
    m[f.name].push(readScalar(r, f.kind));
    return true;
  }
  if (f.rule === "map") {
    if (wireType !== 2) return false;
    if (m[f.name] === util.emptyObject) m[f.name] = {};
    const end2 = r.size() + r.pos;
    if (end2 > r.len) throw RangeError("index out of range");
    r.len = end2;
    let key = "", value = "";
    while (r.pos < end2) {
      let tag2 = r.tag();
      const wt = tag2 & 7;
      tag2 >>>= 3;
      if (tag2 === 1 && wt === 2) key = r.stringVerify();
      else if (tag2 === 2 && wt === 2) value = r.stringVerify();
      else r.skipType(wt, depth, tag2);
    }
    if (r.pos !== end2) throw RangeError("index out of range");
    r.len = end;
    if (key === "__proto__") util.makeProp(m[f.name], key);
    m[f.name][key] = value;
    return true;
  }
  if (wireType !== wire) return false;
  if (f.rule === "repeated") {
    if (!(m[f.name] && m[f.name].length)) m[f.name] = [];
    m[f.name].push(
      f.kind === "message" ? schema.message(f.type!).decode(r, r.size(), undefined, depth + 1) : readScalar(r, f.kind),
    );
    return true;
  }
  if (f.kind === "message") {
    m[f.name] = schema.message(f.type!).decode(r, r.size(), undefined, depth + 1, m[f.name]);
    return true;
  }
  const v = readScalar(r, f.kind);
  if (f.rule === "optional") {
    m[f.name] = v;
    if (f.oneof) m[f.oneof] = f.name;
  } else if (isDefault(f.kind, v)) delete m[f.name];
  else m[f.name] = v;
  return true;
}

/** pbjs' enum object: NAME → value, plus value → NAME on its prototype. */
function enumObject(spec: string): Record<string, number> {
  const valuesById: Record<number, string> = {};
  const values = Object.create(valuesById);
  for (const pair of spec.split(",")) {
    const [name, value] = pair.split("=");
    values[valuesById[Number(value)] = name] = Number(value);
  }
  return values;
}

/** The root namespace object of a schema table: every child built on first access. */
export function schemaRoot(table: Record<string, SchemaEntry>): Record<string, unknown> {
  const schema = new Schema(table);
  const root = {};
  schema.define(root, "", table);
  return root;
}
