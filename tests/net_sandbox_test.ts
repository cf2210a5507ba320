/**
 * The shim's sandbox has no network: under the exact flags of the built binary (`dist/BUILD-INFO.json`, the same
 * list its launcher runs with), TCP, UDP and unix sockets through Deno's APIs are denied. And its server admits only
 * root and the owner of containerd's socket (SO_PEERCRED): a connection from another uid is closed unanswered.
 *
 * @module
 */
import assert from "node:assert/strict";
import { encodeRequestFrame } from "../src/ttrpc/message.ts";
import { bootstrap, encodeMessage, TASK_SERVICE } from "../src/proto/mod.ts";
import { distDir } from "./lab/mod.ts";
import { RUNTIME_FILE } from "../src/shim/launcher.ts";
import { FakeEvents, runShim, TaskClient } from "./harness/shim.ts";

const NOBODY = 65534;

interface BuildInfo {
  flags: string[];
}

async function shippedFlags(): Promise<string[]> {
  const info = JSON.parse(await Deno.readTextFile(`${distDir}/BUILD-INFO.json`)) as BuildInfo;
  return info.flags;
}

/** Runs `script` (plain JS) with `flags` using the built binary's Deno; returns stdout parsed as JSON. */
async function runScript(dir: string, script: string, flags: string[], asUid?: number): Promise<unknown> {
  const file = `${dir}/probe-${crypto.randomUUID()}.js`;
  await Deno.writeTextFile(file, script);
  await Deno.chmod(file, 0o644);
  const deno = `${distDir}/lib/${RUNTIME_FILE}`;
  const args = ["run", ...flags, file];
  const [cmd, cmdArgs] = asUid === undefined
    ? [deno, args]
    : ["setpriv", [`--reuid=${asUid}`, `--regid=${asUid}`, "--clear-groups", deno, ...args]];
  const out = await new Deno.Command(cmd, {
    args: cmdArgs,
    env: { DENO_DIR: `${dir}/deno-dir`, DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, `probe failed: ${new TextDecoder().decode(out.stderr)}\n${stdout}`);
  return JSON.parse(stdout);
}

Deno.test("under the shipped flags, TCP, UDP and unix sockets through Deno's APIs are denied", async () => {
  const flags = await shippedFlags();
  assert.ok(!flags.some((f) => f.startsWith("--allow-net")), `shipped flags grant net: ${flags.join(" ")}`);
  assert.ok(!flags.includes("--allow-all") && !flags.includes("-A"));
  const dir = await Deno.makeTempDir({ prefix: "net-sandbox-" });
  // Live endpoints, so that a denial cannot be mistaken for "nobody listens".
  const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const unix = Deno.listen({ transport: "unix", path: `${dir}/other.sock` });
  try {
    const script = `
      const out = {};
      async function attempt(name, fn) {
        try {
          const r = await fn();
          out[name] = "allowed";
          try { r?.close?.(); } catch {}
        } catch (e) {
          out[name] = e?.name ?? String(e);
        }
      }
      await attempt("tcp connect", () => Deno.connect({ hostname: "127.0.0.1", port: ${tcp.addr.port} }));
      await attempt("tcp listen", () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
      await attempt("udp socket", async () => {
        if (typeof Deno.listenDatagram === "function") {
          return Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
        }
        // Without --unstable-net, node:dgram is Deno's UDP API; its bind fails in a later tick.
        const dgram = await import("node:dgram");
        const process = (await import("node:process")).default;
        const s = dgram.createSocket("udp4");
        await new Promise((resolve, reject) => {
          process.once("uncaughtException", reject);
          s.once("error", reject);
          s.bind(0, "127.0.0.1", resolve);
        });
        return s;
      });
      await attempt("unix connect", () => Deno.connect({ transport: "unix", path: ${JSON.stringify(unix.addr.path)} }));
      await attempt("unix listen", () => Deno.listen({ transport: "unix", path: ${
      JSON.stringify(`${dir}/mine.sock`)
    } }));
      // The shim reads its sockets through Node compatibility's stream handle (src/sys/reactor_reader.ts): adopting
      // an fd needs no permission, but the same bindings must not connect anywhere either.
      const proc = Object.getOwnPropertyDescriptor(globalThis, "process").get.call(globalThis);
      await attempt("node binding unix connect", () => {
        const { Pipe, PipeConnectWrap, constants } = proc.binding("pipe_wrap");
        const h = new Pipe(constants.SOCKET);
        const err = h.connect(new PipeConnectWrap(), ${JSON.stringify(unix.addr.path)});
        if (err) throw new Error("connect error " + err);
        return h;
      });
      await attempt("node binding tcp connect", () => {
        const { TCP, TCPConnectWrap, constants } = proc.binding("tcp_wrap");
        const h = new TCP(constants.SOCKET);
        const err = h.connect(new TCPConnectWrap(), "127.0.0.1", ${tcp.addr.port});
        if (err) throw new Error("connect error " + err);
        return h;
      });
      console.log(JSON.stringify(out));
    `;
    const result = await runScript(dir, script, flags);
    assert.deepEqual(result, {
      "tcp connect": "NotCapable",
      "tcp listen": "NotCapable",
      "udp socket": "NotCapable",
      "unix connect": "NotCapable",
      "unix listen": "NotCapable",
      "node binding unix connect": "NotCapable",
      "node binding tcp connect": "NotCapable",
    });
  } finally {
    tcp.close();
    unix.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A probe: connects to `path`, sends one State request, half-closes, and reports what came back before EOF. */
function peerProbe(path: string): string {
  const frame = Array.from(encodeRequestFrame(1, {
    service: TASK_SERVICE,
    method: "State",
    payload: new Uint8Array([0x0a, 0x01, 0x78]), // StateRequest{id: "x"}
    metadata: [{ key: "containerd-namespace-ttrpc", value: "default" }],
  }));
  return `
    const conn = await Deno.connect({ transport: "unix", path: ${JSON.stringify(path)} });
    let written = 0, received = 0, error = null;
    try {
      written = await conn.write(new Uint8Array(${JSON.stringify(frame)}));
      await conn.closeWrite(); // the server answers what it got, then closes
      const buf = new Uint8Array(4096);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        received += n;
      }
    } catch (e) {
      error = e.name;
    }
    console.log(JSON.stringify({ uid: Deno.uid(), written, received, error }));
  `;
}

/**
 * Starts a server as containerd 2.3 would, with `-address` owned by `addressOwner` and the socket directory in `dir`
 * (reachable by other users, unlike /run/containerd); returns its socket path.
 */
async function startServer(dir: string, name: string, events: FakeEvents, addressOwner: number) {
  const bundle = `${dir}/${name}`;
  await Deno.mkdir(bundle);
  await Deno.writeTextFile(`${bundle}/config.json`, "{}");
  const address = `${dir}/${name}-containerd.sock`;
  await Deno.writeTextFile(address, "");
  await Deno.chown(address, addressOwner, addressOwner);
  const namespace = `peer${Date.now() % 100000}`;
  const stdin = encodeMessage(bootstrap.BootstrapParams, {
    instanceId: name,
    namespace,
    containerdVersion: "v2.3.0",
    containerdTtrpcAddress: events.path,
    containerdGrpcAddress: address,
    socketDir: `${dir}/s`,
  });
  // The state directory inside the test's own (the harness's default is two levels above the bundle).
  const env = { CONTAINERD_SHIM_DENO_STATE_DIR: `${dir}/state` };
  const opts = { bundle, id: name, namespace, address, ttrpcAddress: events.path, stdin, env };
  const started = await runShim("start", opts);
  assert.equal(started.code, 0, started.stderr);
  const socket = bootstrap.BootstrapResult.decode(started.stdout).address.replace(/^unix:\/\//, "");
  assert.equal((await Deno.stat(`${dir}/s`)).mode! & 0o777, 0o711, "socket directory mode");
  assert.equal((await Deno.stat(socket)).mode! & 0o777, 0o600, "socket mode");
  return { socket, namespace, id: name };
}

async function stopServer(socket: string, namespace: string, id: string): Promise<void> {
  const client = await TaskClient.connect(socket, namespace);
  try {
    // With the id: the server holds a place for the container it was started for until its Create or Shutdown.
    await client.call("Shutdown", { id }).catch(() => {});
  } finally {
    client.close();
  }
}

Deno.test("the server closes connections from a foreign uid unanswered, and answers containerd's owner", async () => {
  const dir = await Deno.makeTempDir({ prefix: "peer-cred-" });
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(`${dir}/deno-dir`, { mode: 0o777 });
  await Deno.chmod(`${dir}/deno-dir`, 0o777);
  const events = FakeEvents.start(dir);
  const flags = ["--no-prompt", "--no-config", "--allow-net", "--allow-read", "--allow-write", "--allow-sys=uid"];
  const servers: { socket: string; namespace: string; id: string }[] = [];
  try {
    // containerd runs as root: uid 65534 is a stranger and gets nothing, not even an error status.
    const rootOwned = await startServer(dir, "root-owned", events, 0);
    servers.push(rootOwned);
    await Deno.chmod(rootOwned.socket, 0o666); // connectable by anyone: only the peer check stands in the way
    const refused = await runScript(dir, peerProbe(rootOwned.socket), flags, NOBODY) as Record<string, unknown>;
    assert.equal(refused.uid, NOBODY);
    // The server may close before the probe's write lands (BrokenPipe/ConnectionReset): closed either way, unanswered.
    assert.ok(
      (refused.written as number) > 0 || ["BrokenPipe", "ConnectionReset"].includes(refused.error as string),
      JSON.stringify(refused),
    );
    assert.equal(refused.received, 0, `a foreign uid got an answer: ${JSON.stringify(refused)}`);
    // Root still gets its answer from the same server.
    const asRoot = await runScript(dir, peerProbe(rootOwned.socket), flags) as Record<string, unknown>;
    assert.ok((asRoot.received as number) > 10, JSON.stringify(asRoot));

    // A containerd running as uid 65534 (rootless) owns its socket: that uid is answered.
    const nobodyOwned = await startServer(dir, "nobody-owned", events, NOBODY);
    servers.push(nobodyOwned);
    await Deno.chmod(nobodyOwned.socket, 0o666);
    const owner = await runScript(dir, peerProbe(nobodyOwned.socket), flags, NOBODY) as Record<string, unknown>;
    assert.ok((owner.received as number) > 10, `containerd's owner got no answer: ${JSON.stringify(owner)}`);
  } finally {
    for (const s of servers) await stopServer(s.socket, s.namespace, s.id).catch(() => {});
    events.close();
    await Deno.remove(dir, { recursive: true });
  }
});
