import assert from "node:assert/strict";
import { cpuOf, memoryTotals, mustTime, processesSharingExe, timed } from "./procs.ts";
import { shimEnv, startAddress } from "./phase_start.ts";

Deno.test("cpuOf and memoryTotals read this process; a gone pid is skipped", async () => {
  const cpu = await cpuOf(Deno.pid);
  assert.ok(cpu && cpu.cpuNs > 0, "this process has used CPU");
  const child = new Deno.Command("true").spawn();
  await child.status; // reaped: its pid is gone
  assert.equal(await cpuOf(child.pid), null);
  const m = await memoryTotals([Deno.pid, child.pid]);
  assert.equal(m.processes, 1);
  assert.ok(m.ussKiB > 0 && m.pssKiB >= m.ussKiB && m.rssKiB >= m.pssKiB, JSON.stringify(m));
});

Deno.test("processesSharingExe counts this deno at least", async () => {
  assert.ok(await processesSharingExe(Deno.execPath()) >= 1);
});

Deno.test("timed measures wall time and captures output; mustTime throws on failure", async () => {
  const r = await timed("sh", ["-c", "sleep 0.05; echo hi; echo oops >&2"], { captureStdout: true });
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "hi\n");
  assert.equal(r.stderr, "oops\n");
  assert.ok(r.ms >= 50, `${r.ms} ms`);
  await assert.rejects(mustTime("sh", ["-c", "echo bad >&2; exit 3"]), /exited 3: bad/);
  await assert.rejects(timed("sleep", ["5"], { timeoutMs: 100 }), /did not finish within 100 ms/);
});

Deno.test("startAddress: the plain v2 address and the bootstrap JSON of containerd 2.x's shims", () => {
  assert.equal(startAddress("unix:///run/containerd/s/abc\n"), "/run/containerd/s/abc");
  assert.equal(
    startAddress('{"version":3,"address":"unix:///run/containerd/s/abc","protocol":"ttrpc"}\n'),
    "/run/containerd/s/abc",
  );
  assert.throws(() => startAddress("error: boom"), /no unix address/);
});

Deno.test("shimEnv: what the lab's containerd sets for a shim, 1.6 without the 1.7 additions", () => {
  const lab = (series: "1.6" | "1.7" | "2") => ({
    address: "/l/c.sock",
    ttrpcAddress: "/l/c.sock.ttrpc",
    containerd: { series, version: "x" },
  });
  assert.deepEqual(shimEnv(lab("1.6"), "ns"), { TTRPC_ADDRESS: "/l/c.sock.ttrpc", GOMAXPROCS: "2" });
  for (const series of ["1.7", "2"] as const) {
    assert.deepEqual(shimEnv(lab(series), "ns"), {
      TTRPC_ADDRESS: "/l/c.sock.ttrpc",
      GOMAXPROCS: "2",
      GRPC_ADDRESS: "/l/c.sock",
      NAMESPACE: "ns",
      MAX_SHIM_VERSION: "2",
    });
  }
});
