/**
 * Extraction of runc's own error message from its `--log` file (`--log-format json`) and from its stderr.
 *
 * runc writes one JSON object per line (`{"level":"error","msg":"...","time":"..."}`) to the log file; without
 * `--log` it writes logrus text lines (`time="..." level=error msg="..."`) to stderr, and with `--log` it prints the
 * bare error text to stderr. The log file is shared by every runc call of one container, so callers remember its size
 * before a call ({@linkcode logSize}) and read only what that call appended ({@linkcode lastLogErrorSince}).
 *
 * @example
 * ```ts
 * import { lastErrorMessage } from "./log.ts";
 * lastErrorMessage('{"level":"error","msg":"container does not exist","time":"2024-01-01T00:00:00Z"}\n');
 * // → "container does not exist"
 * ```
 * @module
 */

/** Never read more than this much of a log tail: a `--debug` log can grow large, and the error line comes last. */
const MAX_TAIL = 1 << 20;

/** Current size of the log file, 0 when it does not exist yet (runc creates it on first use). */
export function logSize(path: string): number {
  try {
    // Synchronous: a stat of a small local file takes microseconds, where Deno's async one hops to its blocking pool
    // and back (0.1–0.3 ms here) before every runc call.
    return Deno.statSync(path).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
}

/**
 * The last `"level":"error"` message runc appended to the log file after byte `offset`, or "" when there is none.
 * If the file shrank (rotated or truncated) it is read from the start.
 */
export async function lastLogErrorSince(path: string, offset: number): Promise<string> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "";
    throw err;
  }
  try {
    const size = (await file.stat()).size;
    let start = size < offset ? 0 : offset;
    if (size - start > MAX_TAIL) start = size - MAX_TAIL;
    if (size === start) return "";
    await file.seek(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - start);
    let filled = 0;
    while (filled < buf.length) {
      const n = await file.read(buf.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    return lastErrorMessage(new TextDecoder().decode(buf.subarray(0, filled)), false);
  } finally {
    file.close();
  }
}

const LOGFMT_ERROR = /(?:^|\s)level=(?:error|fatal)(?:\s|$)/;
const LOGFMT_MSG = /(?:^|\s)msg=("(?:[^"\\]|\\.)*"|\S+)/;

/** The message of one log line if it is an error entry (JSON or logrus text), else undefined. */
function errorOfLine(line: string): string | undefined {
  if (line.startsWith("{")) {
    try {
      const entry = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if ((entry.level === "error" || entry.level === "fatal") && typeof entry.msg === "string") {
        return entry.msg.trim();
      }
    } catch {
      // a torn last line (another runc call still writing) or not JSON after all
    }
    return undefined;
  }
  if (!LOGFMT_ERROR.test(line)) return undefined;
  const m = LOGFMT_MSG.exec(line);
  if (!m) return undefined;
  const raw = m[1];
  if (!raw.startsWith('"')) return raw.trim();
  try {
    return (JSON.parse(raw) as string).trim();
  } catch {
    // Go quoting that JSON does not accept (\x.., \a, \v): keep the text between the quotes
    return raw.slice(1, -1).trim();
  }
}

/**
 * runc's last error message in `text`: the last error entry (JSON line or logrus text line). When there is none and
 * `plainFallback` is true (stderr text), the whole trimmed text, capped at 4 KiB: runc's bare error print.
 */
export function lastErrorMessage(text: string, plainFallback = true): string {
  let found = "";
  for (const line of text.split("\n")) {
    const msg = errorOfLine(line.trim());
    if (msg !== undefined) found = msg;
  }
  if (found || !plainFallback) return found;
  const plain = text.trim();
  return plain.length > 4096 ? plain.slice(plain.length - 4096) : plain;
}
