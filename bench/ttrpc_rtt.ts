/**
 * ttrpc round trips and their CPU cost per transport, side by side in one run, interleaved so that all transports
 * share the machine's load. First in one process (client and server on the same transport, sequential 64 B echo and
 * empty reply with timeout and metadata; CPU of the process per 10,000). Then across processes: a ttrpc server
 * in a process of its own serves the same handler on `Deno.Conn` (`Deno.listen`), on libc sockets read on Deno's
 * reactor (opt-in, `src/sys/reactor_reader.ts`), on libc sockets read through the epoll poller, and on the same with
 * the poller's linger (what the shim's server ships: `Poller.linger`, in a server process of its own since the linger
 * is per process). The client (this process) always uses `Deno.Conn`, so only the server's transport differs. In one
 * process the linger is left out: it would apply to the client's end too.
 *
 * Per transport and round: wall time per sequential 64 B echo, and CPU time (utime + stime from /proc/<pid>/stat)
 * of the server and of the client per 10,000 round trips. Rounds rotate the transports' order. Then idle cost: one
 * server per read mode holding one idle connection for IDLE_S seconds, its CPU time measured.
 * Prints medians over the rounds and the load average. Reported, not asserted.
 *
 * @example
 * ```sh
 * deno run --allow-all bench/ttrpc_rtt.ts            # 7 rounds of 10,000 round trips, 5 s idle
 * BENCH_RTT_ROUNDS=3 BENCH_RTT_CALLS=5000 BENCH_RTT_IDLE_S=2 deno run --allow-all bench/ttrpc_rtt.ts
 * ```
 * @module
 */
import { Client } from "../src/ttrpc/client.ts";
import { Server } from "../src/ttrpc/server.ts";
import { type ReadMode, UnixConn, UnixListener } from "../src/sys/unix_stream.ts";
import { poller } from "../src/sys/poller.ts";

const SERVICE = "bench.v1.Echo";
const LINGER = "libc, poller reads, linger 1 ms (shipped)";
const TRANSPORTS = ["Deno.Conn", "libc, reactor reads", "libc, poller reads", LINGER] as const;
type Transport = typeof TRANSPORTS[number];
/** The transports measured with client and server in one process. */
const IN_PROCESS = TRANSPORTS.filter((t) => t !== LINGER);
const SOCKET: Record<Transport, string> = {
  "Deno.Conn": "deno.sock",
  "libc, reactor reads": "reactor.sock",
  "libc, poller reads": "poller.sock",
  [LINGER]: "linger.sock",
};

const CLK_TCK = 100; // USER_HZ on Linux

/** utime + stime of `pid` in ms. */
function cpuMs(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 1000 / CLK_TCK;
}

/** Prints a titled markdown table (with the load average in the title line). */
function printTable(title: string, header: string[], rows: string[][]): void {
  console.log(`# ${title}; load ${loadavg()}`);
  for (const cells of [header, header.map(() => "---"), ...rows]) console.log(`| ${cells.join(" | ")} |`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function serve(dir: string, which: string[]): Promise<void> {
  if (which.includes(LINGER) && !poller().linger(1)) throw new Error("this runtime cannot linger");
  const server = new Server();
  server.register(SERVICE, { Echo: (p) => p });
  for (const t of which as Transport[]) {
    const path = `${dir}/${SOCKET[t]}`;
    if (t === "Deno.Conn") server.serve(Deno.listen({ transport: "unix", path }));
    else {server.serve(
        UnixListener.listen(path, { reads: (t === "libc, reactor reads" ? "reactor" : "poller") as ReadMode }),
      );}
  }
  console.log("ready");
  await new Promise(() => {}); // killed by the parent
}

/** Client and server in this process, same transport at both ends. */
async function inProcess(dir: string, rounds: number, calls: number): Promise<void> {
  const server = new Server();
  server.register(SERVICE, { Echo: (p) => p, Empty: () => new Uint8Array(0) });
  const listeners = [
    Deno.listen({ transport: "unix", path: `${dir}/in-deno.sock` }),
    UnixListener.listen(`${dir}/in-reactor.sock`, { reads: "reactor" }),
    UnixListener.listen(`${dir}/in-poller.sock`, { reads: "poller" }),
  ];
  for (const l of listeners) server.serve(l);
  const clients: Record<typeof IN_PROCESS[number], Client> = {
    "Deno.Conn": await Client.connectUnix(`${dir}/in-deno.sock`),
    "libc, reactor reads": new Client(await UnixConn.connect(`${dir}/in-reactor.sock`, { reads: "reactor" })),
    "libc, poller reads": new Client(await UnixConn.connect(`${dir}/in-poller.sock`, { reads: "poller" })),
  };
  const payload = new Uint8Array(64).fill(7);
  const md = { timeoutMs: 10_000, metadata: { "containerd-namespace-ttrpc": "default" } };
  const res = new Map<Transport, { echo: number[]; md: number[]; cpu: number[] }>();
  for (const t of IN_PROCESS) res.set(t, { echo: [], md: [], cpu: [] });
  for (const c of Object.values(clients)) for (let i = 0; i < 500; i++) await c.call(SERVICE, "Echo", payload);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < IN_PROCESS.length; k++) {
      const t = IN_PROCESS[(r + k) % IN_PROCESS.length];
      const c = clients[t], out = res.get(t)!;
      const c0 = cpuMs("self");
      let t0 = performance.now();
      for (let i = 0; i < calls; i++) await c.call(SERVICE, "Echo", payload);
      out.echo.push((performance.now() - t0) * 1000 / calls);
      out.cpu.push((cpuMs("self") - c0) * 10_000 / calls);
      t0 = performance.now();
      for (let i = 0; i < calls; i++) await c.call(SERVICE, "Empty", payload, md);
      out.md.push((performance.now() - t0) * 1000 / calls);
    }
  }
  for (const c of Object.values(clients)) c.close();
  await server.shutdown();
  printTable(
    `in one process: ${rounds} rounds × ${calls} calls per kind`,
    ["transport (both ends)", "µs per 64 B echo (median; min)", "µs per empty reply + metadata", "CPU ms / 10k echoes"],
    IN_PROCESS.map((t) => {
      const r = res.get(t)!;
      return [
        t,
        `${median(r.echo).toFixed(1)} (${Math.min(...r.echo).toFixed(1)})`,
        `${median(r.md).toFixed(1)} (${Math.min(...r.md).toFixed(1)})`,
        median(r.cpu).toFixed(0),
      ];
    }),
  );
}

function loadavg(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

async function startServer(dir: string, which: Transport[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL(import.meta.url).pathname, "--serve", dir, ...which],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  if (!new TextDecoder().decode(value).includes("ready")) throw new Error("server did not start");
  reader.releaseLock();
  return child;
}

async function main(): Promise<void> {
  const rounds = Number(Deno.env.get("BENCH_RTT_ROUNDS") ?? 7);
  const calls = Number(Deno.env.get("BENCH_RTT_CALLS") ?? 10_000);
  const idleS = Number(Deno.env.get("BENCH_RTT_IDLE_S") ?? 5);
  const payload = new Uint8Array(64).fill(7);
  const dir = await Deno.makeTempDir({ prefix: "ttrpc-rtt-" });
  try {
    await inProcess(dir, rounds * 3, Math.max(1, Math.floor(calls / 5)));
    const children = [await startServer(dir, IN_PROCESS), await startServer(dir, [LINGER])];
    const serverOf = (t: Transport) => t === LINGER ? children[1] : children[0];
    const clients = new Map<Transport, Client>();
    for (const t of TRANSPORTS) clients.set(t, await Client.connectUnix(`${dir}/${SOCKET[t]}`));
    const results = new Map<Transport, { us: number[]; server: number[]; client: number[] }>();
    for (const t of TRANSPORTS) results.set(t, { us: [], server: [], client: [] });
    for (const c of clients.values()) for (let i = 0; i < 500; i++) await c.call(SERVICE, "Echo", payload); // warm-up
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < TRANSPORTS.length; k++) {
        const t = TRANSPORTS[(r + k) % TRANSPORTS.length];
        const client = clients.get(t)!;
        const pid = serverOf(t).pid;
        const s0 = cpuMs(pid), c0 = cpuMs("self"), t0 = performance.now();
        for (let i = 0; i < calls; i++) await client.call(SERVICE, "Echo", payload);
        const wall = performance.now() - t0, s1 = cpuMs(pid), c1 = cpuMs("self");
        const res = results.get(t)!;
        res.us.push(wall * 1000 / calls);
        res.server.push((s1 - s0) * 10_000 / calls);
        res.client.push((c1 - c0) * 10_000 / calls);
      }
    }
    for (const c of clients.values()) c.close();
    for (const child of children) {
      child.kill("SIGKILL");
      await child.status;
    }

    // Idle: one server per read mode, one open connection each, nothing sent.
    const idle: Record<string, number> = {};
    for (const t of ["libc, reactor reads", "libc, poller reads", LINGER] as Transport[]) {
      const sub = `${dir}/idle-${SOCKET[t].replace(".sock", "")}`;
      await Deno.mkdir(sub);
      const srv = await startServer(sub, [t]);
      const c = await Client.connectUnix(`${sub}/${SOCKET[t]}`);
      await c.call(SERVICE, "Echo", payload);
      await new Promise((r) => setTimeout(r, 500));
      const i0 = cpuMs(srv.pid);
      await new Promise((r) => setTimeout(r, idleS * 1000));
      idle[t] = cpuMs(srv.pid) - i0;
      c.close();
      srv.kill("SIGKILL");
      await srv.status;
    }

    printTable(
      `across processes: ${rounds} rounds × ${calls} sequential 64 B echoes`,
      ["server transport", "µs per round trip (median; min–max)", "server CPU ms / 10k", "client CPU ms / 10k"],
      TRANSPORTS.map((t) => {
        const r = results.get(t)!;
        return [
          t,
          `${median(r.us).toFixed(1)} (${Math.min(...r.us).toFixed(1)}–${Math.max(...r.us).toFixed(1)})`,
          median(r.server).toFixed(0),
          median(r.client).toFixed(0),
        ];
      }),
    );
    for (const [t, ms] of Object.entries(idle)) {
      console.log(`idle server (${t}), one open connection: ${ms.toFixed(0)} ms CPU in ${idleS} s`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (Deno.args[0] === "--serve") await serve(Deno.args[1], Deno.args.slice(2));
else await main();
