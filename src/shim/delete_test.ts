import assert from "node:assert/strict";
import {
  bundleSocketPath,
  DELETE_EXIT_STATUS,
  deleteTask,
  listBundle,
  mightBeMounted,
  readInitPid,
  runcStateDirExists,
} from "./delete.ts";
import { parseShimArgs } from "./flags.ts";
import { listenUnix } from "../sys/unix_socket.ts";
import { libc } from "../sys/libc.ts";
import { task } from "../proto/mod.ts";
import { mount, unmountAll } from "../sys/mount.ts";
import { ROOTFS_UNMOUNTED_FILE } from "../task/bundle_files.ts";

Deno.test("runcStateDirExists: runc's directory for the container decides whether runc delete runs", () => {
  const root = Deno.makeTempDirSync({ prefix: "runc-root-" });
  try {
    assert.equal(runcStateDirExists(root, "c1"), false, "no directory: runc delete --force would find nothing");
    Deno.mkdirSync(`${root}/c1`);
    assert.equal(runcStateDirExists(root, "c1"), true, "a directory, even without state.json, is runc's to remove");
    assert.equal(runcStateDirExists(`${root}/missing-root`, "c1"), false);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("readInitPid: the pid, or 0 for a missing or malformed file", () => {
  const dir = Deno.makeTempDirSync({ prefix: "init-pid-" });
  try {
    assert.equal(readInitPid(`${dir}/init.pid`), 0);
    Deno.writeTextFileSync(`${dir}/init.pid`, "1234");
    assert.equal(readInitPid(`${dir}/init.pid`), 1234);
    Deno.writeTextFileSync(`${dir}/init.pid`, "12x");
    assert.equal(readInitPid(`${dir}/init.pid`), 0);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("mightBeMounted: only a missing rootfs or an empty one on the bundle's device is certainly not a mount", () => {
  const bundle = Deno.makeTempDirSync({ prefix: "bundle-" });
  try {
    assert.equal(mightBeMounted(`${bundle}/rootfs`, bundle), false, "missing");
    Deno.mkdirSync(`${bundle}/rootfs`);
    assert.equal(mightBeMounted(`${bundle}/rootfs`, bundle), false, "the empty mount point containerd made");
    Deno.writeTextFileSync(`${bundle}/rootfs/x`, "");
    assert.equal(mightBeMounted(`${bundle}/rootfs`, bundle), true, "content: could be a bind mount");
    // another device: /dev is a devtmpfs, /proc a procfs; either differs from a temp directory's
    assert.equal(mightBeMounted("/dev", bundle), true, "another device");
  } finally {
    Deno.removeSync(bundle, { recursive: true });
  }
});

Deno.test("deleteTask reads only what the bundle holds: pid from init.pid, 137, and a dead server's socket removed", async () => {
  const bundle = Deno.makeTempDirSync({ prefix: "delete-bundle-" });
  const sockets = Deno.makeTempDirSync({ prefix: "delete-sockets-" });
  const ns = `delete-test-${Deno.pid}`; // no runc state directory exists for it: runc is not run
  const args = (id: string) =>
    parseShimArgs(["-namespace", ns, "-id", id, "-bundle", bundle, "delete"], () => undefined);
  const decode = (b: Uint8Array) => task.DeleteResponse.decode(b);
  try {
    assert.deepEqual(listBundle(bundle), new Set());
    const before = Date.now();
    const empty = decode(await deleteTask(args("c1")));
    assert.equal(empty.pid, 0, "no init.pid: the task never started");
    assert.equal(empty.exitStatus, DELETE_EXIT_STATUS);
    const at = Number(empty.exitedAt?.seconds ?? 0) * 1000 + Math.floor(Number(empty.exitedAt?.nanos ?? 0) / 1e6);
    assert.ok(at >= before - 1000 && at <= Date.now() + 1000, `exited_at ${at} is now`);

    Deno.writeTextFileSync(`${bundle}/init.pid`, "4321");
    // A socket file nothing listens on any more: what a server killed with -9 leaves.
    const socket = `${sockets}/dead.sock`;
    libc().close(listenUnix(socket)); // the file stays, dead
    Deno.writeTextFileSync(`${bundle}/address`, `unix://${socket}`);
    const names = listBundle(bundle)!;
    assert.deepEqual([...names].sort(), ["address", "init.pid"]);
    assert.equal(bundleSocketPath(bundle, names), socket);
    assert.equal(bundleSocketPath(bundle, new Set(["init.pid"])), undefined, "not listed: not read");
    Deno.writeTextFileSync(`${bundle}/bootstrap.json`, JSON.stringify({ version: 3, address: "unix:///run/x.sock" }));
    assert.equal(bundleSocketPath(bundle, new Set(["bootstrap.json"])), "/run/x.sock", "containerd 2.x's file");
    Deno.removeSync(`${bundle}/bootstrap.json`);
    const full = decode(await deleteTask(args("c1")));
    assert.equal(full.pid, 4321);
    assert.equal(full.exitStatus, DELETE_EXIT_STATUS);
    assert.equal(listBundle(sockets)?.has("dead.sock"), false, "the dead server's socket was left");
  } finally {
    Deno.removeSync(bundle, { recursive: true });
    Deno.removeSync(sockets, { recursive: true });
  }
});

Deno.test("deleteTask unmounts a rootfs left mounted, unless the server's Delete marked it unmounted", async () => {
  const bundle = Deno.makeTempDirSync({ prefix: "delete-rootfs-" });
  const rootfs = `${bundle}/rootfs`, mark = `${bundle}/${ROOTFS_UNMOUNTED_FILE}`;
  const args = parseShimArgs(
    ["-namespace", `delete-test-${Deno.pid}`, "-id", "r1", "-bundle", bundle, "delete"],
    () => {
      return undefined;
    },
  );
  const mounted = () => Deno.statSync(rootfs).dev !== Deno.statSync(bundle).dev;
  Deno.mkdirSync(rootfs);
  try {
    mount({ type: "tmpfs", source: "tmpfs", options: ["size=1m"] }, rootfs);
    assert.ok(mounted());
    Deno.writeFileSync(mark, new Uint8Array());
    await deleteTask(args);
    assert.ok(mounted(), "with the mark, delete trusts it and leaves the mount point alone");
    Deno.removeSync(mark);
    await deleteTask(args);
    assert.ok(!mounted(), "without it, delete finds the mount and unmounts it");
  } finally {
    await unmountAll(rootfs).catch(() => {});
    Deno.removeSync(bundle, { recursive: true });
  }
});
