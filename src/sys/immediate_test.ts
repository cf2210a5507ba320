import assert from "node:assert/strict";
import { immediateQueue, turnEnd, turnEnded } from "./immediate.ts";

Deno.test("an immediate runs after the microtasks queued before it, in the order queued", async () => {
  const queue = immediateQueue();
  assert.ok(queue, "Deno 2.9's core has the immediate queue");
  const order: string[] = [];
  const done = Promise.withResolvers<void>();
  queue(() => order.push("immediate 1"));
  queue(() => {
    order.push("immediate 2");
    done.resolve();
  });
  queueMicrotask(() => order.push("microtask"));
  Promise.resolve().then(() => order.push("promise"));
  await done.promise;
  assert.deepEqual(order, ["microtask", "promise", "immediate 1", "immediate 2"]);
});

Deno.test("a queued immediate keeps the event loop alive until it runs (it is ref'd)", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { immediateQueue } from "${new URL("./immediate.ts", import.meta.url)}";
      immediateQueue()(() => console.log("ran"));`,
    ],
    stdout: "piped",
    stderr: "inherit",
  });
  const out = await child.output();
  assert.equal(out.code, 0);
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "ran");
});

Deno.test("turn end: `soon` callbacks and their microtasks run before a `last` callback queued earlier", async () => {
  const ends = turnEnd();
  assert.ok(ends);
  const order: string[] = [];
  const done = Promise.withResolvers<void>();
  ends.last(() => {
    order.push("last");
    done.resolve();
  });
  ends.soon(() => {
    order.push("soon 1");
    queueMicrotask(() => order.push("microtask of soon 1"));
  });
  ends.soon(() => order.push("soon 2"));
  queueMicrotask(() => order.push("microtask"));
  await done.promise;
  assert.deepEqual(order, ["microtask", "soon 1", "soon 2", "microtask of soon 1", "last"]);
});

Deno.test("turn end: a `soon` queued once this turn's end began runs before a pending `last`, a turn later", async () => {
  const ends = turnEnd()!;
  const order: string[] = [];
  const done = Promise.withResolvers<void>();
  ends.soon(() => {
    order.push("soon 1");
    // Between the `soon` step and the `last` step of this turn's end: too late to run before it in this pass.
    queueMicrotask(() => ends.soon(() => order.push("soon 2")));
  });
  ends.last(() => {
    order.push("last");
    // A `soon` queued by a `last` callback runs at the next turn's end, as does the `last` it queues.
    ends.soon(() => order.push("soon 3"));
    ends.last(() => {
      order.push("last 2");
      done.resolve();
    });
  });
  await done.promise;
  assert.deepEqual(order, ["soon 1", "soon 2", "last", "soon 3", "last 2"]);
});

Deno.test("turn end: a callback that throws is reported, and the others still run", async () => {
  const ends = turnEnd()!;
  const reported: unknown[] = [];
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    reported.push(e.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const order: string[] = [];
    const done = Promise.withResolvers<void>();
    ends.soon(() => {
      throw new Error("boom");
    });
    ends.soon(() => order.push("soon 2"));
    ends.last(() => {
      order.push("last");
      done.resolve();
    });
    await done.promise;
    assert.deepEqual(order, ["soon 2", "last"]);
    assert.equal(reported.length, 1);
    assert.match(String(reported[0]), /boom/);
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

Deno.test("turnEnded() resolves after the microtasks queued before it", async () => {
  const order: string[] = [];
  const ended = turnEnded().then(() => order.push("turn ended"));
  queueMicrotask(() => order.push("microtask"));
  await ended;
  assert.deepEqual(order, ["microtask", "turn ended"]);
});
