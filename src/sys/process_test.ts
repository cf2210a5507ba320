import assert from "node:assert/strict";
import { ESRCH, isErrno } from "./errno.ts";
import { mkfifo, openFifo } from "./fifo.ts";
import { closeFd, readAsync } from "./fdio.ts";
import { poller } from "./poller.ts";
import { getOomScoreAdj, getpid, kill, setOomScoreAdj, signalName, signalNumber } from "./process.ts";

Deno.test("getpid is Deno.pid", () => {
  assert.equal(getpid(), Deno.pid);
});

Deno.test("kill delivers signals and reports a missing process as ESRCH", async () => {
  const child = new Deno.Command("sleep", { args: ["10"] }).spawn();
  kill(child.pid, 0);
  kill(child.pid, signalNumber("SIGTERM"));
  const st = await child.status;
  assert.equal(st.signal, "SIGTERM");
  assert.throws(
    () => kill(child.pid, 0),
    (e) => isErrno(e, ESRCH) && e.message === `kill ${child.pid}: No such process (ESRCH)`,
  );
});

Deno.test("signal names and numbers", () => {
  assert.equal(signalNumber("SIGKILL"), 9);
  assert.equal(signalNumber("KILL"), 9);
  assert.equal(signalNumber("term"), 15);
  assert.equal(signalNumber("15"), 15);
  assert.equal(signalNumber("SIGIOT"), 6);
  assert.equal(signalNumber("SIGRTMIN"), 34);
  assert.equal(signalNumber("SIGRTMIN+3"), 37);
  assert.equal(signalNumber("SIGRTMAX-1"), 63);
  assert.throws(() => signalNumber("SIGNOPE"), RangeError);
  assert.throws(() => signalNumber("0"), RangeError);
  for (let n = 1; n <= 64; n++) if (n !== 32 && n !== 33) assert.equal(signalNumber(signalName(n)), n);
  assert.equal(signalName(9), "SIGKILL");
  assert.equal(signalName(17), "SIGCHLD");
  assert.equal(signalName(36), "SIGRTMIN+2");
});

Deno.test("oom_score_adj of another process can be raised and read back", async () => {
  const child = new Deno.Command("sleep", { args: ["10"] }).spawn();
  try {
    const before = getOomScoreAdj(child.pid);
    setOomScoreAdj(child.pid, Math.min(before + 7, 1000));
    assert.equal(getOomScoreAdj(child.pid), Math.min(before + 7, 1000));
    assert.throws(() => setOomScoreAdj(child.pid, 1001), RangeError);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

const stderrChild = `
import { redirectStderrToFifo } from ${JSON.stringify(new URL("./process.ts", import.meta.url).href)};
redirectStderrToFifo(Deno.args[0]);
console.error("to the log fifo");
// Nobody reads past the first line: the fifo fills up, and writes must fail fast instead of blocking.
const chunk = new Uint8Array(65536);
let failed = 0;
for (let i = 0; i < 64; i++) {
  try { Deno.stderr.writeSync(chunk); } catch { failed++; }
}
Deno.stdout.writeSync(new TextEncoder().encode("failed=" + failed + "\\n"));
`;

Deno.test("redirectStderrToFifo points fd 2 at the log fifo without ever blocking", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fifo = `${dir}/log`;
    mkfifo(fifo);
    const script = `${dir}/child.ts`;
    await Deno.writeTextFile(script, stderrChild);
    const run = (path: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-config", script, path],
        stdout: "piped",
        stderr: "piped",
      })
        .output();

    // No reader: the open fails with ENXIO, so the shim can tell instead of hanging.
    const noReader = await run(fifo);
    assert.notEqual(noReader.code, 0);
    assert.match(new TextDecoder().decode(noReader.stderr), /ENXIO/);

    const r = openFifo(fifo, "r");
    try {
      const out = await run(fifo); // a write that blocked on the full fifo would never return
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.equal(out.stderr.length, 0, "nothing went to the original stderr");
      const failed = Number(/failed=(\d+)/.exec(new TextDecoder().decode(out.stdout))![1]);
      assert.ok(failed > 0, "writes to a full fifo failed instead of blocking");
      await poller().wait(r, "read");
      const buf = new Uint8Array(64);
      const n = await readAsync(r, buf);
      assert.equal(new TextDecoder().decode(buf.subarray(0, 16)), "to the log fifo\n");
      assert.ok(n >= 16);
    } finally {
      closeFd(r);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("setProcessName names the thread as ps and pgrep see it; over-long names are refused", async () => {
  // A child deno, so this test runner keeps its own name.
  const script = `
    import { processName, setProcessName } from ${JSON.stringify(new URL("./process.ts", import.meta.url).href)};
    setProcessName("containerd-shim");
    console.log(processName(), Deno.readTextFileSync("/proc/self/comm").trim());
    try { setProcessName("containerd-shim-deno-v2"); } catch (e) { console.log(e.name); }`;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", "--allow-all", script] }).output();
  assert.equal(new TextDecoder().decode(out.stdout), "containerd-shim containerd-shim\nRangeError\n");
});

const guardChild = `
import { guardInspectorSignal } from ${JSON.stringify(new URL("./process.ts", import.meta.url).href)};
import { libc } from ${JSON.stringify(new URL("./libc.ts", import.meta.url).href)};
if (Deno.args[0] === "blocked") {
  // As if spawned so by start (posix_spawn with SIGUSR1 blocked): the JS thread has it blocked on entry.
  const set = new BigUint64Array(16);
  set[0] = 1n << 9n;
  libc().pthread_sigmask(0, new Uint8Array(set.buffer), null);
}
const guard = guardInspectorSignal();
const usr1 = (field) => (BigInt("0x" + new RegExp("^" + field + ":\\\\s*([0-9a-f]+)", "m")
  .exec(Deno.readTextFileSync("/proc/self/status"))[1]) >> 9n) & 1n;
const t0 = Date.now();
// Deno arms its own SIGUSR1 handler about 500 ms after start-up; the guard must replace it and end.
while (Date.now() - t0 < 10_000 && !(usr1("SigIgn") === 1n && usr1("SigBlk") === 0n)) {
  await new Promise((r) => setTimeout(r, 10));
}
console.log(JSON.stringify({ pollMs: guard.pollMs, ignored: usr1("SigIgn") === 1n, blocked: usr1("SigBlk") === 1n }));
Deno.exit(0);
`;

Deno.test("guardInspectorSignal: a fast poll unless SIGUSR1 came blocked, and either way the guard ends", async () => {
  for (const mode of ["unblocked", "blocked"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=js", guardChild, mode],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    // Ended: Deno's handler replaced by SIG_IGN, and SIGUSR1 unblocked in the JS thread again.
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), {
      pollMs: mode === "blocked" ? 250 : 20,
      ignored: true,
      blocked: false,
    }, mode);
  }
});
