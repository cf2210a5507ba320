/**
 * Builds the lab's images without network (host-lab.md §4.1 and §4.4): a deterministic single-layer OCI archive of
 * Debian's statically linked busybox (`docker.io/library/busybox:latest`), and a pause image for the CRI plugin
 * (`localhost:5000/pause:latest`) that reuses the same layer with `sleep` as its entrypoint.
 *
 * Deterministic means: the same busybox binary gives byte-identical archives in any directory (sorted tar entries,
 * mtime 0, numeric root ownership, explicit modes, `gzip -n`), so image digests are stable across machines and runs.
 * Needs GNU tar and gzip; root is not needed.
 *
 * @example
 * ```ts
 * import { buildImageArchives } from "./image.ts";
 * const { busybox, pause } = await buildImageArchives("/tmp/lab");  // → /tmp/lab/busybox-oci.tar, /tmp/lab/pause-oci.tar
 * ```
 * @module
 */
import { dirname, join } from "node:path";
import { runCommand } from "./proc.ts";

/** Reference of the busybox image inside containerd. */
export const BUSYBOX_IMAGE = "docker.io/library/busybox:latest";
/** Reference of the pause image (the CRI plugin's `sandbox_image`). */
export const PAUSE_IMAGE = "localhost:5000/pause:latest";
/** The statically linked busybox of Debian's `busybox-static`. */
export const BUSYBOX_BINARY = "/bin/busybox";

/** Paths of the archives written by {@linkcode buildImageArchives}. */
export interface ImageArchives {
  busybox: string;
  pause: string;
}

/** Where the archives of a lab live. */
export function imageArchivePaths(labDir: string): ImageArchives {
  return { busybox: join(labDir, "busybox-oci.tar"), pause: join(labDir, "pause-oci.tar") };
}

const TAR_FLAGS = ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner"];
const EPOCH = "1970-01-01T00:00:00Z";
const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

interface Descriptor {
  digest: string;
  size: number;
}

async function sha256Hex(path: string): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function mustRun(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await runCommand(cmd, args, { cwd, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * True when the ELF file has a PT_INTERP program header, i.e. is dynamically linked. A dynamic busybox would make an
 * image whose every command fails with "no such file or directory" (its loader is not in the image).
 */
function hasInterpreter(elf: Uint8Array): boolean {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (v.getUint32(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) throw new Error("not a 64-bit little-endian ELF");
  const phoff = Number(v.getBigUint64(0x20, true));
  const phentsize = v.getUint16(0x36, true);
  const phnum = v.getUint16(0x38, true);
  for (let i = 0; i < phnum; i++) {
    if (v.getUint32(phoff + i * phentsize, true) === 3 /* PT_INTERP */) return true;
  }
  return false;
}

/** Relative symlink target from an applet path (e.g. `usr/bin/wc`) to `bin/busybox`. */
function appletTarget(applet: string): string {
  const dir = dirname(applet);
  if (dir === ".") return "bin/busybox";
  if (dir === "bin") return "busybox";
  return "../".repeat(dir.split("/").length) + "bin/busybox";
}

/** Writes the rootfs: busybox, a symlink per applet, passwd/group, and the usual empty directories. */
async function writeRootfs(rootfs: string, busybox: string): Promise<void> {
  const dirs = ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var/run", "run"];
  for (const d of dirs) await Deno.mkdir(join(rootfs, d), { recursive: true });
  // Modes set explicitly: the caller's umask must not change the layer's bytes.
  for (const d of [".", ...dirs, "usr", "var"]) await Deno.chmod(join(rootfs, d), 0o755);
  await Deno.chmod(join(rootfs, "tmp"), 0o1777);
  await Deno.copyFile(busybox, join(rootfs, "bin/busybox"));
  await Deno.chmod(join(rootfs, "bin/busybox"), 0o755);
  const applets = (await mustRun(busybox, ["--list-full"])).split("\n").filter((a) => a && a !== "bin/busybox");
  for (const applet of applets) {
    const link = join(rootfs, applet);
    await Deno.mkdir(dirname(link), { recursive: true });
    await Deno.remove(link).catch(() => {});
    await Deno.symlink(appletTarget(applet), link);
  }
  const files: Record<string, string> = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
  };
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(join(rootfs, name), text);
    await Deno.chmod(join(rootfs, name), 0o644);
  }
}

/** Moves `file` into `<layout>/blobs/sha256/<digest>` and returns its descriptor. */
async function addBlob(layout: string, file: string): Promise<Descriptor> {
  const hex = await sha256Hex(file);
  const size = (await Deno.stat(file)).size;
  await Deno.rename(file, join(layout, "blobs/sha256", hex));
  return { digest: `sha256:${hex}`, size };
}

/** Writes compact JSON (byte-for-byte what `jq -c` would write for the same object) and adds it as a blob. */
async function addJsonBlob(layout: string, scratch: string, value: unknown): Promise<Descriptor> {
  const file = join(scratch, "blob.json");
  await Deno.writeTextFile(file, JSON.stringify(value) + "\n");
  return await addBlob(layout, file);
}

/** Directories 0755, files 0644 below `dir`: the archive's bytes must not depend on the caller's umask. */
async function normalizeModes(dir: string): Promise<void> {
  await Deno.chmod(dir, 0o755);
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) await normalizeModes(p);
    else if (e.isFile) await Deno.chmod(p, 0o644);
  }
}

/** Writes one image layout (config, manifest, index) around an existing layer blob, then archives it to `out`. */
async function writeImage(
  layout: string,
  scratch: string,
  layer: { path: string; desc: Descriptor; diffId: string },
  imageConfig: Record<string, unknown>,
  name: string,
  out: string,
): Promise<string> {
  await Deno.mkdir(join(layout, "blobs/sha256"), { recursive: true });
  await Deno.copyFile(layer.path, join(layout, "blobs/sha256", layer.desc.digest.slice("sha256:".length)));
  const config = await addJsonBlob(layout, scratch, {
    architecture: "amd64",
    os: "linux",
    created: EPOCH,
    config: imageConfig,
    rootfs: { type: "layers", diff_ids: [layer.diffId] },
    history: [{ created: EPOCH, created_by: "busybox-static rootfs" }],
  });
  const manifest = await addJsonBlob(layout, scratch, {
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: config.digest, size: config.size },
    layers: [{
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: layer.desc.digest,
      size: layer.desc.size,
    }],
  });
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{
      mediaType: MANIFEST_TYPE,
      digest: manifest.digest,
      size: manifest.size,
      platform: { architecture: "amd64", os: "linux" },
      annotations: { "io.containerd.image.name": name, "org.opencontainers.image.ref.name": "latest" },
    }],
  };
  await Deno.writeTextFile(join(layout, "index.json"), JSON.stringify(index) + "\n");
  await Deno.writeTextFile(join(layout, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}\n');
  await normalizeModes(layout);
  const tmp = `${out}.tmp-${Deno.pid}`;
  await mustRun("tar", [...TAR_FLAGS, "-C", layout, "-cf", tmp, "oci-layout", "index.json", "blobs"]);
  await Deno.chmod(tmp, 0o644);
  await Deno.rename(tmp, out); // readers never see a half-written archive
  return manifest.digest;
}

/** Digests of a build, for logs and for comparing builds. */
export interface BuildResult extends ImageArchives {
  layerDigest: string;
  busyboxManifest: string;
  pauseManifest: string;
}

/**
 * Builds both archives into `labDir` (scratch space in `<labDir>/build`, removed afterwards). The busybox binary
 * must be statically linked (package `busybox-static`).
 */
export async function buildImageArchives(labDir: string, busybox: string = BUSYBOX_BINARY): Promise<BuildResult> {
  const bin = await Deno.realPath(busybox).catch(() => {
    throw new Error(`${busybox} not found: install busybox-static (apt-get install -y busybox-static)`);
  });
  if (hasInterpreter(await Deno.readFile(bin))) {
    throw new Error(`${busybox} is dynamically linked: install busybox-static (apt-get install -y busybox-static)`);
  }
  const build = join(labDir, "build");
  await Deno.remove(build, { recursive: true }).catch(() => {});
  await Deno.mkdir(build, { recursive: true });
  try {
    const rootfs = join(build, "rootfs");
    await writeRootfs(rootfs, bin);
    const layerTar = join(build, "layer.tar");
    await mustRun("tar", [...TAR_FLAGS, "-C", rootfs, "-cf", layerTar, "."]);
    const diffId = `sha256:${await sha256Hex(layerTar)}`;
    await mustRun("gzip", ["-n", "-9", layerTar]);
    const layerPath = `${layerTar}.gz`;
    const layer = { path: layerPath, diffId, desc: { digest: `sha256:${await sha256Hex(layerPath)}`, size: 0 } };
    layer.desc.size = (await Deno.stat(layerPath)).size;

    const out = imageArchivePaths(labDir);
    const busyboxManifest = await writeImage(
      join(build, "oci-busybox"),
      build,
      layer,
      {
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        Cmd: ["sh"],
        WorkingDir: "/",
      },
      BUSYBOX_IMAGE,
      out.busybox,
    );
    const pauseManifest = await writeImage(
      join(build, "oci-pause"),
      build,
      layer,
      {
        Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
        Entrypoint: ["/bin/sleep", "2147483647"],
        WorkingDir: "/",
      },
      PAUSE_IMAGE,
      out.pause,
    );
    return { ...out, layerDigest: layer.desc.digest, busyboxManifest, pauseManifest };
  } finally {
    await Deno.remove(build, { recursive: true }).catch(() => {});
  }
}
