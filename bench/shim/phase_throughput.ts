/**
 * stdout throughput (host-lab.md §8.6): `dd if=/dev/zero bs=1M count=<MiB>` in a container run with `ctr run --rm`,
 * interleaved between the shims, along three paths:
 *
 * - `fifo`: container → pipe → shim → FIFO → ctr → /dev/null (ctr's stdout);
 * - `file-devnull`: `--log-uri file:///dev/null`, the shim writes the sink itself and ctr is not in the data path
 *   (the Go baseline's shim-only figure);
 * - `file-tmpfs`: `--log-uri file://<tmpfs>/<id>.log`, a regular file on a tmpfs mounted for the phase and removed
 *   after each run, so a shim that cannot open /dev/null still gets a like-for-like shim-only figure.
 *
 * MiB/s is MiB divided by the whole `ctr run --rm` wall time, start and teardown included, as in the Go baseline.
 * Before measuring, each side copies 1 MiB to places where it can be counted, so a path that silently drops output
 * cannot look fast. A side whose first run on a path fails is recorded as failing there and skipped for that path.
 *
 * @module
 */
import type { Lab } from "../../tests/lab/mod.ts";
import { runRm, runTag } from "./ctr.ts";
import { mustTime, type Side, SIDES } from "./procs.ts";
import type { AbSamples, ThroughputPath, ThroughputSamples } from "./results.ts";
import { abOrder } from "./stats.ts";

const PATHS: readonly ThroughputPath[] = ["fifo", "file-devnull", "file-tmpfs"];

function dd(mib: number, bs = 1 << 20): string[] {
  return ["dd", "if=/dev/zero", `bs=${bs}`, `count=${mib}`];
}

/** Throws unless 1 MiB written by the container arrives whole through the FIFO and a tmpfs file of both shims. */
async function sanityCheck(lab: Lab, sink: string): Promise<void> {
  for (const side of SIDES) {
    const fifo = await runRm(lab, side, `tpc-${side}-${runTag()}`, dd(1), [], { captureStdout: true });
    if (fifo.stdout.length !== 1 << 20) {
      throw new Error(`${side}: 1 MiB through the FIFO path arrived as ${fifo.stdout.length} bytes`);
    }
    const file = `${sink}/check-${side}.log`;
    await runRm(lab, side, `tpf-${side}-${runTag()}`, dd(1), ["--log-uri", `file://${file}`]);
    // The file also gets dd's summary lines from stderr (a few dozen bytes).
    const size = (await Deno.stat(file)).size;
    await Deno.remove(file);
    if (size < 1 << 20 || size > (1 << 20) + 4096) {
      throw new Error(`${side}: 1 MiB through the file:// path left a file of ${size} bytes`);
    }
  }
}

/** Runs `runs` interleaved pairs per path, each writing `mib` MiB. */
export async function measureThroughput(
  lab: Lab,
  mib: number,
  runs: number,
  progress: (msg: string) => void,
): Promise<ThroughputSamples[]> {
  const sink = `${lab.dir}/sink`;
  await Deno.mkdir(sink, { recursive: true });
  // A tmpfs keeps the file sink in memory: no disk writeback competing with the next run.
  await mustTime("mount", ["-t", "tmpfs", "-o", `size=${Math.max(64, mib * 2 + 16)}m,mode=0755`, "bench-sink", sink]);
  const out: ThroughputSamples[] = [];
  try {
    await sanityCheck(lab, sink);
    for (const path of PATHS) {
      const mibPerS: AbSamples = { go: [], deno: [] };
      const errors: Partial<Record<Side, string>> = {};
      for (let i = 0; i < runs; i++) {
        for (const side of abOrder<Side>(i, "go", "deno")) {
          if (errors[side]) continue;
          const id = `tp-${path}-${side}-${runTag()}-${i}`;
          const file = path === "file-devnull" ? "/dev/null" : `${sink}/${id}.log`;
          try {
            const r = await runRm(lab, side, id, dd(mib), path === "fifo" ? [] : ["--log-uri", `file://${file}`]);
            mibPerS[side].push(mib / (r.ms / 1000));
          } catch (e) {
            errors[side] = e instanceof Error ? e.message : String(e);
            progress(`throughput ${path}: ${side} failed: ${errors[side]}`);
          } finally {
            if (path === "file-tmpfs") await Deno.remove(file).catch(() => {});
          }
        }
      }
      progress(`throughput ${path}: ${runs} runs per shim`);
      out.push(Object.keys(errors).length ? { path, mib, mibPerS, errors } : { path, mib, mibPerS });
    }
  } finally {
    await mustTime("umount", [sink]).catch((e) => progress(`cannot unmount ${sink}: ${e}`));
  }
  return out;
}
