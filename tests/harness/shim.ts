/**
 * A shim-level harness that plays containerd's side: it makes a bundle (busybox rootfs, `runc spec` config, the
 * `log` fifo with a reader), runs our binary's `start` with containerd's flags and environment, talks to the server
 * over ttrpc with typed codecs, and receives the events it publishes on a fake `Events/Forward` endpoint.
 *
 * @module
 */
import { Client } from "../../src/ttrpc/client.ts";
import { Server } from "../../src/ttrpc/server.ts";
import {
  Any,
  encodeMessage,
  EVENTS_SERVICE,
  eventsService,
  TASK_SERVICE,
  type TaskMethodName,
  taskMethods,
} from "../../src/proto/mod.ts";
import { decodeAny } from "../../src/proto/any.ts";
import { distDir } from "../lab/mod.ts";

export const SHIM = `${distDir}/containerd-shim-deno-v2`;

/** One event as containerd would receive it. */
export interface SeenEvent {
  namespace: string;
  topic: string;
  typeUrl: string;
  fields: Record<string, unknown>;
  metadataNamespace?: string;
}

/** A fake containerd ttrpc endpoint collecting forwarded events. */
export class FakeEvents {
  readonly events: SeenEvent[] = [];
  readonly server = new Server();
  #listener!: Deno.UnixListener;
  private constructor(readonly path: string) {}

  static start(dir: string): FakeEvents {
    const f = new FakeEvents(`${dir}/containerd.sock.ttrpc`);
    f.server.register(EVENTS_SERVICE, {
      Forward: (payload, ctx) => {
        const req = eventsService.ForwardRequest.decode(payload);
        const env = req.envelope!;
        const decoded = decodeAny(env.event!);
        f.events.push({
          namespace: env.namespace ?? "",
          topic: env.topic ?? "",
          typeUrl: decoded.typeUrl,
          fields: decoded.message as unknown as Record<string, unknown>,
          metadataNamespace: ctx.metadata.get("containerd-namespace-ttrpc")?.[0],
        });
        return new Uint8Array();
      },
    });
    f.#listener = Deno.listen({ transport: "unix", path: f.path });
    f.server.serve(f.#listener).catch(() => {});
    return f;
  }

  topics(containerId?: string): string[] {
    return this.events.filter((e) => !containerId || e.fields.containerId === containerId).map((e) => e.topic);
  }

  async waitFor(pred: () => boolean, timeoutMs = 5000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return pred();
  }

  close(): void {
    this.server.close();
  }
}

/** A busybox rootfs shared by the harness bundles. */
export async function busyboxRootfs(dir: string): Promise<string> {
  const rootfs = `${dir}/rootfs`;
  await Deno.mkdir(`${rootfs}/bin`, { recursive: true });
  for (const d of ["proc", "sys", "dev", "tmp", "etc"]) await Deno.mkdir(`${rootfs}/${d}`, { recursive: true });
  await Deno.copyFile("/bin/busybox", `${rootfs}/bin/busybox`);
  await Deno.chmod(`${rootfs}/bin/busybox`, 0o755);
  for (const a of ["sh", "echo", "sleep", "cat", "true", "false", "ls", "id"]) {
    await Deno.symlink("busybox", `${rootfs}/bin/${a}`);
  }
  return rootfs;
}

/**
 * Makes a bundle with `args` as the init process; returns its path (default `<dir>/bundles/<id>`). `cgroupName`
 * (default the id) names its cgroup below `/harness`.
 */
export async function makeBundle(
  dir: string,
  id: string,
  args: string[],
  annotations: Record<string, string> = {},
  path = `${dir}/bundles/${id}`,
  cgroupName = id,
) {
  const bundle = path;
  await Deno.mkdir(bundle, { recursive: true });
  const spec = await new Deno.Command("runc", { args: ["spec", "--bundle", bundle] }).output();
  if (!spec.success) throw new Error(new TextDecoder().decode(spec.stderr));
  const config = JSON.parse(await Deno.readTextFile(`${bundle}/config.json`));
  config.root = { path: `${dir}/rootfs`, readonly: true };
  config.process.terminal = false;
  config.process.args = args;
  config.annotations = annotations;
  config.linux.cgroupsPath = `/harness/${cgroupName}`;
  await Deno.writeTextFile(`${bundle}/config.json`, JSON.stringify(config));
  // containerd creates the log fifo and keeps reading it; so does the harness.
  await new Deno.Command("mkfifo", { args: [`${bundle}/log`] }).output();
  const reader = new Deno.Command("sh", {
    args: ["-c", `exec cat "${bundle}/log" >> "${bundle}/shim.log"`],
    stdin: "null",
  }).spawn();
  logReaders.add(reader);
  reader.status.then(() => logReaders.delete(reader));
  return bundle;
}

/**
 * The bundles' log readers. A reader whose fifo never gets a writer (a failed `start`, a container whose group
 * server was started for another bundle) would wait in open(2) forever: they all go when the test process ends.
 */
const logReaders = new Set<Deno.ChildProcess>();
globalThis.addEventListener("unload", () => {
  for (const r of logReaders) {
    try {
      r.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** Runs the binary like containerd does and returns what it printed. */
export async function runShim(
  action: "start" | "delete",
  o: {
    bundle: string;
    id: string;
    namespace: string;
    address: string;
    ttrpcAddress: string;
    stdin?: Uint8Array;
    env?: Record<string, string>;
    /** `-publish-binary`: containerd's own path, which `start` may ask for containerd's version. */
    publishBinary?: string;
  },
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const args = [
    "-namespace",
    o.namespace,
    "-address",
    o.address,
    "-publish-binary",
    o.publishBinary ?? "/usr/bin/containerd",
    "-id",
    o.id,
  ];
  if (action === "delete") args.push("-bundle", o.bundle);
  args.push(action);
  const child = new Deno.Command(SHIM, {
    args,
    cwd: o.bundle,
    env: {
      // start caches containerd's version here: each test directory its own, the host's cache untouched
      CONTAINERD_SHIM_DENO_STATE_DIR: `${o.bundle}/../../state`,
      TTRPC_ADDRESS: o.ttrpcAddress,
      GRPC_ADDRESS: o.address,
      NAMESPACE: o.namespace,
      MAX_SHIM_VERSION: "2",
      ...o.env,
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  if (o.stdin) await w.write(o.stdin);
  await w.close();
  const out = await child.output();
  return { code: out.code, stdout: out.stdout, stderr: new TextDecoder().decode(out.stderr) };
}

/** A typed Task API client over ttrpc. */
export class TaskClient {
  private constructor(readonly client: Client, readonly namespace: string, readonly service = TASK_SERVICE) {}

  static async connect(address: string, namespace: string, service = TASK_SERVICE): Promise<TaskClient> {
    return new TaskClient(await Client.connectUnix(address.replace(/^unix:\/\//, "")), namespace, service);
  }

  async call<M extends TaskMethodName>(
    method: M,
    req: Parameters<(typeof taskMethods)[M]["request"]["encode"]>[0],
    timeoutMs = 30_000,
  ): Promise<ReturnType<(typeof taskMethods)[M]["response"]["decode"]>> {
    const { request, response } = taskMethods[method];
    const payload = encodeMessage(request as never, req as never);
    const out = await this.client.call(this.service, method, payload, {
      timeoutMs,
      metadata: { "containerd-namespace-ttrpc": this.namespace },
    });
    return response.decode(out) as ReturnType<(typeof taskMethods)[M]["response"]["decode"]>;
  }

  close(): void {
    this.client.close();
  }
}

export { Any };
