import assert from "node:assert/strict";
import { isAlreadyExists, isCriuError, isNotExist, isNotRunning, isPaused, RuncError } from "./errors.ts";

Deno.test("RuncError says what runc said (the Go shim's words) and predicates classify runc's wording", () => {
  const mk = (command: string, runtimeMessage: string, code: number | null = 1) =>
    new RuncError({ command, args: [command], code, signal: null, runtimeMessage });
  assert.equal(mk("delete", "container does not exist").message, "container does not exist");
  assert.equal(mk("create", "runc create failed: boom").message, "runc create failed: boom");
  // Go: `OCI runtime exec failed: exec failed: …`, with no `runc exec failed: ` in the middle (issue 14.5).
  assert.equal(
    mk("exec", "exec failed: unable to start container process").message,
    "exec failed: unable to start container process",
  );
  assert.equal(mk("start", "", 3).message, "runc start failed: exit status 3");
  assert.equal(mk("start", "", 3).exitStatus, "exit status 3");
  assert.ok(isNotExist(mk("kill", "container does not exist")));
  assert.ok(isNotExist(mk("exec", "exec failed: container does not exist")));
  assert.ok(!isNotExist(mk("kill", "container not running")));
  assert.ok(isNotRunning(mk("kill", "container not running")));
  assert.ok(isAlreadyExists(mk("create", "runc create failed: container with given ID already exists")));
  assert.ok(isPaused(mk("exec", "exec failed: cannot exec in a paused container (use --ignore-paused to override)")));
  assert.ok(isCriuError(mk("checkpoint", "criu failed: type DUMP errno 0")));
  assert.ok(!isNotExist(new Error("container does not exist")), "only RuncErrors are classified");
});
