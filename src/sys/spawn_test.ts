import assert from "node:assert/strict";
import { ENOENT, SysError } from "./errno.ts";
import { closeFd, readAsync, writeAll } from "./fdio.ts";
import { check, libc } from "./libc.ts";
import { reaper } from "./reaper.ts";
import { isSpawned, pendingChildren, spawn } from "./spawn.ts";

const decoder = new TextDecoder();

/** Reads our end of a child's pipe to EOF and closes it. */
async function text(fd: number): Promise<string> {
  const buf = new Uint8Array(4096);
  let out = "";
  for (let n; (n = await readAsync(fd, buf)) > 0;) out += decoder.decode(buf.subarray(0, n));
  closeFd(fd);
  return out;
}

/** Resolves once `cond()` holds (polling), or fails after `ms`. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("spawn: piped stdio, cwd, added environment and the exit code", async () => {
  const child = spawn("sh", {
    args: ["-c", 'read x; echo "out:$x:$(pwd):$SPAWN_TEST"; echo err >&2; exit 3'],
    cwd: "/tmp",
    env: { SPAWN_TEST: "yes" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  await writeAll(child.stdin, new TextEncoder().encode("hi\n"));
  closeFd(child.stdin);
  const [out, err, status] = await Promise.all([text(child.stdout), text(child.stderr), child.status]);
  assert.equal(out, "out:hi:/tmp:yes\n");
  assert.equal(err, "err\n");
  assert.deepEqual(status, { success: false, code: 3, signal: null });
  assert.equal(pendingChildren(), 0);
});

Deno.test("spawn: environment defaults fill in only what neither the environment nor env sets", async () => {
  const child = spawn("sh", {
    args: ["-c", 'echo "$SPAWN_GIVEN|$SPAWN_DEFAULT|$PATH"'],
    env: { SPAWN_GIVEN: "given" },
    envDefaults: { SPAWN_GIVEN: "lost", SPAWN_DEFAULT: "default", PATH: "/lost" },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  });
  const [out, status] = await Promise.all([text(child.stdout), child.status]);
  assert.equal(out, `given|default|${Deno.env.get("PATH")}\n`);
  assert.equal(status.code, 0);
});

Deno.test("spawn: the status is kept when the child exited and was reaped before anyone awaited it", async () => {
  const child = spawn("sh", { args: ["-c", "exit 7"], stdin: "null", stdout: "null", stderr: "null" });
  // Let it exit and be reaped (pidfd) with nobody awaiting the status yet.
  await until(() => !isSpawned(child.pid), "the reap");
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(await child.status, { success: false, code: 7, signal: null });
});

Deno.test("spawn: under the subreaper, statuses go to their callers, never to the exit listeners", async () => {
  const r = reaper();
  const stolen: number[] = [];
  const off = r.onExit((e) => stolen.push(e.pid));
  try {
    const children = Array.from({ length: 40 }, (_, i) => ({
      code: i % 5,
      child: spawn("sh", { args: ["-c", `exit ${i % 5}`], stdin: "null", stdout: "null", stderr: "null" }),
    }));
    for (const { code, child } of children) {
      assert.equal((await child.status).code, code, `pid ${child.pid}`);
    }
    const pids = new Set(children.map((c) => c.child.pid));
    assert.deepEqual(stolen.filter((p) => pids.has(p)), [], "the subreaper handed these statuses to their callers");
  } finally {
    off();
    r.stop();
  }
});

Deno.test("spawn: a signal ends the child; kill after the reap is a no-op", async () => {
  const child = spawn("sleep", { args: ["30"], stdin: "null", stdout: "null", stderr: "null" });
  child.kill(9);
  assert.deepEqual(await child.status, { success: false, code: 137, signal: "SIGKILL" });
  child.kill(9);
});

Deno.test("spawn: no fd of ours reaches the child beyond 0/1/2, even one without O_CLOEXEC", async () => {
  const F_DUPFD = 0;
  const leaky = check(libc().fcntl(1, F_DUPFD, 40n), "fcntl(F_DUPFD)"); // no FD_CLOEXEC
  try {
    const child = spawn("/bin/ls", { args: ["/proc/self/fd"], stdin: "null", stdout: "piped", stderr: "null" });
    const fds = (await text(child.stdout)).trim().split("\n").map(Number).sort((a, b) => a - b);
    await child.status;
    // ls itself holds one more: its directory stream of /proc/self/fd.
    assert.deepEqual(fds.slice(0, 3), [0, 1, 2]);
    assert.ok(fds.length <= 4 && !fds.includes(leaky), `child fds: ${fds}`);
  } finally {
    libc().close(leaky);
  }
});

Deno.test("spawn: the child starts with an empty signal mask and default dispositions", async () => {
  // Block SIGUSR1 in this (the spawning) thread and ignore it, as the server's inspector guard does.
  const set = new BigUint64Array(16);
  set[0] = 1n << 9n; // SIGUSR1
  const SIG_BLOCK = 0, SIG_UNBLOCK = 1;
  check(libc().pthread_sigmask(SIG_BLOCK, new Uint8Array(set.buffer), null), "pthread_sigmask");
  const old = libc().signal(10, Deno.UnsafePointer.create(1n));
  try {
    const child = spawn("sh", {
      args: ["-c", "grep -E '^Sig(Blk|Ign):' /proc/self/status"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    });
    const out = await text(child.stdout);
    await child.status;
    // Deno ignores SIGPIPE itself; the child must not inherit that either.
    assert.equal(out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  } finally {
    libc().signal(10, old);
    libc().pthread_sigmask(SIG_UNBLOCK, new Uint8Array(set.buffer), null);
  }
});

Deno.test("spawn: a missing binary or working directory is a clear SysError, and nothing is left open", () => {
  const before = [...Deno.readDirSync("/proc/self/fd")].length;
  assert.throws(() => spawn("no-such-binary-anywhere", { stdout: "piped" }), (e: unknown) => {
    assert.ok(e instanceof SysError && e.errno === ENOENT);
    assert.equal(e.message, "posix_spawn no-such-binary-anywhere: No such file or directory (ENOENT)");
    return true;
  });
  assert.throws(() => spawn("/bin/true", { cwd: "/no/such/dir", stdin: "piped" }), (e: unknown) => {
    assert.ok(e instanceof SysError && e.errno === ENOENT);
    assert.equal(e.message, "chdir /no/such/dir: No such file or directory (ENOENT)");
    return true;
  });
  assert.equal([...Deno.readDirSync("/proc/self/fd")].length, before, "no pipe fd leaked");
  assert.equal(pendingChildren(), 0);
});

Deno.test("spawn: pipeCapacity sizes the output pipes, not stdin's", async () => {
  const F_GETPIPE_SZ = 1032;
  const child = spawn("true", { stdin: "piped", stdout: "piped", stderr: "piped", pipeCapacity: 256 * 1024 });
  assert.equal(libc().fcntl(child.stdout, F_GETPIPE_SZ, 0n), 256 * 1024);
  assert.equal(libc().fcntl(child.stderr, F_GETPIPE_SZ, 0n), 256 * 1024);
  assert.equal(libc().fcntl(child.stdin, F_GETPIPE_SZ, 0n), 64 * 1024);
  await child.status;
  for (const fd of [child.stdin, child.stdout, child.stderr]) closeFd(fd);
});

Deno.test("spawn: pipeOwner gives the child's ends of its pipes to that uid and gid", async () => {
  const child = spawn("stat", {
    args: ["-L", "-c", "%u:%g", "/proc/self/fd/1"],
    stdout: "piped",
    stderr: "null",
    pipeOwner: { uid: 1000, gid: 1001 },
  });
  const out = await text(child.stdout);
  assert.equal((await child.status).code, 0);
  assert.equal(out, "1000:1001\n");
});
