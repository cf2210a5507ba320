/**
 * The machine and software a run used, for the report's header: the figures move with the host, so a table without
 * these is not worth keeping.
 *
 * @module
 */
import type { Lab } from "../../tests/lab/mod.ts";
import { describeContainerd, distDir } from "../../tests/lab/mod.ts";
import { timed } from "./procs.ts";
import type { HostInfo, LoadSample } from "./results.ts";

async function firstLine(cmd: string, args: string[], pick: RegExp = /.+/): Promise<string> {
  try {
    const r = await timed(cmd, args, { captureStdout: true, timeoutMs: 10_000 });
    const text = r.stdout + r.stderr;
    return text.match(pick)?.[1]?.trim() ?? text.split("\n").find((l) => l.trim())?.trim() ?? "?";
  } catch {
    return "?";
  }
}

/** Collects {@linkcode HostInfo}. */
export async function hostInfo(lab: Lab): Promise<HostInfo> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const build = await Deno.readTextFile(`${distDir}/BUILD-INFO.json`).then(JSON.parse).catch(() => null);
  return {
    date: new Date().toISOString(),
    kernel: Deno.osRelease(),
    cpu: cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "?",
    cpus: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30 * 10) / 10,
    containerd: describeContainerd(lab.containerd),
    containerdSeries: lab.containerd.series,
    runc: await firstLine("runc", ["--version"], /runc version (\S+)/),
    goShim: await firstLine(lab.goShimBinary, ["-v"], /Version:\s+(\S+)/) + " (" +
      await firstLine(lab.goShimBinary, ["-v"], /Go version:\s+(\S+)/) + ")",
    denoShim: await firstLine(lab.shimBinary, ["-v"], /Version:\s+(\S+)/),
    deno: Deno.version.deno,
    build: build ? `${build.flavour}, ${build.revision ?? "no git revision"}, built ${build.time}` : "not built",
    labLogLevel: lab.logLevel,
  };
}

/** The load average now, labelled with the phase about to run. */
export function loadSample(phase: string): LoadSample {
  const [a, b, c] = Deno.loadavg();
  return { at: new Date().toISOString(), phase, load: [a, b, c] };
}
