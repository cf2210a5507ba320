/**
 * Runtime options from a Create request's Any: `containerd.runc.v1.Options`, the legacy
 * `containerd.linux.runc.CreateOptions`/`RuncOptions`, or CRI's generic `runtimeoptions.v1.Options`.
 *
 * @module
 */
import { type AnyFields, decodeAny } from "../proto/any.ts";
import { errInvalidArgument } from "./errors.ts";
import { defaultOptions, type RuncOptions } from "./options.ts";

/** Decodes a Create request's options Any; an empty Any means defaults. */
export function optionsFromAny(any: AnyFields | null | undefined): RuncOptions {
  const o = defaultOptions();
  if (!any || !any.type_url) return o;
  let decoded;
  try {
    decoded = decodeAny(any);
  } catch (err) {
    throw errInvalidArgument(`unsupported runtime options: ${(err as Error).message}`);
  }
  switch (decoded.typeUrl) {
    case "containerd.runc.v1.Options": {
      const m = decoded.message;
      applyShared(o, m);
      o.binaryName = m.binaryName ?? "";
      o.root = m.root ?? "";
      o.systemdCgroup = !!m.systemdCgroup;
      return o;
    }
    case "containerd.linux.runc.CreateOptions":
      applyShared(o, decoded.message);
      return o;
    case "containerd.linux.runc.RuncOptions": {
      const m = decoded.message;
      o.binaryName = m.runtime ?? "";
      o.root = m.runtimeRoot ?? "";
      o.systemdCgroup = !!m.systemdCgroup;
      return o;
    }
    case "runtimeoptions.v1.Options":
      o.configPath = decoded.message.configPath ?? "";
      return o;
    default:
      throw errInvalidArgument(`unsupported runtime options type ${decoded.typeUrl}`);
  }
}

/** The fields `containerd.runc.v1.Options` and the legacy `CreateOptions` share, with the same meaning. */
interface SharedOptionFields {
  noPivotRoot?: boolean | null;
  noNewKeyring?: boolean | null;
  shimCgroup?: string | null;
  ioUid?: number | null;
  ioGid?: number | null;
  criuImagePath?: string | null;
  criuWorkPath?: string | null;
}

function applyShared(o: RuncOptions, m: SharedOptionFields): void {
  o.noPivotRoot = !!m.noPivotRoot;
  o.noNewKeyring = !!m.noNewKeyring;
  o.shimCgroup = m.shimCgroup ?? "";
  o.ioUid = m.ioUid ?? 0;
  o.ioGid = m.ioGid ?? 0;
  o.criuImagePath = m.criuImagePath ?? "";
  o.criuWorkPath = m.criuWorkPath ?? "";
}
