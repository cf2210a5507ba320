/**
 * A parser for Go `flag`-package command lines, because containerd calls shims that way:
 * `-namespace k8s.io -address /run/containerd/containerd.sock -id abc -debug start`.
 *
 * Accepted like Go: `-f v`, `-f=v`, `--f v`, `--f=v`, boolean `-f`, `-f=true|false|1|0`; parsing stops at the
 * first non-flag argument or after `--`; an unknown flag is an error naming it as Go does.
 *
 * @example
 * ```ts
 * const spec = { namespace: "string", debug: "boolean" } as const;
 * const { flags, args } = parseGoFlags(["-namespace", "k8s.io", "-debug=false", "start"], spec);
 * // flags.namespace === "k8s.io", flags.debug === false, args === ["start"]
 * ```
 * @module
 */

/** The kind of each flag. */
export type FlagSpec = Record<string, "string" | "boolean">;

/** Parsed values: strings for string flags, booleans for boolean flags; absent flags are undefined. */
export type ParsedFlags<S extends FlagSpec> = {
  [K in keyof S]?: S[K] extends "boolean" ? boolean : string;
};

/** Raised for a command line Go's flag package would reject. */
export class FlagError extends Error {
  override name = "FlagError";
}

const TRUE = new Set(["1", "t", "T", "true", "TRUE", "True"]);
const FALSE = new Set(["0", "f", "F", "false", "FALSE", "False"]);

/** Parses `argv` against `spec`; returns the flags and the remaining positional arguments. */
export function parseGoFlags<S extends FlagSpec>(
  argv: readonly string[],
  spec: S,
): { flags: ParsedFlags<S>; args: string[] } {
  const flags: Record<string, string | boolean> = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.length < 2 || arg[0] !== "-") break; // first positional ("-" alone is positional too)
    if (arg === "--") {
      i++;
      break;
    }
    const body = arg.startsWith("--") ? arg.slice(2) : arg.slice(1);
    if (body === "" || body[0] === "-" || body[0] === "=") throw new FlagError(`bad flag syntax: ${arg}`);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const kind = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (kind === undefined) throw new FlagError(`flag provided but not defined: -${name}`);
    if (kind === "boolean") {
      if (eq < 0) flags[name] = true;
      else {
        const v = body.slice(eq + 1);
        if (TRUE.has(v)) flags[name] = true;
        else if (FALSE.has(v)) flags[name] = false;
        else throw new FlagError(`invalid boolean value "${v}" for -${name}`);
      }
    } else if (eq >= 0) {
      flags[name] = body.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`);
      flags[name] = argv[++i];
    }
  }
  return { flags: flags as ParsedFlags<S>, args: argv.slice(i) };
}

/** Renders flags back into a Go-style argv (used to re-spawn the shim as its server). */
export function formatGoFlags(flags: Record<string, string | boolean | undefined>): string[] {
  const out: string[] = [];
  for (const [name, v] of Object.entries(flags)) {
    if (v === undefined || v === false) continue;
    if (v === true) out.push(`-${name}`);
    else out.push(`-${name}`, v);
  }
  return out;
}
