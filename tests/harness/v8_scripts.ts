/**
 * Which scripts a Deno process compiled, from V8's own log: a deterministic way to tell whether a lazily loaded
 * internal module (Deno's Node timers module) was ever loaded. Run the process with
 * `--v8-flags=--log-function-events,--logfile=<path>,--no-logfile-per-isolate`; every script V8 compiles appears once
 * as a `script-details,<id>,<url>,…` line.
 *
 * @module
 */

/** What a process's first `setTimeout`/`setInterval` loads in Deno 2.9 (`node:timers` and its implementation). */
export const NODE_TIMERS_SCRIPTS: readonly string[] = [
  "node:timers",
  "ext:deno_node/timers.ts",
  "ext:deno_node/internal/timers.mjs",
];

/** The V8 flags that make a process write the log {@linkcode loadedScripts} reads to `path`. */
export function scriptLogFlag(path: string): string {
  return `--v8-flags=--log-function-events,--logfile=${path},--no-logfile-per-isolate`;
}

/** The URLs of the scripts in a V8 log written with {@linkcode scriptLogFlag}; empty when there is no log. */
export async function loadedScripts(logPath: string): Promise<string[]> {
  const text = await Deno.readTextFile(logPath).catch(() => "");
  const out: string[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("script-details,")) continue;
    const url = line.split(",")[2];
    if (url) out.push(url);
  }
  return out;
}
