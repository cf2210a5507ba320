import assert from "node:assert/strict";
import { EFD_CLOEXEC, EFD_NONBLOCK, EFD_SEMAPHORE, F_GETFD, FD_CLOEXEC } from "./abi.ts";
import { eventfd, eventfdRead, eventfdWrite } from "./eventfd.ts";
import { libc } from "./libc.ts";

Deno.test("eventfd counts writes and resets on read", () => {
  const fd = eventfd();
  try {
    assert.equal(libc().fcntl(fd, F_GETFD, 0n) & FD_CLOEXEC, FD_CLOEXEC);
    assert.equal(eventfdRead(fd), -1n);
    assert.ok(eventfdWrite(fd, 3));
    assert.ok(eventfdWrite(fd));
    assert.equal(eventfdRead(fd), 4n);
    assert.equal(eventfdRead(fd), -1n);
  } finally {
    libc().close(fd);
  }
});

Deno.test("eventfd semaphore mode hands out one at a time", () => {
  const fd = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);
  try {
    assert.equal(eventfdRead(fd), 1n);
    assert.equal(eventfdRead(fd), 1n);
    assert.equal(eventfdRead(fd), -1n);
  } finally {
    libc().close(fd);
  }
});

Deno.test("eventfdWrite reports a full counter instead of blocking", () => {
  const fd = eventfd();
  try {
    assert.ok(eventfdWrite(fd, 0xfffffffffffffffen));
    assert.equal(eventfdWrite(fd, 1), false);
  } finally {
    libc().close(fd);
  }
});
