/**
 * `containerd-shim-deno-v2 -info`: containerd 2.x reads a protobuf `containerd.types.RuntimeInfo` from stdout to
 * learn the runtime's name, version and OCI features (CRI decides user-namespace and recursive read-only mount
 * support from it). stdin may carry the runtime options as an Any (they name the runc binary).
 *
 * @module
 */
import { encodeMessage, types } from "../proto/mod.ts";
import { type AnyFields, decodeAny, encodeJsonAny } from "../proto/any.ts";
import { Runc } from "../runc/mod.ts";
import { RUNTIME_NAME, VERSION } from "../version.ts";
import { DEFAULT_RUNC_ROOT } from "../task/options.ts";

export const FEATURES_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

async function readAll(r: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(r).arrayBuffer());
}

/** Builds the RuntimeInfo bytes. */
export async function runtimeInfo(stdin: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const raw = await readAll(stdin);
  let options: AnyFields | undefined;
  let binary = "runc";
  if (raw.length > 0) {
    options = (await import("../proto/mod.ts")).Any.decode(raw);
    const decoded = decodeAny(options);
    if (decoded.typeUrl === "containerd.runc.v1.Options" && decoded.message.binaryName) {
      binary = decoded.message.binaryName;
    }
  }
  const features = await new Runc({ binary, root: DEFAULT_RUNC_ROOT }).features();
  return encodeMessage(types.RuntimeInfo, {
    name: RUNTIME_NAME,
    version: { version: VERSION, revision: "" },
    options: options ? { type_url: options.type_url ?? "", value: options.value ?? new Uint8Array() } : undefined,
    features: features ? encodeJsonAny(FEATURES_TYPE_URL, features) : undefined,
    annotations: {},
  });
}
