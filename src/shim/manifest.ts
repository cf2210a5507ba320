/**
 * The permission manifest `check` prints: every permission the shim is built to run under (the table in
 * src/permissions.ts that also makes the flags), what it is for, and whether this running process holds it — asked
 * of Deno itself, so a binary built or launched with other flags shows the difference. Permissions the shim must
 * not hold are listed as absent (or flagged when present).
 *
 * @example
 * ```ts
 * import { permissionFindings } from "./manifest.ts";
 * for (const f of permissionFindings()) console.log(f.ok, f.what, f.detail);
 * ```
 * @module
 */
import { SHIM_PERMISSIONS, SHIM_WITHOUT } from "../permissions.ts";

/** One line of the manifest, in `check`'s finding shape. */
export interface PermissionFinding {
  ok: boolean;
  essential: boolean;
  what: string;
  detail: string;
}

function state(probe: Deno.PermissionDescriptor): Deno.PermissionState {
  return Deno.permissions.querySync(probe).state;
}

/** The manifest: one finding per granted permission, then one per permission that must be absent. */
export function permissionFindings(): PermissionFinding[] {
  const out: PermissionFinding[] = SHIM_PERMISSIONS.map((p) => {
    const held = state(p.probe) === "granted";
    const scope = p.broadBecause ? `unscoped, because ${p.broadBecause}` : "scoped";
    return {
      ok: held,
      essential: true,
      what: `permission ${p.flag}`,
      detail: held
        ? `${p.why} (${scope})`
        : `not granted to this process — the shim needs it for: ${p.why}; run the built launcher, not deno directly`,
    };
  });
  for (const p of SHIM_WITHOUT) {
    const held = state(p.probe) === "granted";
    out.push({
      ok: !held,
      essential: false,
      what: `permission ${p.flag}`,
      detail: held ? "granted, but the shim does not need it (running with -A?)" : "absent, as intended",
    });
  }
  return out;
}
