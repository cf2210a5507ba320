/**
 * Where a shim server listens, computed exactly as containerd computes it, so that containerd, our `start` and our
 * `delete` all agree: `unix://<socketDir>/<hex sha256(filepath.Join(address, namespace, group))>`.
 *
 * @example
 * ```ts
 * const path = socketPath("/run/containerd/containerd.sock", "default", "redis");
 * // "/run/containerd/s/6f1c…" (64 hex characters, no suffix)
 * ```
 * @module
 */

import { sha256Hex } from "./sha256.ts";

/** containerd 1.6–2.2 hard-code this directory; 2.3's BootstrapParams may name another. */
export const DEFAULT_SOCKET_DIR = "/run/containerd/s";

/** The server socket's listen backlog, as containerd's Go shim: bursts of connects must not see EAGAIN. */
export const LISTEN_BACKLOG = 4096;

/** Go's `filepath.Clean` for slash-separated Unix paths. */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
    } else out.push(part);
  }
  const joined = out.join("/");
  return rooted ? "/" + joined : joined === "" ? "." : joined;
}

/** Go's `filepath.Join`: empty elements are ignored, the result is cleaned. */
export function joinPath(...parts: string[]): string {
  const kept = parts.filter((p) => p !== "");
  return kept.length === 0 ? "" : cleanPath(kept.join("/"));
}

/** The socket path (without scheme) of the server for `group` in `namespace` of the containerd at `address`. */
export function socketPath(address: string, namespace: string, group: string, socketDir = DEFAULT_SOCKET_DIR): string {
  return `${socketDir}/${sha256Hex(joinPath(address, namespace, group))}`;
}

/** The form containerd dials: a bare path would be taken for an abstract socket. */
export function socketAddress(path: string): string {
  return `unix://${path}`;
}

/** Strips `unix://` from an address; other schemes are not ours. */
export function addressPath(address: string): string {
  return address.startsWith("unix://") ? address.slice("unix://".length) : address;
}
