import assert from "node:assert/strict";
import {
  alreadyExists,
  ClosedError,
  Code,
  codeName,
  deadlineExceeded,
  errorFromStatus,
  failedPrecondition,
  internal,
  invalidArgument,
  isClosedError,
  notFound,
  statusFromError,
  TtrpcError,
  unavailable,
  unimplemented,
} from "./status.ts";

Deno.test("Code has the 17 gRPC values", () => {
  const names = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
  ];
  names.forEach((n, i) => assert.equal(codeName(i), n));
  assert.equal(codeName(42), "Code(42)");
});

Deno.test("helpers build errors with the right code and message", () => {
  const cases: [TtrpcError, Code][] = [
    [notFound("x: not found"), Code.NotFound],
    [alreadyExists("id e1: already exists"), Code.AlreadyExists],
    [failedPrecondition("p"), Code.FailedPrecondition],
    [invalidArgument("i"), Code.InvalidArgument],
    [unimplemented("u"), Code.Unimplemented],
    [internal("in"), Code.Internal],
    [unavailable("un"), Code.Unavailable],
  ];
  for (const [err, code] of cases) {
    assert.ok(err instanceof Error);
    assert.equal(err.code, code);
    assert.deepEqual(statusFromError(err), { code, message: err.message, details: [] });
  }
  assert.equal(deadlineExceeded().message, "context deadline exceeded");
});

Deno.test("plain errors become Unknown with their message; Deno's not-found/exists/permission keep Go's mapping", () => {
  assert.deepEqual(statusFromError(new Error("cannot delete a running process")), {
    code: Code.Unknown,
    message: "cannot delete a running process",
    details: [],
  });
  assert.equal(statusFromError("boom").message, "boom");
  assert.equal(statusFromError(new Deno.errors.NotFound("nope")).code, Code.NotFound);
  assert.equal(statusFromError(new Deno.errors.AlreadyExists("dup")).code, Code.AlreadyExists);
  assert.equal(statusFromError(new Deno.errors.PermissionDenied("no")).code, Code.PermissionDenied);
});

Deno.test("ClosedError says ttrpc: closed and is recognisable", () => {
  const e = new ClosedError(new Error("EOF"));
  assert.equal(e.message, "ttrpc: closed");
  assert.equal(e.code, Code.Unavailable);
  assert.ok(isClosedError(e));
  assert.ok(!isClosedError(unavailable("ttrpc: closed")));
  assert.ok(e instanceof TtrpcError);
});

Deno.test("errorFromStatus keeps code, message and details", () => {
  const d = [{ typeUrl: "t", value: new Uint8Array([1]) }];
  const e = errorFromStatus({ code: 5, message: "m", details: d });
  assert.equal(e.code, Code.NotFound);
  assert.equal(e.message, "m");
  assert.deepEqual(e.details, d);
});
