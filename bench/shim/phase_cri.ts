/**
 * CRI latency of one container in a running pod (issue 10): CreateContainer + StartContainer + StopContainer (timeout
 * 0) + RemoveContainer of a `sleep` container, through containerd's CRI plugin, in a host-network pod of each shim
 * (handler `runc`: the Go shim of the lab's containerd; handler `deno`: ours), interleaved A/B/B/A. On containerd 2.x
 * with Task API v3 this is the path on which containerd sends the container straight to the pod's server, without
 * running the shim binary's `start` or `delete`.
 *
 * @module
 */
import type { Lab } from "../../tests/lab/mod.ts";
import { CRI_HANDLERS } from "../../tests/lab/config.ts";
import { CriClient } from "../../tests/cri/client.ts";
import { container, hostNetworkPod } from "../../tests/cri/pod.ts";
import { runTag } from "./ctr.ts";
import type { Side } from "./procs.ts";
import type { AbSamples } from "./results.ts";
import { abOrder } from "./stats.ts";

const WARMUP = 2;
const HANDLER: Record<Side, string> = { go: "runc", deno: CRI_HANDLERS.deno };

/** Runs `n` interleaved create→remove cycles per side; returns their wall times in ms. */
export async function measureCri(lab: Lab, n: number, progress: (msg: string) => void): Promise<AbSamples> {
  await lab.ensurePauseImage();
  const cri = new CriClient(lab.address, { deadlineMs: 60_000 });
  const logDir = await Deno.makeTempDir({ dir: `${lab.dir}/logs`, prefix: "bench-cri-" });
  const pods: Partial<Record<Side, { id: string; config: ReturnType<typeof hostNetworkPod> }>> = {};
  const out: AbSamples = { go: [], deno: [] };
  try {
    for (const side of ["go", "deno"] as const) {
      const config = hostNetworkPod(`bench-cri-${side}-${runTag()}`, logDir, "bench-cri");
      pods[side] = { id: await cri.runPodSandbox(config, HANDLER[side]), config };
    }
    const cycle = async (side: Side, name: string): Promise<number> => {
      const pod = pods[side]!;
      const t0 = performance.now();
      const id = await cri.createContainer(pod.id, container(name, lab.image, ["sleep", "1000"]), pod.config);
      await cri.startContainer(id);
      await cri.stopContainer(id, 0);
      await cri.removeContainer(id);
      return performance.now() - t0;
    };
    for (let i = 0; i < WARMUP; i++) for (const side of abOrder<Side>(i, "go", "deno")) await cycle(side, `w${i}`);
    for (let i = 0; i < n; i++) {
      for (const side of abOrder<Side>(i, "go", "deno")) out[side].push(await cycle(side, `c${i}`));
      if ((i + 1) % 10 === 0) progress(`cri ${i + 1}/${n}`);
    }
  } finally {
    for (const pod of Object.values(pods)) {
      await cri.stopPodSandbox(pod.id).catch(() => {});
      await cri.removePodSandbox(pod.id).catch(() => {});
    }
    cri.close();
    await Deno.remove(logDir, { recursive: true }).catch(() => {});
  }
  return out;
}
