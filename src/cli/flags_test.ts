import assert from "node:assert/strict";
import { FlagError, formatGoFlags, parseGoFlags } from "./flags.ts";

const spec = {
  namespace: "string",
  address: "string",
  "publish-binary": "string",
  id: "string",
  bundle: "string",
  debug: "boolean",
} as const;

Deno.test("parses containerd's start command line", () => {
  const argv = [
    "-namespace",
    "k8s.io",
    "-address",
    "/run/c.sock",
    "-publish-binary",
    "/usr/bin/containerd",
    "-id",
    "abc",
    "-debug",
    "start",
  ];
  const { flags, args } = parseGoFlags(argv, spec);
  assert.deepEqual(flags, {
    namespace: "k8s.io",
    address: "/run/c.sock",
    "publish-binary": "/usr/bin/containerd",
    id: "abc",
    debug: true,
  });
  assert.deepEqual(args, ["start"]);
});

Deno.test("accepts = forms, double dashes and explicit booleans", () => {
  const { flags, args } = parseGoFlags(["--namespace=ns", "-id=x=y", "-debug=false", "--bundle", "/b", "delete"], spec);
  assert.deepEqual(flags, { namespace: "ns", id: "x=y", debug: false, bundle: "/b" });
  assert.deepEqual(args, ["delete"]);
  assert.equal(parseGoFlags(["-debug=1"], spec).flags.debug, true);
  assert.equal(parseGoFlags(["-debug=F"], spec).flags.debug, false);
});

Deno.test("stops at the first positional and after --", () => {
  assert.deepEqual(parseGoFlags(["start", "-id", "x"], spec).args, ["start", "-id", "x"]);
  assert.deepEqual(parseGoFlags(["-id", "x", "--", "-debug"], spec), { flags: { id: "x" }, args: ["-debug"] });
  assert.deepEqual(parseGoFlags(["-", "x"], spec).args, ["-", "x"]);
});

Deno.test("rejects what Go rejects, with Go's words", () => {
  assert.throws(() => parseGoFlags(["-nosuch", "x"], spec), new FlagError("flag provided but not defined: -nosuch"));
  assert.throws(() => parseGoFlags(["-id"], spec), /flag needs an argument: -id/);
  assert.throws(() => parseGoFlags(["-debug=maybe"], spec), /invalid boolean value "maybe" for -debug/);
  assert.throws(() => parseGoFlags(["---id", "x"], spec), /bad flag syntax: ---id/);
  assert.throws(() => parseGoFlags(["-=x"], spec), /bad flag syntax/);
});

Deno.test("formatGoFlags round-trips through parseGoFlags", () => {
  const argv = formatGoFlags({ namespace: "n", id: "i", debug: true, bundle: undefined, address: "" });
  assert.deepEqual(argv, ["-namespace", "n", "-id", "i", "-debug", "-address", ""]);
  assert.deepEqual(parseGoFlags(argv, spec).flags, { namespace: "n", id: "i", debug: true, address: "" });
});
