/**
 * `deno run -A bench/soak/rpc.ts`: the time of each Task RPC that runs runc (Create, Start, State, Exec + its Start,
 * Kill, Delete), driven straight over ttrpc against several shim binaries in the same window (issue 11's "RPCs as
 * cheap as the Go shim's"). No containerd: each shim is started the way containerd starts it (`start` with
 * containerd's flags, events to a fake endpoint), one `sleep` container holds its server up, then every iteration
 * runs one container lifecycle with one exec on each shim in turn, rotating the order so no shim always goes first.
 * Prints the median per RPC and shim, and each shim's ratio to the first one. Needs root and runc; run it under
 * `flock -o /tmp/shim-e2e.lock` (it runs real containers).
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `BENCH_RPC_SHIMS` | `go=/usr/bin/containerd-shim-runc-v2,deno=<repo>/dist/containerd-shim-deno-v2` | `name=binary` list; ratios are to the first |
 * | `BENCH_RPC_N` | 30 | iterations per shim |
 *
 * @example
 * ```sh
 * BENCH_RPC_SHIMS=go=/usr/bin/containerd-shim-runc-v2,old=/tmp/old/dist/containerd-shim-deno-v2,new=dist/containerd-shim-deno-v2 \
 *   flock -o /tmp/shim-e2e.lock deno run -A bench/soak/rpc.ts
 * ```
 * @module
 */
import { encodeJsonAny, JSON_TYPE_URLS } from "../../src/proto/any.ts";
import { busyboxRootfs, FakeEvents, makeBundle, SHIM, TaskClient } from "../../tests/harness/shim.ts";

const RPCS = ["Create", "Start", "State", "Exec", "ExecStart", "Kill", "Delete"] as const;
type Rpc = (typeof RPCS)[number];

interface Shim {
  name: string;
  binary: string;
  client?: TaskClient;
  times: Record<Rpc, number[]>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The command line and environment of `<binary> … start` as containerd runs it, in `bundle`, for a fake containerd. */
export function startCommand(
  binary: string,
  bundle: string,
  id: string,
  ns: string,
  dir: string,
  events: string,
  extraEnv: Record<string, string> = {},
): Deno.Command {
  return new Deno.Command(binary, {
    args: [
      "-namespace",
      ns,
      "-address",
      `${dir}/containerd.sock`,
      "-publish-binary",
      "/usr/bin/containerd",
      "-id",
      id,
      "start",
    ],
    cwd: bundle,
    env: {
      CONTAINERD_SHIM_DENO_STATE_DIR: `${dir}/state`,
      TTRPC_ADDRESS: events,
      GRPC_ADDRESS: `${dir}/containerd.sock`,
      NAMESPACE: ns,
      MAX_SHIM_VERSION: "2",
      ...extraEnv,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** `<binary> … start` as containerd runs it; returns the server's address. */
async function startShim(binary: string, bundle: string, id: string, ns: string, dir: string, events: string) {
  const out = await startCommand(binary, bundle, id, ns, dir, events).output();
  if (!out.success) throw new Error(`${binary} start: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).trim();
}

async function timed<T>(shim: Shim, rpc: Rpc, call: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const out = await call();
  shim.times[rpc].push(performance.now() - t0);
  return out;
}

const execSpec = encodeJsonAny(JSON_TYPE_URLS.process, {
  args: ["sleep", "30"],
  cwd: "/",
  env: ["PATH=/bin"],
  user: { uid: 0, gid: 0 },
});

/** One container lifecycle with one exec on `shim`, every runc-running RPC timed. */
async function lifecycle(shim: Shim, dir: string, id: string, template: string): Promise<void> {
  const c = shim.client!;
  const bundle = `${dir}/bundles/${id}`;
  await Deno.mkdir(bundle, { recursive: true });
  const config = JSON.parse(template);
  config.linux.cgroupsPath = `/rpcbench/${id}`;
  await Deno.writeTextFile(`${bundle}/config.json`, JSON.stringify(config));
  await timed(shim, "Create", () => c.call("Create", { id, bundle, rootfs: [], terminal: false }));
  await timed(shim, "Start", () => c.call("Start", { id }));
  await timed(shim, "State", () => c.call("State", { id }));
  await timed(shim, "Exec", () => c.call("Exec", { id, execId: "e", spec: execSpec, terminal: false }));
  await timed(shim, "ExecStart", () => c.call("Start", { id, execId: "e" }));
  await c.call("Kill", { id, execId: "e", signal: 9 });
  await c.call("Wait", { id, execId: "e" });
  await c.call("Delete", { id, execId: "e" });
  await timed(shim, "Kill", () => c.call("Kill", { id, signal: 9 }));
  await c.call("Wait", { id });
  await timed(shim, "Delete", () => c.call("Delete", { id }));
  await Deno.remove(bundle, { recursive: true });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

if (import.meta.main) {
  const spec = Deno.env.get("BENCH_RPC_SHIMS") || `go=/usr/bin/containerd-shim-runc-v2,deno=${SHIM}`;
  const n = Number(Deno.env.get("BENCH_RPC_N") || 30);
  const shims: Shim[] = spec.split(",").map((kv) => {
    const [name, binary] = kv.split("=");
    return { name, binary, times: Object.fromEntries(RPCS.map((r) => [r, []])) as unknown as Record<Rpc, number[]> };
  });
  const dir = await Deno.makeTempDir({ prefix: "rpcbench-" });
  const ns = `rpcbench${Date.now() % 100000}`;
  const events = FakeEvents.start(dir);
  try {
    await busyboxRootfs(dir);
    const holders: string[] = [];
    for (const s of shims) {
      const id = `hold-${s.name}`;
      const bundle = await makeBundle(dir, id, ["sleep", "100000"]);
      const address = await startShim(s.binary, bundle, id, ns, dir, events.path);
      s.client = await TaskClient.connect(address, ns);
      await s.client.call("Create", { id, bundle, rootfs: [], terminal: false });
      await s.client.call("Start", { id });
      holders.push(id);
    }
    const template = await Deno.readTextFile(`${dir}/bundles/${holders[0]}/config.json`);
    const load0 = Deno.loadavg()[0];
    for (let i = 0; i < n + 2; i++) {
      for (let k = 0; k < shims.length; k++) {
        const s = shims[(i + k) % shims.length];
        const before = Object.fromEntries(RPCS.map((r) => [r, s.times[r].length]));
        await lifecycle(s, dir, `c${i}-${s.name}`, template);
        if (i < 2) { for (const r of RPCS) s.times[r].length = before[r]; // warm-up: not counted
         }
      }
      await sleep(20);
    }
    const base = shims[0];
    console.log(`${n} iterations per shim; load average ${load0.toFixed(1)} → ${Deno.loadavg()[0].toFixed(1)}`);
    console.log(
      ["rpc", ...shims.map((s) => `${s.name} ms`), ...shims.slice(1).map((s) => `${s.name}/${base.name}`)].join("\t"),
    );
    for (const r of RPCS) {
      const m = shims.map((s) => median(s.times[r]));
      console.log([r, ...m.map((x) => x.toFixed(1)), ...m.slice(1).map((x) => (x / m[0]).toFixed(2))].join("\t"));
    }
    for (const s of shims) {
      for (const id of holders.filter((h) => h === `hold-${s.name}`)) {
        await s.client!.call("Kill", { id, signal: 9 }).catch(() => {});
        await s.client!.call("Wait", { id }).catch(() => {});
        await s.client!.call("Delete", { id }).catch(() => {});
      }
      await s.client!.call("Shutdown", { id: `hold-${s.name}` }).catch(() => {});
      s.client!.close();
    }
  } finally {
    events.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
