import assert from "node:assert/strict";
import { DEFAULT_SPARE_SECONDS, parseConfig } from "./config.ts";

Deno.test("shim config: the defaults, spares included", () => {
  assert.deepEqual(parseConfig({}, "t"), {
    grouping: "pod",
    startOutput: "plain",
    taskApiVersion: "auto",
    spareSeconds: DEFAULT_SPARE_SECONDS,
    execDeleteEvents: false,
  });
  assert.equal(DEFAULT_SPARE_SECONDS, 10);
});

Deno.test("shim config: spareSeconds takes 0 (off) up to an hour, fractions included; anything else is an error", () => {
  assert.equal(parseConfig({ spareSeconds: 0 }, "t").spareSeconds, 0);
  assert.equal(parseConfig({ spareSeconds: 0.5 }, "t").spareSeconds, 0.5);
  assert.equal(parseConfig({ spareSeconds: 3600 }, "t").spareSeconds, 3600);
  for (const bad of [-1, 3601, "10", null, Number.NaN]) {
    assert.throws(() => parseConfig({ spareSeconds: bad }, "/etc/x.json"), /\/etc\/x\.json: spareSeconds must be/);
  }
  assert.throws(() => parseConfig({ spare: 1 }, "t"), /unknown setting "spare"/);
});

Deno.test("shim config: execDeleteEvents is a boolean, off unless set", () => {
  assert.equal(parseConfig({ execDeleteEvents: true }, "t").execDeleteEvents, true);
  assert.equal(parseConfig({ execDeleteEvents: false }, "t").execDeleteEvents, false);
  for (const bad of ["true", 1, null]) {
    assert.throws(
      () => parseConfig({ execDeleteEvents: bad }, "/etc/x.json"),
      /execDeleteEvents must be true or false/,
    );
  }
});
