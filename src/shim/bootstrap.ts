/**
 * What `start` prints, by what the calling containerd understands:
 * - 2.3+ (it sent BootstrapParams on stdin): a protobuf `containerd.runtime.bootstrap.v1.BootstrapResult`
 *   {version=2, address, protocol="ttrpc"};
 * - otherwise the plain `unix://…` address every version since 1.x accepts.
 * - with `startOutput: "json"` (or Task API version 3) in the shim config, JSON `{"version":N,"address":…}`.
 * Version 2 is the default: 3 makes containerd 2.x stop calling `start` for pod containers (see the protocol
 * reference A.5), and both Task service names are served anyway.
 *
 * @module
 */
import { WireWriter } from "./wire.ts";

/** The task API version reported to containerd 2.x. */
export const REPORTED_API_VERSION = 2;

/** Encodes BootstrapResult{version=1, address=2, protocol=3}. */
export function encodeBootstrapResult(address: string, version = REPORTED_API_VERSION, protocol = "ttrpc"): Uint8Array {
  return new WireWriter().uint(1, version).bytes(2, address).bytes(3, protocol).finish();
}

/** The bytes `start` writes to stdout. */
export function output(
  result: { address: string; bootstrap?: boolean; format?: "plain" | "json"; version?: 2 | 3 },
): Uint8Array {
  const version = result.version ?? REPORTED_API_VERSION;
  if (result.bootstrap) return encodeBootstrapResult(result.address, version);
  if (result.format === "json" || version !== 2) {
    return new TextEncoder().encode(JSON.stringify({ version, address: result.address, protocol: "ttrpc" }));
  }
  return new TextEncoder().encode(result.address);
}
