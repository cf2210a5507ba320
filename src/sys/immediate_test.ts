import assert from "node:assert/strict";
import { immediateQueue } from "./immediate.ts";

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
