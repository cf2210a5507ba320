import assert from "node:assert/strict";
import { encodeMessage, task, toTimestamp } from "../proto/mod.ts";
import { type FixedState, StateAnswer } from "./state_answer.ts";

/** What the generic encoder makes of the same answer (how State was encoded before, and what Go's marshaller sends). */
function generic(f: FixedState, pid: number, status: number, exitStatus: number, exitedAt: Date | undefined) {
  return encodeMessage(task.StateResponse, {
    id: f.id,
    bundle: f.bundle,
    pid,
    status,
    stdin: f.stdio.stdin,
    stdout: f.stdio.stdout,
    stderr: f.stdio.stderr,
    terminal: f.stdio.terminal,
    exitStatus,
    exitedAt: exitedAt ? toTimestamp(exitedAt) : undefined,
    execId: f.execId,
  });
}

const init: FixedState = {
  id: "c1",
  bundle: "/run/containerd/io.containerd.runtime.v2.task/default/c1",
  stdio: { stdin: "", stdout: "", stderr: "", terminal: false },
  execId: "",
};
const exec: FixedState = {
  id: "exec-ü-" + "x".repeat(150),
  bundle: "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + "b".repeat(120) + "/日本",
  stdio: {
    stdin: "/run/containerd/fifo/1234/e1-stdin",
    stdout: "/run/containerd/fifo/1234/e1-stdout",
    stderr: "",
    terminal: true,
  },
  execId: "exec-ü-" + "x".repeat(150),
};

Deno.test("StateAnswer: the generic encoder's bytes, for every combination of what changes", () => {
  const times = [undefined, new Date(1_764_000_000_123), new Date(1_764_000_000_000), new Date(500), new Date(0)];
  for (const fixed of [init, exec]) {
    const answer = new StateAnswer(fixed);
    for (const pid of [0, 1, 127, 128, 4_194_304]) {
      for (const status of [1, 2, 3, 4, 5]) {
        for (const exitStatus of [0, 1, 137, 255]) {
          for (const at of times) {
            assert.deepEqual(
              answer.encode(pid, status, exitStatus, at),
              generic(fixed, pid, status, exitStatus, at),
              `${fixed.id.slice(0, 8)} pid ${pid} status ${status} exit ${exitStatus} at ${at?.getTime()}`,
            );
          }
        }
      }
    }
  }
});

Deno.test("StateAnswer: an exit time before 1970 is a ten-byte negative int64, as the generic encoder writes it", () => {
  const answer = new StateAnswer(init);
  const at = new Date(-1_500);
  assert.deepEqual(answer.encode(7, 3, 1, at), generic(init, 7, 3, 1, at));
});

Deno.test("StateAnswer: decodes back to the process's facts", () => {
  const at = new Date(1_764_000_000_456);
  const m = task.StateResponse.decode(new StateAnswer(exec).encode(99, 3, 137, at));
  assert.equal(m.id, exec.id);
  assert.equal(m.bundle, exec.bundle);
  assert.equal(m.pid, 99);
  assert.equal(m.status, 3);
  assert.equal(m.stdin, exec.stdio.stdin);
  assert.equal(m.stdout, exec.stdio.stdout);
  assert.equal(m.stderr, "");
  assert.equal(m.terminal, true);
  assert.equal(m.exitStatus, 137);
  assert.deepEqual({ seconds: m.exitedAt?.seconds, nanos: m.exitedAt?.nanos }, toTimestamp(at));
  assert.equal(m.execId, exec.execId);
});
