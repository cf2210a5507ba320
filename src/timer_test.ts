import assert from "node:assert/strict";
import { after, every, sleep, within } from "./timer.ts";
import { loadedScripts, NODE_TIMERS_SCRIPTS, scriptLogFlag } from "../tests/harness/v8_scripts.ts";

/**
 * The timers under test keep nothing alive, and `deno test` fails a test whose promise is pending on an empty event
 * loop: a plain (ref'd) interval keeps this test process running meanwhile. (The test process itself may load the
 * Node timers module; the subprocess tests below check that these timers do not.)
 */
async function alive<T>(fn: () => Promise<T>): Promise<T> {
  const keep = setInterval(() => {}, 1000);
  try {
    return await fn();
  } finally {
    clearInterval(keep);
  }
}

Deno.test("after runs its callback once and is then inactive", () =>
  alive(async () => {
    let runs = 0;
    const { promise, resolve } = Promise.withResolvers<void>();
    const t = after(5, () => {
      runs++;
      resolve();
    });
    assert.equal(t.active, true);
    await promise;
    await sleep(20);
    assert.equal(runs, 1);
    assert.equal(t.active, false);
    t.cancel(); // harmless after it ran
  }));

Deno.test("a cancelled after never runs, a later one still does", () =>
  alive(async () => {
    let cancelledRan = false;
    const t = after(1, () => cancelledRan = true);
    t.cancel();
    t.cancel();
    assert.equal(t.active, false);
    await sleep(30);
    assert.equal(cancelledRan, false);
  }));

Deno.test("zero, negative and NaN delays fire like setTimeout's", () =>
  alive(async () => {
    const fired: number[] = [];
    const all = [0, -5, NaN].map((ms, i) => new Promise<void>((r) => after(ms, () => (fired.push(i), r()))));
    await Promise.all(all);
    assert.deepEqual(fired.sort(), [0, 1, 2]);
  }));

Deno.test("every repeats until cancelled, also from inside its callback", () =>
  alive(async () => {
    let runs = 0;
    const { promise, resolve } = Promise.withResolvers<void>();
    const t = every(2, () => {
      if (++runs === 3) {
        t.cancel();
        resolve();
      }
    });
    await promise;
    await sleep(30);
    assert.equal(runs, 3);
    assert.equal(t.active, false);
  }));

Deno.test("sleep resolves, and rejects with the signal's reason on abort", () =>
  alive(async () => {
    await sleep(1);
    const ac = new AbortController();
    const s = sleep(60_000, ac.signal);
    ac.abort(new Error("stop"));
    await assert.rejects(s, /stop/);
    await assert.rejects(sleep(1, AbortSignal.abort(new Error("already"))), /already/);
  }));

/** Runs `code` (a module that imports timer.ts by absolute URL) with V8's script log; its stdout and loaded scripts. */
async function runScript(code: string): Promise<{ out: string; code: number; scripts: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "timer-test-" });
  try {
    const script = `${dir}/script.ts`;
    const log = `${dir}/v8.log`;
    await Deno.writeTextFile(script, code.replaceAll("TIMER_URL", new URL("./timer.ts", import.meta.url).href));
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", scriptLogFlag(log), script],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // A watchdog, not a measurement: a timer that kept the process alive would otherwise hang the test.
    const watchdog = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const out = await child.output().finally(() => clearTimeout(watchdog));
    return { out: new TextDecoder().decode(out.stdout), code: out.code, scripts: await loadedScripts(log) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a pending timer keeps nothing alive: the process ends without running it", async () => {
  const r = await runScript(`
    import { after, every } from "TIMER_URL";
    after(3_600_000, () => console.log("after ran"));
    every(3_600_000, () => console.log("every ran"));
    console.log("end");
  `);
  assert.equal(r.code, 0, "the process was killed by the watchdog or failed");
  assert.equal(r.out, "end\n");
});

Deno.test("after, every and sleep run without loading Deno's Node timers module", async () => {
  // stdin stays open while the child runs (a pending read keeps it alive), so its timers get to fire.
  const r = await runScript(`
    import { after, every, sleep } from "TIMER_URL";
    const keep = Deno.stdin.read(new Uint8Array(1));
    await sleep(1);
    await new Promise((r) => after(1, r));
    await new Promise((r) => { const t = every(1, () => { t.cancel(); r(); }); });
    console.log("done");
    Deno.exit(0);
  `);
  assert.equal(r.out, "done\n");
  assert.ok(r.scripts.length > 0, "the V8 log lists no scripts");
  const timers = r.scripts.filter((s) => NODE_TIMERS_SCRIPTS.includes(s));
  assert.deepEqual(timers, []);
});

Deno.test("the check sees the Node timers module when a setTimeout loads it", async () => {
  const r = await runScript(`
    const keep = Deno.stdin.read(new Uint8Array(1));
    await new Promise((r) => setTimeout(r, 1));
    Deno.exit(0);
  `);
  assert.ok(r.scripts.some((s) => NODE_TIMERS_SCRIPTS.includes(s)), r.scripts.join("\n"));
});

Deno.test("within: true when the promise settles first (rejected too), false when the time runs out", () =>
  alive(async () => {
    assert.equal(await within(sleep(5), 2000), true);
    assert.equal(await within(Promise.reject(new Error("x")), 2000), true);
    assert.equal(await within(new Promise(() => {}), 20), false);
  }));
