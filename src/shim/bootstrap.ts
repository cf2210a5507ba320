/**
 * What `start` prints, by what the calling containerd understands (the version is chosen in start.ts):
 * - 2.3+ (it sent BootstrapParams on stdin): a protobuf `containerd.runtime.bootstrap.v1.BootstrapResult`
 *   {version, address, protocol="ttrpc"};
 * - Task API version 3 (containerd 2.0–2.2), or `startOutput: "json"`: JSON `{"version":N,"address":…}`;
 * - otherwise the plain `unix://…` address every version since 1.x accepts (Task API version 2).
 * Both Task service names are served whatever was reported.
 *
 * @module
 */
import { WireWriter } from "./wire.ts";

/** The Task API version a plain address stands for, and the default of the encoders here. */
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
