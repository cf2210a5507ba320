/**
 * The files the server writes into a container's bundle besides containerd's own (`config.json`, `rootfs/`), which the
 * `delete` command reads after the server is gone. A module of names only: `delete` loads it without the task code.
 *
 * @module
 */

/** Where runc writes the init's pid, as the Go shim names it (its `delete` reads it). */
export const INIT_PID_FILE = "init.pid";

/**
 * Written by the server's Delete once `rootfs` holds no mount any more (after runc's delete and the unmount), so that
 * the `delete` containerd runs next need not check the mount point itself: that check stats the directory, its
 * parent and lists it, ~0.8 ms of a fresh process (its first stat builds `Date`s, which loads the time zone). Without
 * it (the server died, or predates it) `delete` checks, and unmounts if needed.
 */
export const ROOTFS_UNMOUNTED_FILE = "rootfs.unmounted";
