import assert from "node:assert/strict";
import { ConsoleSocket, getPtySize, resizePty } from "./console.ts";
import { EIO, isErrno } from "./errno.ts";
import { closeFd, readAsync, writeAll } from "./fdio.ts";
import { F_GETFD, F_GETFL, FD_CLOEXEC, O_NONBLOCK } from "./abi.ts";
import { libc } from "./libc.ts";
import { type Exit, type Reaper, reaper } from "./reaper.ts";

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

/** A busybox bundle whose container runs `script` in `sh` on a terminal. */
async function makeBundle(r: Reaper, dir: string, script: string): Promise<string> {
  const bundle = `${dir}/bundle`;
  await Deno.mkdir(`${bundle}/rootfs/bin`, { recursive: true });
  await Deno.copyFile("/bin/busybox", `${bundle}/rootfs/bin/busybox`);
  for (const tool of ["sh", "stty", "tty", "echo", "sleep", "cat"]) {
    await Deno.symlink("busybox", `${bundle}/rootfs/bin/${tool}`);
  }
  // Through the reaper: while it runs, an unregistered Deno.Command could lose its status to it.
  const spec = await r.spawn("runc", { args: ["spec", "--bundle", bundle], stderr: "piped" }).output();
  assert.equal(spec.code, 0, new TextDecoder().decode(spec.stderr));
  const config = JSON.parse(await Deno.readTextFile(`${bundle}/config.json`));
  config.process.terminal = true;
  config.process.args = ["sh", "-c", script];
  await Deno.writeTextFile(`${bundle}/config.json`, JSON.stringify(config));
  return bundle;
}

/** Reads the pty master until the accumulated text matches `pattern` (or the slave side is gone: EIO). */
async function readUntil(fd: number, pattern: RegExp, ms: number, sofar = ""): Promise<string> {
  const ac = new AbortController();
  const timer = setTimeout(
    () => ac.abort(new Error(`timeout waiting for ${pattern}; got ${JSON.stringify(sofar)}`)),
    ms,
  );
  const buf = new Uint8Array(4096);
  const decoder = new TextDecoder();
  try {
    while (!pattern.test(sofar)) {
      let n: number;
      try {
        n = await readAsync(fd, buf, ac.signal);
      } catch (e) {
        if (isErrno(e, EIO)) return sofar; // every slave fd closed: the container is gone
        throw e;
      }
      if (n === 0) return sofar;
      sofar += decoder.decode(buf.subarray(0, n), { stream: true });
    }
    return sofar;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("console socket with real runc: receive the pty master, resize it, talk to the container", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sys-console-test" });
  const id = `sys-console-test-${Deno.pid}`;
  const root = `${dir}/runc`;
  const r = reaper();
  const exits: Exit[] = [];
  const off = r.onExit((e) => exits.push(e));
  const runc = async (...args: string[]) => {
    const out = await r.spawn("runc", { args: ["--root", root, ...args], stdout: "piped", stderr: "piped" }).output();
    return { code: out.code, text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
  };
  let socket: ConsoleSocket | undefined;
  let master = -1;
  try {
    const bundle = await makeBundle(r, dir, "stty size; read x; stty size; echo tty=$(tty) x=$x; exit 7");
    socket = await ConsoleSocket.create(dir);
    assert.ok(socket.path.startsWith(`${dir}/pty`) && socket.path.endsWith("/pty.sock"));
    const received = socket.receive(10000);
    const created = await runc(
      "create",
      "--bundle",
      bundle,
      "--console-socket",
      socket.path,
      "--pid-file",
      `${dir}/pid`,
      id,
    );
    assert.equal(created.code, 0, created.text);
    const pty = await received;
    master = pty.fd;
    assert.equal(pty.name, "/dev/ptmx");
    assert.equal(libc().fcntl(master, F_GETFD, 0n) & FD_CLOEXEC, FD_CLOEXEC);
    assert.equal(libc().fcntl(master, F_GETFL, 0n) & O_NONBLOCK, O_NONBLOCK);
    const initPid = Number(await Deno.readTextFile(`${dir}/pid`));

    resizePty(master, 132, 40);
    assert.deepEqual(getPtySize(master), { cols: 132, rows: 40 });
    const started = await runc("start", id);
    assert.equal(started.code, 0, started.text);

    let out = await readUntil(master, /40 132\r?\n/, 10000);
    resizePty(master, 100, 50);
    await writeAll(master, new TextEncoder().encode("go\n"));
    out = await readUntil(master, /tty=\S+ x=go/, 10000, out);
    assert.match(out, /^40 132\r\n/);
    assert.match(out, /50 100\r\n/);
    assert.match(out, /tty=\/dev\/pts\/\d+ x=go/);

    // The container init was reparented to us (runc exited): the reaper reports its exit code.
    const deadline = Date.now() + 10000;
    while (!exits.some((e) => e.pid === initPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(exits.filter((e) => e.pid === initPid).map((e) => e.status), [7]);
  } finally {
    if (master >= 0) closeFd(master);
    const deleted = await runc("delete", "-f", id);
    socket?.close();
    off();
    r.stop();
    await Deno.remove(dir, { recursive: true });
    assert.equal(deleted.code, 0, deleted.text);
  }
  assert.equal(await exists(socket!.dir), false, "close() removed the socket's directory");
});

Deno.test("console socket: receive times out, and close() fails a pending receive and cleans up", async () => {
  const socket = await ConsoleSocket.create();
  try {
    await assert.rejects(socket.receive(30), Deno.errors.TimedOut);
    const pending = socket.receive(10000);
    socket.close();
    await assert.rejects(pending, /closed/);
    assert.equal(await exists(socket.path), false);
    assert.equal(await exists(socket.dir), false);
    await assert.rejects(socket.receive(), /closed/);
  } finally {
    socket.close();
  }
});

Deno.test("console socket: a peer that sends no fd is an error, not a hang", async () => {
  const socket = await ConsoleSocket.create();
  try {
    const pending = socket.receive(5000);
    const conn = await Deno.connect({ transport: "unix", path: socket.path });
    await conn.write(new TextEncoder().encode("/dev/ptmx"));
    conn.close();
    await assert.rejects(pending, /expected one pty fd, got 0|without sending a pty/);
  } finally {
    socket.close();
  }
});

Deno.test("console socket paths longer than a sockaddr_un can hold are refused", async () => {
  const deep = await Deno.makeTempDir();
  const long = `${deep}/${"d".repeat(100)}`;
  await Deno.mkdir(long);
  try {
    await assert.rejects(ConsoleSocket.create(long), /ENAMETOOLONG/);
    assert.deepEqual([...Deno.readDirSync(long)], [], "the temp dir was removed again");
  } finally {
    await Deno.remove(deep, { recursive: true });
  }
});
