/**
 * A container: its bundle, rootfs mounts, runc instance, options, init process and exec processes. It owns them
 * all, from Create (which mounts and runs `runc create`) to the init's Delete.
 *
 * @module
 */
import { log } from "../log.ts";
import { type OciProcess, Runc } from "../runc/mod.ts";
import type { Reaper } from "../sys/reaper.ts";
import { mount, unmountAll } from "../sys/mount.ts";
import { errAlreadyExists, errNotFound, wrapError } from "./errors.ts";
import { ExecProcess } from "./exec.ts";
import { InitProcess } from "./init.ts";
import { ProcessIO, type StdioPaths } from "./io.ts";
import { type RuncOptions, runcRoot, writeOptions } from "./options.ts";
import { optionsFromAny } from "./options_any.ts";
import type { Process } from "./process.ts";
import type { AnyFields } from "../proto/any.ts";
import { type Cgroup, loadCgroup, watchOom } from "../sys/cgroups/mod.ts";

/** The fields of a CreateTaskRequest the container needs. */
export interface CreateParams {
  id: string;
  bundle: string;
  rootfs: { type: string; source: string; target?: string; options: string[] }[];
  stdio: StdioPaths;
  checkpoint: string;
  parentCheckpoint: string;
  options?: AnyFields | null;
}

/** True when the container shares a pid namespace, so its init's death does not kill the rest (Go shim rule). */
export function shouldKillAllOnExit(bundle: string): boolean {
  try {
    const spec = JSON.parse(Deno.readTextFileSync(`${bundle}/config.json`)) as {
      linux?: { namespaces?: { type?: string; path?: string }[] };
    };
    return !(spec.linux?.namespaces ?? []).some((ns) => ns.type === "pid" && !ns.path);
  } catch (err) {
    log.warn("shouldKillAllOnExit: cannot read config.json", { bundle, error: err });
    return true;
  }
}

export class Container {
  readonly execs = new Map<string, ExecProcess>();
  init!: InitProcess;
  shouldKillAll = true;
  /** The init's cgroup, found at create; Stats reads it until Delete, even after the init exited. */
  cgroup: Cgroup | undefined;
  /** How many OOM kills have been published as TaskOOM. */
  oomPublished = 0;
  #stopOom: (() => void) | undefined;

  private constructor(
    readonly id: string,
    readonly namespace: string,
    readonly bundle: string,
    readonly options: RuncOptions,
    readonly runc: Runc,
    readonly reaper: Reaper,
  ) {}

  get rootfs(): string {
    return `${this.bundle}/rootfs`;
  }

  /** Mounts the rootfs, persists the options and runs `runc create`; on failure nothing is left behind. */
  static async create(p: CreateParams, namespace: string, reaper: Reaper): Promise<Container> {
    const options = optionsFromAny(p.options);
    writeOptions(p.bundle, options);
    const runc = new Runc({
      binary: options.binaryName || "runc",
      root: runcRoot(options, namespace),
      log: `${p.bundle}/log.json`,
      systemdCgroup: options.systemdCgroup,
      cwd: p.bundle,
    });
    const c = new Container(p.id, namespace, p.bundle, options, runc, reaper);
    c.shouldKillAll = shouldKillAllOnExit(p.bundle);
    const mounted = p.rootfs.length > 0;
    if (mounted) {
      try {
        Deno.mkdirSync(c.rootfs, { mode: 0o711 }); // synchronous: see src/sys/poller.ts on the blocking pool
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      }
      try {
        for (const m of p.rootfs) mount({ type: m.type, source: m.source, options: m.options }, c.rootfs);
      } catch (err) {
        await unmountAll(c.rootfs).catch(() => {});
        throw wrapError("failed to mount rootfs component", err);
      }
    }
    c.init = new InitProcess(
      {
        id: p.id,
        bundle: p.bundle,
        rootfs: c.rootfs,
        runc,
        noPivotRoot: options.noPivotRoot,
        noNewKeyring: options.noNewKeyring,
        criuWorkPath: options.criuWorkPath,
        openIO: (paths) => c.#openIO(paths),
      },
      p.stdio,
      p.checkpoint ? { imagePath: p.checkpoint, parentPath: p.parentCheckpoint } : undefined,
    );
    try {
      await c.init.create();
    } catch (err) {
      if (mounted) {
        await unmountAll(c.rootfs).catch((e) => log.warn("rootfs unmount after failed create", { error: e }));
      }
      throw err;
    }
    if (c.init.pid) {
      try {
        c.cgroup = loadCgroup(c.init.pid);
      } catch (err) {
        log.warn("cannot load the container's cgroup; Stats and OOM events are unavailable", { id: p.id, error: err });
      }
    }
    return c;
  }

  /** Starts OOM notification (at the init's Start). `onOom` runs for each OOM kill in the container's cgroup. */
  watchOom(onOom: () => void): void {
    if (!this.cgroup || this.#stopOom) return;
    try {
      this.#stopOom = watchOom(this.cgroup, onOom);
    } catch (err) {
      log.warn("cannot watch for OOM kills", { id: this.id, error: err });
    }
  }

  /** OOM kills not yet published (0 when the count cannot be read). */
  unpublishedOomKills(): number {
    if (!this.cgroup) return 0;
    try {
      return Math.max(0, this.cgroup.oomKillCount() - this.oomPublished);
    } catch {
      return 0;
    }
  }

  /** Releases what lives as long as the container: the OOM watch. */
  release(): void {
    this.#stopOom?.();
    this.#stopOom = undefined;
  }

  /**
   * Opens a process's IO. A `binary://` driver's CONTAINER_ID is the process's id, as the Go shim gives it: the
   * container's for the init, the exec id for an exec.
   */
  #openIO(paths: StdioPaths, processId = this.id): Promise<ProcessIO> {
    const { ioUid: uid, ioGid: gid } = this.options;
    return ProcessIO.open(paths, {
      env: { CONTAINER_ID: processId, CONTAINER_NAMESPACE: this.namespace },
      pipeOwner: uid || gid ? { uid, gid } : undefined,
    });
  }

  /** The init for "", else the exec with that id. */
  process(execId: string): Process {
    if (!execId) return this.init;
    const p = this.execs.get(execId);
    if (!p) throw errNotFound(`process does not exist ${execId}`);
    return p;
  }

  /** Registers an exec (nothing runs until Start). */
  addExec(execId: string, stdio: StdioPaths, spec: OciProcess): ExecProcess {
    if (this.execs.has(execId)) throw errAlreadyExists(`id ${execId}`);
    this.init.state.checkExec();
    const exec = new ExecProcess(
      { containerId: this.id, bundle: this.bundle, runc: this.runc, openIO: (paths) => this.#openIO(paths, execId) },
      execId,
      stdio,
      spec,
    );
    this.execs.set(execId, exec);
    return exec;
  }

  /** Execs that were started and have not exited yet. */
  runningExecs(): ExecProcess[] {
    return [...this.execs.values()].filter((e) => e.pid !== 0 && !e.exitReported);
  }

  /** Every process of the container. */
  all(): Process[] {
    return [this.init, ...this.execs.values()];
  }
}
