/**
 * A small leveled logger writing logfmt lines to stderr, shaped like containerd's own log lines so they read
 * naturally in containerd's log (the shim server's stderr is the bundle's `log` fifo).
 *
 * A thin local module so a later switch to `@std/log` (unreachable here) touches one file.
 *
 * @example
 * ```ts
 * import { log, setLogLevel } from "./log.ts";
 * setLogLevel("debug");
 * log.debug("runc create", { id: "c1", pid: 42 });
 * ```
 * @module
 */

/** Levels in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
let threshold = order.info;
const encoder = new TextEncoder();

/** Sets the lowest level that is written. */
export function setLogLevel(level: LogLevel): void {
  threshold = order[level];
}

/** True when `level` would be written: lets callers skip building expensive fields. */
export function logEnabled(level: LogLevel): boolean {
  return order[level] >= threshold;
}

function quote(v: unknown): string {
  const s = v instanceof Error ? v.message : typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
  return /^[\w./:@+-]+$/.test(s) ? s : JSON.stringify(s);
}

/** One log line, newline included, as the logger writes it (for a writer of its own, e.g. `start`'s). */
export function formatLine(level: LogLevel, msg: string, fields?: Record<string, unknown>): string {
  let line = `time="${new Date().toISOString()}" level=${level} msg=${quote(msg)}`;
  if (fields) { for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${quote(v)}`; }
  return line + "\n";
}

function write(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
  if (order[level] < threshold) return;
  const line = formatLine(level, msg, fields);
  try {
    Deno.stderr.writeSync(encoder.encode(line));
  } catch {
    // stderr gone (containerd closed the log fifo): logging must never take the shim down.
  }
}

/** The process-wide logger. */
export const log = {
  debug: (msg: string, fields?: Record<string, unknown>) => write("debug", msg, fields),
  info: (msg: string, fields?: Record<string, unknown>) => write("info", msg, fields),
  warn: (msg: string, fields?: Record<string, unknown>) => write("warn", msg, fields),
  error: (msg: string, fields?: Record<string, unknown>) => write("error", msg, fields),
};
