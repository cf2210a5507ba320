/**
 * What containerd writes on `start`'s stdin, decoded without protobufjs (see wire.ts):
 * - 1.6 … 2.2: a `google.protobuf.Any` of the runtime options, or nothing;
 * - 2.3+: a `containerd.runtime.bootstrap.v1.BootstrapParams`, recognised as containerd's own compat code does:
 *   it decodes as BootstrapParams *and* its instance_id/namespace equal `-id`/`-namespace` (an Any would otherwise
 *   decode too, its type_url and value lining up with fields 1 and 2).
 *
 * @module
 */
import { readFields, stringFields } from "./wire.ts";

export const RUNC_OPTIONS_URL = "containerd.runc.v1.Options";
export const LEGACY_CREATE_OPTIONS_URL = "containerd.linux.runc.CreateOptions";
export const CRI_RUNTIME_OPTIONS_URL = "runtimeoptions.v1.Options";

/** The parts of `start`'s input that `start` itself acts on. */
export interface StartInput {
  /** Options.shim_cgroup: the cgroup the server is moved into. */
  shimCgroup?: string;
  /** CRI's generic runtime options for non-runc runtimes: where our config file is. */
  configPath?: string;
  /** Present when containerd 2.3+ sent BootstrapParams: the answer must then be a BootstrapResult. */
  bootstrap?: BootstrapParams;
  /** BootstrapParams.socket_dir. */
  socketDir?: string;
}

/** containerd.runtime.bootstrap.v1.BootstrapParams, the fields we use. */
export interface BootstrapParams {
  instanceId: string;
  namespace: string;
  logLevel: number;
  containerdVersion: string;
  ttrpcAddress: string;
  grpcAddress: string;
  containerdBinary: string;
  socketDir?: string;
  extensions: { typeUrl: string; value: Uint8Array }[];
}

function decodeAny(b: Uint8Array): { typeUrl: string; value: Uint8Array } {
  let typeUrl = "", value: Uint8Array = new Uint8Array();
  for (const f of readFields(b)) {
    if (f.field === 1 && f.bytes) typeUrl = new TextDecoder().decode(f.bytes);
    if (f.field === 2 && f.bytes) value = f.bytes;
  }
  return { typeUrl, value };
}

function tryBootstrap(b: Uint8Array, id: string, ns: string): BootstrapParams | undefined {
  try {
    const p: BootstrapParams = {
      instanceId: "",
      namespace: "",
      logLevel: 0,
      containerdVersion: "",
      ttrpcAddress: "",
      grpcAddress: "",
      containerdBinary: "",
      extensions: [],
    };
    const utf8 = new TextDecoder("utf-8", { fatal: true });
    for (const f of readFields(b)) {
      const s = () => utf8.decode(f.bytes);
      switch (f.field) {
        case 1:
          p.instanceId = s();
          break;
        case 2:
          p.namespace = s();
          break;
        case 3:
          p.logLevel = (f.varint ?? 0) > 2 ** 31 ? (f.varint ?? 0) - 2 ** 64 : f.varint ?? 0;
          break;
        case 4:
          p.containerdVersion = s();
          break;
        case 5:
          p.ttrpcAddress = s();
          break;
        case 6:
          p.grpcAddress = s();
          break;
        case 7:
          p.containerdBinary = s();
          break;
        case 8: {
          // Extension{value=1 Any}
          for (const g of readFields(f.bytes ?? new Uint8Array())) {
            if (g.field === 1 && g.bytes) p.extensions.push(decodeAny(g.bytes));
          }
          break;
        }
        case 9:
          p.socketDir = s();
          break;
      }
    }
    return p.instanceId === id && p.namespace === ns ? p : undefined;
  } catch {
    return undefined;
  }
}

function applyOptionsAny(out: StartInput, any: { typeUrl: string; value: Uint8Array }): void {
  if (any.typeUrl === RUNC_OPTIONS_URL) {
    const f = stringFields(any.value);
    if (f.get(3)) out.shimCgroup = f.get(3);
  } else if (any.typeUrl === LEGACY_CREATE_OPTIONS_URL) {
    const f = stringFields(any.value);
    if (f.get(9)) out.shimCgroup = f.get(9);
  } else if (any.typeUrl === CRI_RUNTIME_OPTIONS_URL) {
    const f = stringFields(any.value);
    if (f.get(2)) out.configPath = f.get(2);
  }
}

/** Decodes stdin; unknown or malformed option types are ignored as the Go shim ignores them in `start`. */
export function decodeStartInput(stdin: Uint8Array, id: string, namespace: string): StartInput {
  const out: StartInput = {};
  if (stdin.length === 0) return out;
  const bootstrap = tryBootstrap(stdin, id, namespace);
  if (bootstrap) {
    out.bootstrap = bootstrap;
    if (bootstrap.socketDir) out.socketDir = bootstrap.socketDir;
    for (const ext of bootstrap.extensions) applyOptionsAny(out, ext);
    return out;
  }
  try {
    applyOptionsAny(out, decodeAny(stdin));
  } catch {
    // not an Any either: containerd sends nothing else, so treat as no options
  }
  return out;
}
