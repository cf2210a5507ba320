import assert from "node:assert/strict";
import { EAGAIN, ENXIO, errnoName, isErrno, SysError } from "./errno.ts";

Deno.test("SysError reads like a C error with its path and symbolic name", () => {
  const e = new SysError("open", ENXIO, "/run/x/stdout");
  assert.equal(e.message, "open /run/x/stdout: No such device or address (ENXIO)");
  assert.equal(e.errno, 6);
  assert.equal(e.code, "ENXIO");
  assert.equal(e.syscall, "open");
  assert.equal(e.name, "SysError");
  assert.ok(e instanceof Error);
});

Deno.test("SysError without a path, and unknown errnos", () => {
  assert.equal(new SysError("pipe2", 24).message, "pipe2: Too many open files (EMFILE)");
  assert.equal(new SysError("x", 4095).message, "x: Unknown error 4095 (errno 4095)");
  assert.equal(errnoName(11), "EAGAIN");
});

Deno.test("isErrno matches SysErrors by errno only", () => {
  const e = new SysError("read", EAGAIN);
  assert.ok(isErrno(e, ENXIO, EAGAIN));
  assert.ok(!isErrno(e, ENXIO));
  assert.ok(!isErrno(new Error("EAGAIN"), EAGAIN));
});
