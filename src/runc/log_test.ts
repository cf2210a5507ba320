import assert from "node:assert/strict";
import { lastErrorMessage, lastLogErrorSince, logSize } from "./log.ts";

const line = (level: string, msg: string) => JSON.stringify({ level, msg, time: "2024-01-01T00:00:00Z" }) + "\n";

Deno.test("lastErrorMessage: last JSON error line wins, other levels and torn lines are skipped", () => {
  const text = line("error", "first") + line("debug", "noise") + line("error", " second\n") + line("warning", "w") +
    '{"level":"error","msg":"torn';
  assert.equal(lastErrorMessage(text), "second");
});

Deno.test("lastErrorMessage: logrus text lines (runc without --log) are understood", () => {
  const text = 'time="2024-01-01T00:00:00Z" level=debug msg="nsexec started"\n' +
    'time="2024-01-01T00:00:00Z" level=error msg="runc create failed: exec: \\"nosuch\\": not found"\n';
  assert.equal(lastErrorMessage(text), 'runc create failed: exec: "nosuch": not found');
});

Deno.test("lastErrorMessage: plain stderr falls back to the whole text, only when allowed", () => {
  assert.equal(lastErrorMessage("container does not exist\n"), "container does not exist");
  assert.equal(lastErrorMessage("container does not exist\n", false), "");
  assert.equal(lastErrorMessage(""), "");
});

Deno.test("lastLogErrorSince reads only what was appended after the offset", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/log.json`;
    assert.equal(await logSize(path), 0);
    assert.equal(await lastLogErrorSince(path, 0), "");
    await Deno.writeTextFile(path, line("error", "old failure"));
    const offset = await logSize(path);
    assert.equal(await lastLogErrorSince(path, offset), "", "nothing appended yet");
    await Deno.writeTextFile(path, line("info", "fine"), { append: true });
    assert.equal(await lastLogErrorSince(path, offset), "");
    await Deno.writeTextFile(path, line("error", "new failure"), { append: true });
    assert.equal(await lastLogErrorSince(path, offset), "new failure");
    // a truncated (rotated) log is read from its start
    await Deno.writeTextFile(path, line("error", "after rotation"));
    assert.equal(await lastLogErrorSince(path, offset + 1000), "after rotation");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
