/**
 * The warm-up of the server's own `DENO_DIR` that a build and `install` run once their launcher is in place (the
 * commands' warm-up is the launcher's, launcher.ts `warmUpCommandLines`). Not on `start`'s path: only `tools/build.ts`
 * and install.ts load it.
 *
 * @module
 */
import { bundleServerPath } from "./bundle_layout.ts";
import { serverWarmUpCommand } from "./launcher.ts";

/**
 * Runs the server's bundle in `libDir` with `-v` the way `start` runs the server ({@linkcode serverWarmUpCommand}),
 * so that Deno's analysis of the bundle is stored before the first container's server needs it (without it that
 * server parses its 200 KB bundle first: its first answer ~20 ms later, bench/analysis.md session 23). Returns false
 * when the build has no server bundle of its own (a build of another entry); throws when the bundle does not run.
 */
export async function warmServer(libDir: string): Promise<boolean> {
  if (!await Deno.stat(bundleServerPath(libDir)).then((s) => s.isFile, () => false)) return false;
  const { cmd, args, env } = serverWarmUpCommand(libDir);
  const out = await new Deno.Command(cmd, { args, env, cwd: "/", stdin: "null", stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`the server's bundle does not run: ${new TextDecoder().decode(out.stderr).trim()}`);
  return true;
}
