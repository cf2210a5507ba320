/**
 * Issue 12, the inspector: Deno opens a V8 inspector on 127.0.0.1:9229 when it receives SIGUSR1 (armed ≈500 ms after
 * start-up). A SIGUSR1 storm from the server's first moment on, across the time Deno arms its handler, must neither
 * open the inspector nor kill the server; and the server's children (runc, hence the container) must not inherit the
 * blocked signal the server starts with.
 */
import assert from "node:assert/strict";
import { busyboxRootfs, FakeEvents, makeBundle, runShim, TaskClient } from "./harness/shim.ts";

async function listening9229(): Promise<boolean> {
  const out = await new Deno.Command("ss", { args: ["-Hltn", "sport = :9229"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim() !== "";
}

/** Pids whose command line holds every one of `words`. */
async function pidsWith(words: string[]): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const argv: string[] = await Deno.readTextFile(`/proc/${e.name}/cmdline`).then((t) => t.split("\0"), () => []);
    if (words.every((w) => argv.includes(w))) out.push(Number(e.name));
  }
  return out;
}

/** The signal bits of `/proc/<pid>/status`-style text for `field` (SigBlk, SigIgn…). */
function bits(status: string, field: string): bigint {
  const m = new RegExp(`^${field}:\\s*([0-9a-f]+)`, "m").exec(status);
  assert.ok(m, `${field} missing in ${status}`);
  return BigInt(`0x${m[1]}`);
}
const USR1 = 1n << 9n;

Deno.test("SIGUSR1 from the server's first moment: no inspector, no death, children unaffected", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shim-inspector-" });
  const ns = `insp${Date.now() % 100000}`;
  const events = FakeEvents.start(dir);
  let client: TaskClient | undefined;
  let storming = true;
  const signalled = new Set<number>();
  try {
    assert.equal(await listening9229(), false, "something already listens on 9229");
    await busyboxRootfs(dir);
    const out = `${dir}/status.txt`;
    const bundle = await makeBundle(dir, "i1", ["sh", "-c", "cat /proc/self/status"]);
    // Signal every process of this server (the launcher's deno, from its exec on) every few ms for 2.5 s.
    const storm = (async () => {
      const until = Date.now() + 2500;
      while (storming && Date.now() < until) {
        for (const pid of await pidsWith(["-socket", "-namespace", ns])) {
          try {
            Deno.kill(pid, "SIGUSR1");
            signalled.add(pid);
          } catch { /* gone */ }
        }
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    const opts = { bundle, id: "i1", namespace: ns, address: `${dir}/containerd.sock`, ttrpcAddress: events.path };
    const started = await runShim("start", opts);
    assert.equal(started.code, 0, started.stderr);
    client = await TaskClient.connect(new TextDecoder().decode(started.stdout), ns);
    const pid = (await client.call("Connect", { id: "i1" })).shimPid;
    await storm;
    assert.ok(signalled.has(pid), "the storm never reached the server");
    assert.equal(await listening9229(), false, "the server opened the inspector on SIGUSR1");
    assert.equal((await client.call("Connect", { id: "i1" })).shimPid, pid, "the server died on SIGUSR1");
    const self = await Deno.readTextFile(`/proc/${pid}/status`);
    assert.equal(bits(self, "SigIgn") & USR1, USR1, "SIGUSR1 is not ignored by the server");

    await client.call("Create", { id: "i1", bundle, stdout: `file://${out}` });
    await client.call("Start", { id: "i1" });
    assert.equal((await client.call("Wait", { id: "i1" })).exitStatus, 0);
    const child = await Deno.readTextFile(out);
    assert.equal(bits(child, "SigBlk") & USR1, 0n, `the container inherited a blocked SIGUSR1:\n${child}`);
    assert.equal(bits(child, "SigIgn") & USR1, 0n, `the container inherited an ignored SIGUSR1:\n${child}`);
    await client.call("Delete", { id: "i1" });
    await client.call("Shutdown", { id: "i1" });
  } finally {
    storming = false;
    client?.close();
    events.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
