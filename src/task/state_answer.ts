/**
 * State's answer (`containerd.task.v2.StateResponse`) for one process, encoded by hand around parts encoded once.
 *
 * State is the call clients poll, and it needs no I/O: its cost is the server's own code. Through the generic encoder
 * the answer's strings (the bundle path, three stdio paths) went through protobufjs' UTF-8 loops on every call, the
 * largest step of a State in the server's interpreter (bench/analysis.md, sessions 18 and 22). What a process reports
 * that can change is four numbers (pid, status, exit status, exit time); the rest is fixed once the process exists. So
 * the fixed fields are encoded once, in field order around the changing ones, and each answer is one allocation and
 * three copies. The bytes are those of the generic encoder (and Go's marshaller) for the same message, which
 * `state_answer_test.ts` checks.
 *
 * @example
 * ```ts
 * import { StateAnswer } from "./state_answer.ts";
 * const a = new StateAnswer({
 *   id: "c1",
 *   bundle: "/run/containerd/io.containerd.runtime.v2.task/default/c1",
 *   stdio: { stdin: "", stdout: "", stderr: "", terminal: false },
 *   execId: "",
 * });
 * const bytes = a.encode(4242, 2, 0, undefined); // running, pid 4242
 * ```
 * @module
 */
import { int64Size, varintSize, writeInt64, writeVarint } from "../proto/varint.ts";
import type { StdioPaths } from "./io.ts";

/** What a process's State answer holds that never changes. */
export interface FixedState {
  /** The exec id, or the container id for init. */
  id: string;
  bundle: string;
  stdio: StdioPaths;
  /** "" for init. */
  execId: string;
}

const utf8 = new TextEncoder();

// Field keys (field number << 3 | wire type) of StateResponse's changing fields and of google.protobuf.Timestamp.
const PID = 3 << 3, STATUS = 4 << 3, EXIT_STATUS = 9 << 3, EXITED_AT = (10 << 3) | 2;
const SECONDS = 1 << 3, NANOS = 2 << 3;

export class StateAnswer {
  /** id = 1, bundle = 2. */
  readonly #head: Uint8Array;
  /** stdin = 5, stdout = 6, stderr = 7, terminal = 8. */
  readonly #middle: Uint8Array;
  /** exec_id = 11. */
  readonly #tail: Uint8Array;

  constructor(fixed: FixedState) {
    this.#head = fields([[1, fixed.id], [2, fixed.bundle]]);
    this.#middle = fields(
      [[5, fixed.stdio.stdin], [6, fixed.stdio.stdout], [7, fixed.stdio.stderr]],
      fixed.stdio.terminal,
    );
    this.#tail = fields([[11, fixed.execId]]);
  }

  /**
   * The answer for the process as it is now. `status` is the `containerd.v1.types.Status` number; `exitedAt` is absent
   * while the process has not exited. Zeros are left out, as proto3 does.
   */
  encode(pid: number, status: number, exitStatus: number, exitedAt: Date | undefined): Uint8Array {
    const head = this.#head, middle = this.#middle, tail = this.#tail;
    let seconds = 0, nanos = 0, stamp = 0;
    if (exitedAt) {
      const ms = exitedAt.getTime();
      seconds = Math.floor(ms / 1000);
      nanos = (ms - seconds * 1000) * 1_000_000;
      stamp = (seconds !== 0 ? 1 + int64Size(seconds) : 0) + (nanos !== 0 ? 1 + varintSize(nanos) : 0);
    }
    const size = head.length + middle.length + tail.length +
      (pid !== 0 ? 1 + varintSize(pid) : 0) + (status !== 0 ? 1 + varintSize(status) : 0) +
      (exitStatus !== 0 ? 1 + varintSize(exitStatus) : 0) + (exitedAt ? 1 + varintSize(stamp) + stamp : 0);
    const buf = new Uint8Array(size);
    buf.set(head, 0);
    let p = head.length;
    if (pid !== 0) p = writeVarint(buf, writeVarint(buf, p, PID), pid);
    if (status !== 0) p = writeVarint(buf, writeVarint(buf, p, STATUS), status);
    buf.set(middle, p);
    p += middle.length;
    if (exitStatus !== 0) p = writeVarint(buf, writeVarint(buf, p, EXIT_STATUS), exitStatus);
    if (exitedAt) {
      p = writeVarint(buf, writeVarint(buf, p, EXITED_AT), stamp);
      if (seconds !== 0) p = writeInt64(buf, writeVarint(buf, p, SECONDS), seconds);
      if (nanos !== 0) p = writeVarint(buf, writeVarint(buf, p, NANOS), nanos);
    }
    buf.set(tail, p);
    return buf;
  }
}

/** The string fields given (empty ones left out), then `terminal` (bool field 8) when true. */
function fields(strings: [number, string][], terminal = false): Uint8Array {
  const encoded = strings.filter(([, s]) => s !== "").map(([n, s]): [number, Uint8Array] => [n, utf8.encode(s)]);
  let size = terminal ? 2 : 0;
  for (const [n, b] of encoded) size += varintSize((n << 3) | 2) + varintSize(b.length) + b.length;
  const buf = new Uint8Array(size);
  let p = 0;
  for (const [n, b] of encoded) {
    p = writeVarint(buf, writeVarint(buf, p, (n << 3) | 2), b.length);
    buf.set(b, p);
    p += b.length;
  }
  if (terminal) buf.set([8 << 3, 1], p);
  return buf;
}
