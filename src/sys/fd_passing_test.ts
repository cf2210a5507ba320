import assert from "node:assert/strict";
import { receiveWithFds, sendWithFds } from "./fd_passing.ts";
import { closeFd, pipe, read, write } from "./fdio.ts";
import { F_GETFD, FD_CLOEXEC } from "./abi.ts";
import { libc } from "./libc.ts";
import { poller } from "./poller.ts";
import { acceptUnix, connectUnix, listenUnix } from "./unix_socket.ts";

/** A connected pair of unix stream sockets (non-blocking), through a listener in a temp directory. */
async function socketPair(): Promise<{ a: number; b: number; cleanup: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "fd-passing-test" });
  const listener = listenUnix(`${dir}/s`);
  const a = await connectUnix(`${dir}/s`);
  let b = -1;
  while ((b = acceptUnix(listener)) < 0) await poller().wait(listener, "read");
  closeFd(listener);
  return { a, b, cleanup: () => Deno.remove(dir, { recursive: true }) };
}

Deno.test("fd passing: a pipe's write end travels with the payload and works on the other side", async () => {
  const { a, b, cleanup } = await socketPair();
  const [r, w] = pipe();
  try {
    assert.equal(sendWithFds(a, new TextEncoder().encode("take this"), [w]), 9);
    const got = await receiveWithFds(b, 64, 4, () => poller().wait(b, "read"));
    assert.equal(new TextDecoder().decode(got.data), "take this");
    assert.equal(got.fds.length, 1);
    assert.equal(got.truncated, false);
    const [copy] = got.fds;
    assert.notEqual(copy, w, "the receiver gets its own descriptor");
    assert.equal(libc().fcntl(copy, F_GETFD, 0n) & FD_CLOEXEC, FD_CLOEXEC, "received fds are close-on-exec");
    assert.equal(write(copy, new Uint8Array([42])), 1);
    const buf = new Uint8Array(4);
    assert.equal(read(r, buf), 1);
    assert.equal(buf[0], 42);
    closeFd(copy);
  } finally {
    for (const fd of [a, b, r, w]) closeFd(fd);
    await cleanup();
  }
});

/** The fds this process has open. */
const openFds = () => [...Deno.readDirSync("/proc/self/fd")].length;

Deno.test("fd passing: more fds than the receiver has room for are reported as truncated, none leaked", async () => {
  const { a, b, cleanup } = await socketPair();
  const before = openFds();
  const pipes = [pipe(), pipe(), pipe()];
  try {
    sendWithFds(a, new Uint8Array([1]), pipes.map(([, w]) => w));
    const got = await receiveWithFds(b, 16, 1, () => poller().wait(b, "read"));
    assert.equal(got.truncated, true);
    assert.equal(got.fds.length, 1);
    for (const fd of got.fds) closeFd(fd);
    assert.equal(openFds(), before + 6, "only the three pipes are open: nothing received is left behind");
  } finally {
    for (const fd of [a, b, ...pipes.flat()]) closeFd(fd);
    await cleanup();
  }
});

Deno.test("fd passing: a plain message has no fds; end of file is an empty message", async () => {
  const { a, b, cleanup } = await socketPair();
  try {
    assert.throws(() => sendWithFds(a, new Uint8Array(), []), RangeError);
    sendWithFds(a, new Uint8Array([7, 8]), []);
    const got = await receiveWithFds(b, 16, 1, () => poller().wait(b, "read"));
    assert.deepEqual([...got.data], [7, 8]);
    assert.deepEqual(got.fds, []);
    closeFd(a);
    const eof = await receiveWithFds(b, 16, 1, () => poller().wait(b, "read"));
    assert.equal(eof.data.length, 0);
    assert.deepEqual(eof.fds, []);
  } finally {
    closeFd(b);
    await cleanup();
  }
});
