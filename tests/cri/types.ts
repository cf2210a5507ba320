/**
 * TypeScript shapes of the CRI v1 messages in `proto/cri/runtime/v1/api.proto`, as the client sends and receives
 * them: field names as in the proto (snake_case), enums as their names, int64 as `number` (nanosecond timestamps
 * therefore lose their last ~8 bits of precision), bytes as `Uint8Array`. In responses every field is present
 * (proto3 defaults); in requests everything is optional.
 *
 * @module
 */

/** Where a pod's containers get a namespace from; `NODE` = the host's (hostNetwork, hostPID, hostIPC). */
export type NamespaceMode = "POD" | "CONTAINER" | "NODE" | "TARGET";
export type PodSandboxState = "SANDBOX_READY" | "SANDBOX_NOTREADY";
export type ContainerState = "CONTAINER_CREATED" | "CONTAINER_RUNNING" | "CONTAINER_EXITED" | "CONTAINER_UNKNOWN";

export interface VersionResponse {
  version: string;
  runtime_name: string;
  runtime_version: string;
  runtime_api_version: string;
}

export interface RuntimeCondition {
  /** `RuntimeReady` or `NetworkReady`. */
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface StatusResponse {
  status: { conditions: RuntimeCondition[] };
  info: Record<string, string>;
}

export interface PodSandboxMetadata {
  name?: string;
  uid?: string;
  namespace?: string;
  attempt?: number;
}

export interface NamespaceOption {
  network?: NamespaceMode;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
  target_id?: string;
}

export interface PodSandboxConfig {
  metadata?: PodSandboxMetadata;
  hostname?: string;
  /** Directory the containers' `log_path`s are relative to. */
  log_directory?: string;
  dns_config?: { servers?: string[]; searches?: string[]; options?: string[] };
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroup_parent?: string;
    security_context?: { namespace_options?: NamespaceOption; readonly_rootfs?: boolean; privileged?: boolean };
    sysctls?: Record<string, string>;
  };
}

export interface PodSandboxStatus {
  id: string;
  metadata: Required<PodSandboxMetadata>;
  state: PodSandboxState;
  created_at: number;
  network: { ip: string } | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtime_handler: string;
}

export interface PodSandboxStatusResponse {
  status: PodSandboxStatus;
  /** With `verbose`: JSON documents by name; `info` holds e.g. the sandbox's `pid` and `runtimeHandler`. */
  info: Record<string, string>;
}

export interface PodSandboxFilter {
  id?: string;
  state?: { state: PodSandboxState };
  label_selector?: Record<string, string>;
}

export interface PodSandbox {
  id: string;
  metadata: Required<PodSandboxMetadata>;
  state: PodSandboxState;
  created_at: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtime_handler: string;
}

export interface ContainerMetadata {
  name?: string;
  attempt?: number;
}

export interface ImageSpec {
  image?: string;
  annotations?: Record<string, string>;
}

export interface ContainerConfig {
  metadata?: ContainerMetadata;
  image?: ImageSpec;
  /** Entrypoint (replaces the image's). */
  command?: string[];
  args?: string[];
  working_dir?: string;
  envs?: { key: string; value: string }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Relative to the sandbox's `log_directory`; CRI writes the container's output there in the CRI log format. */
  log_path?: string;
  stdin?: boolean;
  stdin_once?: boolean;
  tty?: boolean;
}

export interface ContainerStatus {
  id: string;
  metadata: Required<ContainerMetadata>;
  state: ContainerState;
  /** Nanoseconds since the epoch; 0 when it has not happened. */
  created_at: number;
  started_at: number;
  finished_at: number;
  exit_code: number;
  image: { image: string; annotations: Record<string, string> } | null;
  image_ref: string;
  /** `Completed` (exit 0), `Error`, `OOMKilled`. */
  reason: string;
  message: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  log_path: string;
}

export interface ContainerStatusResponse {
  status: ContainerStatus;
  /** With `verbose`: `info` holds a JSON document with e.g. the container's `pid` and `sandboxID`. */
  info: Record<string, string>;
}

export interface ContainerFilter {
  id?: string;
  state?: { state: ContainerState };
  pod_sandbox_id?: string;
  label_selector?: Record<string, string>;
}

export interface Container {
  id: string;
  pod_sandbox_id: string;
  metadata: Required<ContainerMetadata>;
  image: { image: string; annotations: Record<string, string> } | null;
  image_ref: string;
  state: ContainerState;
  created_at: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface ExecSyncResponse {
  stdout: Uint8Array;
  stderr: Uint8Array;
  exit_code: number;
}
