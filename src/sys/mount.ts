/**
 * mount(2) and umount2(2) with containerd's option language (`ro`, `rbind`, `nosuid`, `lowerdir=…`), for the rootfs
 * mounts a Create request carries. Deno has no mount API, so this goes through libc.
 *
 * @example
 * ```ts
 * mount({ type: "overlay", source: "overlay", options: ["lowerdir=/l", "upperdir=/u", "workdir=/w"] }, "/b/rootfs");
 * unmountAll("/b/rootfs");
 * ```
 * @module
 */
import { EBUSY, EINVAL, ENOENT, SysError } from "./errno.ts";
import { cstr, errno, libc } from "./libc.ts";

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_UNBINDABLE = 0x20000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_STRICTATIME = 0x1000000;
export const MNT_DETACH = 0x2;

const PROPAGATION = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

/** option → [clear?, flag] as mount(8) and containerd understand them. */
const FLAG_OPTIONS: Record<string, [boolean, number]> = {
  async: [true, MS_SYNCHRONOUS],
  atime: [true, MS_NOATIME],
  bind: [false, MS_BIND],
  defaults: [false, 0],
  dev: [true, MS_NODEV],
  diratime: [true, MS_NODIRATIME],
  dirsync: [false, MS_DIRSYNC],
  exec: [true, MS_NOEXEC],
  mand: [false, MS_MANDLOCK],
  noatime: [false, MS_NOATIME],
  nodev: [false, MS_NODEV],
  nodiratime: [false, MS_NODIRATIME],
  noexec: [false, MS_NOEXEC],
  nomand: [true, MS_MANDLOCK],
  norelatime: [true, MS_RELATIME],
  nostrictatime: [true, MS_STRICTATIME],
  nosuid: [false, MS_NOSUID],
  rbind: [false, MS_BIND | MS_REC],
  relatime: [false, MS_RELATIME],
  remount: [false, MS_REMOUNT],
  ro: [false, MS_RDONLY],
  rw: [true, MS_RDONLY],
  strictatime: [false, MS_STRICTATIME],
  suid: [true, MS_NOSUID],
  sync: [false, MS_SYNCHRONOUS],
};

const PROPAGATION_OPTIONS: Record<string, number> = {
  private: MS_PRIVATE,
  rprivate: MS_PRIVATE | MS_REC,
  shared: MS_SHARED,
  rshared: MS_SHARED | MS_REC,
  slave: MS_SLAVE,
  rslave: MS_SLAVE | MS_REC,
  unbindable: MS_UNBINDABLE,
  runbindable: MS_UNBINDABLE | MS_REC,
};

/** A rootfs mount as containerd sends it (`containerd.types.Mount`). */
export interface MountSpec {
  type: string;
  source: string;
  options: string[];
}

/** Splits options into mount flags, propagation flags and the filesystem data string. */
export function parseMountOptions(options: string[]): { flags: number; propagation: number; data: string } {
  let flags = 0, propagation = 0;
  const data: string[] = [];
  for (const o of options) {
    const f = FLAG_OPTIONS[o];
    if (f) flags = f[0] ? flags & ~f[1] : flags | f[1];
    else if (PROPAGATION_OPTIONS[o] !== undefined) propagation |= PROPAGATION_OPTIONS[o];
    else data.push(o);
  }
  return { flags, propagation, data: data.join(",") };
}

function sysMount(source: string, target: string, type: string, flags: number, data: string): void {
  const ret = libc().mount(cstr(source), cstr(target), cstr(type), BigInt(flags), cstr(data));
  if (ret < 0) throw new SysError("mount", errno(), target);
}

/** Mounts `m` on `target`, as containerd's mount.Mount does (bind + ro needs a remount; propagation is separate). */
export function mount(m: MountSpec, target: string): void {
  const { flags, propagation, data } = parseMountOptions(m.options);
  if ((flags & MS_REMOUNT) === 0 || data !== "") {
    sysMount(m.source, target, m.type === "bind" ? "" : m.type, flags & ~PROPAGATION, data);
  }
  if (propagation !== 0) sysMount("", target, "", propagation, "");
  if ((flags & MS_BIND) !== 0 && (flags & MS_RDONLY) !== 0) {
    sysMount("", target, "", flags | MS_REMOUNT | MS_BIND | MS_RDONLY, "");
  }
}

/** Unmounts one layer at `target`; EBUSY is retried briefly, then the mount is detached lazily. */
export async function unmount(target: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (libc().umount2(cstr(target), 0) === 0) return;
    const e = errno();
    if (e !== EBUSY) throw new SysError("umount2", e, target);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (libc().umount2(cstr(target), MNT_DETACH) < 0) throw new SysError("umount2", errno(), target);
}

/** Unmounts every mount stacked on `target` until it is no mount point (containerd's UnmountAll). */
export async function unmountAll(target: string): Promise<void> {
  for (let i = 0; i < 64; i++) {
    try {
      await unmount(target);
    } catch (err) {
      if (err instanceof SysError && (err.errno === EINVAL || err.errno === ENOENT)) return;
      throw err;
    }
  }
  throw new Error(`umount ${target}: still mounted after 64 unmounts`);
}
