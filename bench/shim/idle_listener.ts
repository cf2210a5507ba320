/**
 * The memory floor of a Deno server: an idle Deno process that only listens on a unix socket, run by the same deno
 * executable and with the same `deno run` flags as our shim server, measured the way the memory phase measures the
 * servers (`smaps_rollup`). A per-pod server's private dirty memory is compared with this one's: the runtime's code
 * pages are shared and counted by neither, so private dirty (anonymous) memory is what a server adds on its own.
 *
 * @example
 * ```ts
 * const floor = await measureIdleListener("/usr/local/bin/deno", 3);
 * console.log(`${floor.privateDirtyKiB} KiB private dirty`);
 * ```
 * @module
 */
import { shimRunFlags } from "../../src/permissions.ts";

/** Memory of one process from `smaps_rollup`, KiB. */
export interface RollupKiB {
  pssKiB: number;
  /** Private_Clean + Private_Dirty. */
  ussKiB: number;
  privateDirtyKiB: number;
}

/** Reads `/proc/<pid>/smaps_rollup`; null when the process is gone. */
export async function rollupOf(pid: number): Promise<RollupKiB | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`);
  } catch {
    return null;
  }
  const field = (name: string) => Number(text.match(new RegExp(`^${name}:\\s+(\\d+)`, "m"))?.[1] ?? 0);
  return {
    pssKiB: field("Pss"),
    ussKiB: field("Private_Clean") + field("Private_Dirty"),
    privateDirtyKiB: field("Private_Dirty"),
  };
}

/** Private dirty KiB summed over `pids` (vanished ones skipped), with how many were read. */
export async function privateDirtyTotal(pids: readonly number[]): Promise<{ processes: number; kiB: number }> {
  let processes = 0, kiB = 0;
  for (const pid of pids) {
    const r = await rollupOf(pid);
    if (!r) continue;
    processes++;
    kiB += r.privateDirtyKiB;
  }
  return { processes, kiB };
}

const LISTENER = `const l = Deno.listen({ transport: "unix", path: Deno.args[0] });
await Deno.stdout.write(new TextEncoder().encode("ready\\n"));
for await (const c of l) c.close();
`;

/**
 * Starts the idle listener with `deno` (the executable our servers run) and the shim's flags plus `--allow-net`
 * (which `Deno.listen` needs and the shim does not hold), waits `settleSeconds` after it reports ready, reads its
 * memory and stops it.
 */
export async function measureIdleListener(deno: string, settleSeconds: number): Promise<RollupKiB> {
  const dir = await Deno.makeTempDir({ prefix: "bench-listener-" });
  const child = new Deno.Command(deno, {
    args: ["run", ...shimRunFlags("server"), "--allow-net", `${dir}/listener.js`, `${dir}/s.sock`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  });
  await Deno.writeTextFile(`${dir}/listener.js`, LISTENER);
  const proc = child.spawn();
  try {
    const reader = proc.stdout.getReader();
    const first = await reader.read();
    reader.releaseLock();
    if (!new TextDecoder().decode(first.value ?? new Uint8Array()).startsWith("ready")) {
      const err = new TextDecoder().decode((await proc.output()).stderr);
      throw new Error(`idle listener did not start: ${err.trim()}`);
    }
    await new Promise((r) => setTimeout(r, settleSeconds * 1000));
    const m = await rollupOf(proc.pid);
    if (!m) throw new Error("idle listener exited before it was measured");
    return m;
  } finally {
    try {
      proc.kill("SIGKILL");
    } catch {
      // already gone
    }
    await proc.status;
    await proc.stdout.cancel().catch(() => {});
    await proc.stderr.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

/** CPU ns and context switches of each live thread of a process, by thread id. */
export type ThreadCpu = Map<string, { cpuNs: number; switches: number }>;

/** Reads every live thread of `pid` (`schedstat`, `status`); null when the process is gone. */
export async function threadCpu(pid: number): Promise<ThreadCpu | null> {
  const out: ThreadCpu = new Map();
  try {
    for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
      try {
        const sched = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/schedstat`);
        const status = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/status`);
        let switches = 0;
        for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) switches += Number(m[1]);
        out.set(t.name, { cpuNs: Number(sched.split(" ")[0]), switches });
      } catch { /* the thread exited between listing and reading */ }
    }
  } catch {
    return null;
  }
  return out;
}

/**
 * CPU used between two readings of one process: per thread, what it used since the first reading (a thread born in
 * between counts from zero). A thread that exited in between is left out — its last moments are lost, never
 * subtracted: summing live threads only made the interval negative when Deno's blocking-pool threads (idle for 10 s)
 * exited during it.
 */
export function threadCpuDelta(before: ThreadCpu, after: ThreadCpu): { cpuNs: number; switches: number } {
  let cpuNs = 0, switches = 0;
  for (const [tid, a] of after) {
    const b = before.get(tid);
    cpuNs += a.cpuNs - (b?.cpuNs ?? 0);
    switches += a.switches - (b?.switches ?? 0);
  }
  return { cpuNs, switches };
}
