/**
 * What `start` prints, by what the calling containerd understands:
 * - 2.3+ (it sent BootstrapParams on stdin): a protobuf `containerd.runtime.bootstrap.v1.BootstrapResult`
 *   {version=2, address, protocol="ttrpc"};
 * - otherwise the plain `unix://…` address every version since 1.x accepts.
 * Version 2 is deliberate: 3 would make containerd 2.x stop calling `start` for pod containers (see the protocol
 * reference A.5), and every Task service name is served anyway.
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
export function output(result: { address: string; bootstrap?: boolean }): Uint8Array {
  if (result.bootstrap) return encodeBootstrapResult(result.address);
  return new TextEncoder().encode(result.address);
}
