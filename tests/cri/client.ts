/**
 * A small typed client of the Kubernetes CRI v1 `RuntimeService` (what kubelet speaks to containerd's CRI plugin),
 * over gRPC on containerd's unix socket, for tests: `@grpc/grpc-js` with codecs loaded by `@grpc/proto-loader` from
 * `proto/cri/runtime/v1/api.proto` (a verified subset of the API; message shapes in `types.ts`).
 *
 * Every call has a deadline; a failed call throws {@linkcode CriError} carrying the gRPC status code.
 *
 * @example
 * ```ts
 * import { CriClient } from "./tests/cri/client.ts";
 * const cri = new CriClient("/path/to/containerd.sock");
 * try {
 *   console.log((await cri.version()).runtime_version); // "1.6.20~ds1"
 * } finally {
 *   cri.close();
 * }
 * ```
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type {
  Container,
  ContainerConfig,
  ContainerFilter,
  ContainerStatusResponse,
  ExecSyncResponse,
  PodSandbox,
  PodSandboxConfig,
  PodSandboxFilter,
  PodSandboxStatusResponse,
  StatusResponse,
  VersionResponse,
} from "./types.ts";

export type * from "./types.ts";

/** The CRI subset this client loads. */
export const CRI_PROTO: string = decodeURIComponent(
  new URL("../../proto/cri/runtime/v1/api.proto", import.meta.url).pathname,
);
const SERVICE = "runtime.v1.RuntimeService";
/** How the codecs present messages; `types.ts` is written against exactly these settings. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
};
const DEFAULT_DEADLINE_MS = 60_000;

/** A CRI call that failed: `code` is the gRPC status (5 = NOT_FOUND, 4 = DEADLINE_EXCEEDED, …). */
export class CriError extends Error {
  constructor(readonly method: string, readonly code: number, readonly details: string) {
    super(`CRI ${method}: ${grpc.status[code] ?? code}: ${details}`);
    this.name = "CriError";
  }
}

/** Loads the service definition once per process (parsing the proto takes a few ms). */
let serviceDefinition: protoLoader.ServiceDefinition | undefined;
function service(): protoLoader.ServiceDefinition {
  if (!serviceDefinition) {
    const pkg = protoLoader.loadSync(CRI_PROTO, LOADER_OPTIONS);
    serviceDefinition = pkg[SERVICE] as protoLoader.ServiceDefinition;
    if (!serviceDefinition) throw new Error(`${CRI_PROTO} defines no ${SERVICE}`);
  }
  return serviceDefinition;
}

/** A connection to one CRI endpoint. Close it when done (it owns a gRPC channel). */
export class CriClient {
  readonly #client: grpc.Client;
  readonly #deadlineMs: number;

  /** `address`: the unix socket path (or a full gRPC target such as `unix:///run/containerd/containerd.sock`). */
  constructor(address: string, opts: { deadlineMs?: number } = {}) {
    const target = address.includes("://") ? address : `unix://${address}`;
    this.#client = new grpc.Client(target, grpc.credentials.createInsecure());
    this.#deadlineMs = opts.deadlineMs ?? DEFAULT_DEADLINE_MS;
  }

  /** One unary call of `method` (the RPC's name in the proto). */
  call<Res>(method: string, request: object, deadlineMs = this.#deadlineMs): Promise<Res> {
    const def = service()[method];
    if (!def) throw new Error(`${SERVICE} has no method ${method} in ${CRI_PROTO}`);
    return new Promise<Res>((resolve, reject) => {
      this.#client.makeUnaryRequest<object, object>(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err, res) => {
          if (err) reject(new CriError(method, err.code, err.details));
          else resolve(res as Res);
        },
      );
    });
  }

  version(): Promise<VersionResponse> {
    return this.call("Version", { version: "v1" });
  }

  status(verbose = false): Promise<StatusResponse> {
    return this.call("Status", { verbose });
  }

  /** Starts a pod sandbox with the runtime handler `handler` ("" = containerd's default); returns its id. */
  async runPodSandbox(config: PodSandboxConfig, handler = ""): Promise<string> {
    const r = await this.call<{ pod_sandbox_id: string }>("RunPodSandbox", { config, runtime_handler: handler });
    return r.pod_sandbox_id;
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call("StopPodSandbox", { pod_sandbox_id: id });
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call("RemovePodSandbox", { pod_sandbox_id: id });
  }

  podSandboxStatus(id: string, verbose = false): Promise<PodSandboxStatusResponse> {
    return this.call("PodSandboxStatus", { pod_sandbox_id: id, verbose });
  }

  async listPodSandbox(filter: PodSandboxFilter = {}): Promise<PodSandbox[]> {
    return (await this.call<{ items: PodSandbox[] }>("ListPodSandbox", { filter })).items;
  }

  /** Creates a container in pod `podId`; `sandboxConfig` must be the config the pod was run with. */
  async createContainer(podId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    const r = await this.call<{ container_id: string }>("CreateContainer", {
      pod_sandbox_id: podId,
      config,
      sandbox_config: sandboxConfig,
    });
    return r.container_id;
  }

  async startContainer(id: string): Promise<void> {
    await this.call("StartContainer", { container_id: id });
  }

  /** Sends the stop signal, then SIGKILL after `timeoutSec` (0 = SIGKILL at once). */
  async stopContainer(id: string, timeoutSec: number): Promise<void> {
    await this.call("StopContainer", { container_id: id, timeout: timeoutSec }, (timeoutSec + 60) * 1000);
  }

  async removeContainer(id: string): Promise<void> {
    await this.call("RemoveContainer", { container_id: id });
  }

  containerStatus(id: string, verbose = false): Promise<ContainerStatusResponse> {
    return this.call("ContainerStatus", { container_id: id, verbose });
  }

  async listContainers(filter: ContainerFilter = {}): Promise<Container[]> {
    return (await this.call<{ containers: Container[] }>("ListContainers", { filter })).containers;
  }

  /** Runs `cmd` in container `id` and waits for it (at most `timeoutSec` s; 0 = no limit). */
  execSync(id: string, cmd: string[], timeoutSec = 0): Promise<ExecSyncResponse> {
    const deadline = (timeoutSec > 0 ? timeoutSec + 30 : 120) * 1000;
    return this.call("ExecSync", { container_id: id, cmd, timeout: timeoutSec }, deadline);
  }

  /** Closes the channel. */
  close(): void {
    this.#client.close();
  }
}
