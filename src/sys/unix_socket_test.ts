import assert from "node:assert/strict";
import { AF_UNIX, LOCK_EX, O_CLOEXEC, O_RDONLY, SOCK_CLOEXEC, SOCK_STREAM } from "./abi.ts";
import { check, cstr, libc } from "./libc.ts";
import { listenReplacingDead, sockaddrUn, unixListening } from "./unix_socket.ts";

/** Runs `listenReplacingDead(path)` in a process of its own; resolves to what it returned ("fd" or "undefined"). */
function listenElsewhere(dir: string, path: string): Deno.ChildProcess {
  const script = `${dir}/listen.ts`;
  Deno.writeTextFileSync(
    script,
    `import { listenReplacingDead } from "${new URL("./unix_socket.ts", import.meta.url).href}";\n` +
      `const fd = listenReplacingDead(${JSON.stringify(path)}, 4);\n` +
      `console.log(fd === undefined ? "undefined" : "fd");\n`,
  );
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-lock", script],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("listenReplacingDead: a socket bound but not yet listening is not taken for dead (the directory lock)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "unix-socket-test" });
  const C = libc();
  const path = `${dir}/s.sock`;
  const dirFd = check(C.open(cstr(dir), O_RDONLY | O_CLOEXEC, 0), "open", dir);
  try {
    // What a concurrent `start` holds between its bind and its listen: the path bound, connections refused.
    check(C.flock(dirFd, LOCK_EX), "flock", dir);
    const fd = check(C.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
    const { addr, len } = sockaddrUn(path, "bind");
    check(C.bind(fd, addr, len), "bind", path);
    assert.equal(unixListening(path), false, "a bound socket that does not listen refuses connections");
    const other = listenElsewhere(dir, path);
    // The other caller waits for the lock instead of replacing the bound socket.
    const early = await Promise.race([
      other.status.then(() => "done"),
      new Promise((r) => setTimeout(r, 500, "waiting")),
    ]);
    assert.equal(early, "waiting", "listenReplacingDead did not wait for the directory lock");
    check(C.listen(fd, 4), "listen", path);
    C.close(dirFd); // releases the lock
    const out = await other.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "undefined", "the live socket was replaced");
    assert.equal(unixListening(path), true);
    C.close(fd);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listenReplacingDead: binds a free path, replaces a dead socket file, leaves a live one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "unix-socket-test" });
  const C = libc();
  try {
    const path = `${dir}/s.sock`;
    const first = listenReplacingDead(path, 4);
    assert.ok(first !== undefined && first >= 0);
    assert.equal(listenReplacingDead(path, 4), undefined, "a live listener was replaced");
    C.close(first); // the file stays, dead
    const second = listenReplacingDead(path, 4);
    assert.ok(second !== undefined && second >= 0, "a dead socket file was not replaced");
    assert.equal(unixListening(path), true);
    C.close(second);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
