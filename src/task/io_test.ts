/**
 * ProcessIO's fifo sinks against readers that come late: containerd opens its end of a stdio fifo in the background,
 * so under load the process can write (or end without writing) before the reader is there.
 */
import assert from "node:assert/strict";
import { FifoSink, ProcessIO } from "./io.ts";
import { mkfifo } from "../sys/fifo.ts";

const noSpawn = () => {
  throw new Error("no binary logger in these tests");
};

/** A reader that opens `path` the way Go's fifo package ends up doing (a blocking open), then reads to EOF. */
function lateReader(path: string): Promise<string> {
  const child = new Deno.Command("cat", { args: [path], stdout: "piped", signal: AbortSignal.timeout(10_000) })
    .spawn();
  return child.output().then((o) => {
    if (!o.success) throw new Error(`reader of ${path} did not see end-of-file (killed: ${o.signal})`);
    return new TextDecoder().decode(o.stdout);
  });
}

Deno.test("a process that ended before its fifo readers opened: output kept, silent stream still ends", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const paths = { stdin: "", stdout: `${dir}/out`, stderr: `${dir}/err`, terminal: false };
    mkfifo(paths.stdout, 0o600);
    mkfifo(paths.stderr, 0o600);
    const io = await ProcessIO.open(paths, {}, noSpawn);
    const stdio = io.runcStdio();
    const child = new Deno.Command("sh", { args: ["-c", "echo hello"], ...stdio }).spawn();
    io.attachPipes(child, stdio);
    assert.equal((await child.status).code, 0);
    // Both readers arrive after the process is gone; stderr never had a byte written to it.
    await new Promise((r) => setTimeout(r, 300));
    const [out, err] = await Promise.all([lateReader(paths.stdout), lateReader(paths.stderr)]);
    assert.equal(out, "hello\n");
    assert.equal(err, "");
    assert.equal(await io.drained(5_000), true);
    io.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a fifo reader that never comes: output dropped after the bound, end() returns", async () => {
  const dir = await Deno.makeTempDir();
  try {
    mkfifo(`${dir}/out`, 0o600);
    const sink = new FifoSink(`${dir}/out`, 200);
    const started = Date.now();
    await sink.write(new TextEncoder().encode("nobody reads this\n"));
    await sink.end();
    assert.ok(Date.now() - started >= 150, "the sink gave the reader its time");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("close() stops a sink that waits for its reader at once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    mkfifo(`${dir}/out`, 0o600);
    const sink = new FifoSink(`${dir}/out`, 60_000);
    const ended = sink.end();
    setTimeout(() => sink.close(), 50);
    await ended; // would take 60 s without close()
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
