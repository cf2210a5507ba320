import assert from "node:assert/strict";
import { parseShimArgs } from "./flags.ts";
import { FlagError } from "../cli/flags.ts";

const noEnv = () => undefined;

Deno.test("server flags: -socket-fd, -spare, -spare-ms and -exec-delete-events as start passes them; absent means none", () => {
  const a = parseShimArgs(
    ["-socket", "/s", "-socket-fd", "3", "-spare", "/run/containerd/s/x", "-spare-ms", "10000", "-exec-delete-events"],
    noEnv,
  );
  assert.equal(a.socketFd, 3);
  assert.equal(a.execDeleteEvents, true);
  assert.equal(a.spare, "/run/containerd/s/x");
  assert.equal(a.spareMs, 10000);
  const b = parseShimArgs(["-socket", "/s"], noEnv);
  assert.equal(b.socketFd, -1);
  assert.equal(b.spare, "");
  assert.equal(b.spareMs, 0);
  assert.equal(b.execDeleteEvents, false);
});

Deno.test("server flags: a -spare-ms or -socket-fd that is not a count is a usage error", () => {
  assert.throws(() => parseShimArgs(["-spare-ms", "10s"], noEnv), FlagError);
  assert.throws(() => parseShimArgs(["-spare-ms", "-1"], noEnv), /flag -spare-ms|flag needs|invalid/);
  assert.throws(
    () => parseShimArgs(["-socket-fd", "x"], noEnv),
    /invalid value "x" for flag -socket-fd: not a fd number/,
  );
});
