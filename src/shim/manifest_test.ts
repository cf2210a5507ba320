import assert from "node:assert/strict";
import { permissionFindings } from "./manifest.ts";
import { SHIM_PERMISSIONS, shimRunFlags } from "../permissions.ts";

Deno.test("manifest: one line per flag of the shipped set, read from the table the flags are built from", () => {
  const lines = permissionFindings().filter((f) => f.essential);
  assert.deepEqual(lines.map((f) => f.what.replace(/^permission /, "")), SHIM_PERMISSIONS.map((p) => p.flag));
  for (const p of SHIM_PERMISSIONS) assert.ok(shimRunFlags("server").includes(p.flag), p.flag);
});

Deno.test("manifest: under the exact shipped flags every grant is held and nothing else is", async () => {
  // `deno eval` would grant everything: a script file under `deno run` with the shipped flags.
  const dir = await Deno.makeTempDir();
  const script = `${dir}/manifest.ts`;
  await Deno.writeTextFile(
    script,
    `import { permissionFindings } from "${new URL("./manifest.ts", import.meta.url).href}";
    console.log(JSON.stringify(permissionFindings()));`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...shimRunFlags("server"), script],
    stdout: "piped",
    stderr: "piped",
  }).output().finally(() => Deno.remove(dir, { recursive: true }));
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const findings = JSON.parse(new TextDecoder().decode(out.stdout)) as { ok: boolean; what: string }[];
  assert.deepEqual(findings.filter((f) => !f.ok), [], JSON.stringify(findings, null, 1));
  assert.ok(findings.some((f) => f.what === "permission --allow-sys"));
});
