/**
 * The Linux ABI facts `src/sys` relies on: flag values and struct layouts, in one place.
 *
 * Everything here is for LP64 glibc on x86-64, and equal on aarch64 unless a value switches on
 * `Deno.build.arch` (only `epoll_event`, which x86-64 packs to 12 bytes). Flags that differ between the two
 * architectures (O_DIRECTORY, O_NOFOLLOW, ...) are deliberately not used anywhere in `src/sys`.
 *
 * @module
 */

const aarch64 = Deno.build.arch === "aarch64";

// open(2) flags (asm-generic values, shared by x86-64 and aarch64).
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_APPEND = 0o2000;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

// fcntl(2)
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;

// prctl(2)
export const PR_SET_NAME = 15;
export const PR_GET_NAME = 16;
export const PR_SET_CHILD_SUBREAPER = 36;
export const PR_GET_CHILD_SUBREAPER = 37;

// waitid(2) / waitpid(2)
export const P_ALL = 0;
export const P_PID = 1;
export const WNOHANG = 1;
export const WEXITED = 4;
export const WNOWAIT = 0x01000000;
/** siginfo_t (128 bytes): the fields waitid fills for SIGCHLD. */
export const SIGINFO = { size: 128, signo: 0, code: 8, pid: 16, uid: 20, status: 24 } as const;
export const CLD_EXITED = 1;
export const CLD_KILLED = 2;
export const CLD_DUMPED = 3;
/** Signal numbers (asm-generic: x86-64 and aarch64 agree). */
export const SIGKILL = 9;
export const SIGTERM = 15;

// statx(2): arch-independent layout, and exported by glibc since 2.28 (plain `stat` only since 2.33).
export const AT_FDCWD = -100;
export const STATX_TYPE = 1;
export const STATX_MODE = 2;
export const STATX_UID = 8;
export const STATX_MTIME = 0x40;
export const STATX_INO = 0x100;
export const STATX_SIZE = 0x200;
/** struct statx: offsets of the fields read here (timestamps are `{ tv_sec: i64, tv_nsec: u32, pad }`). */
export const STATX = {
  size: 256,
  uid: 20,
  mode: 28,
  ino: 32,
  fileSize: 40,
  mtimeSec: 112,
  mtimeNsec: 120,
  devMajor: 136,
  devMinor: 140,
} as const;
export const S_IFREG = 0o100000;
export const S_IFMT = 0o170000;
export const S_IFIFO = 0o010000;

// sockets
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = O_NONBLOCK;
export const SOCK_CLOEXEC = O_CLOEXEC;
export const SOL_SOCKET = 1;
export const SO_ERROR = 4;
export const SO_PEERCRED = 17;
export const SO_ACCEPTCONN = 30;
/** struct ucred, what SO_PEERCRED fills: pid, uid, gid as 32-bit ints. */
export const UCRED = { size: 12, pid: 0, uid: 4, gid: 8 } as const;
export const SHUT_WR = 1;
/** flock(2): an exclusive lock; released by closing the fd. */
export const LOCK_EX = 2;
export const SCM_RIGHTS = 1;
export const MSG_CTRUNC = 0x8;
export const MSG_CMSG_CLOEXEC = 0x40000000;
/** sockaddr_un: sa_family_t then a 108-byte path (NUL-terminated). */
export const POLLIN = 0x1;
export const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;
export const SOCKADDR_UN = { size: 110, family: 0, path: 2, pathMax: 108 } as const;
/** struct msghdr (LP64). */
export const MSGHDR = {
  size: 56,
  name: 0,
  namelen: 8,
  iov: 16,
  iovlen: 24,
  control: 32,
  controllen: 40,
  flags: 48,
} as const;
/** struct iovec (LP64). */
export const IOVEC = { size: 16, base: 0, len: 8 } as const;
/** struct cmsghdr carrying one int: CMSG_SPACE(sizeof(int)) = 24, CMSG_LEN(4) = 20, data at 16. */
export const CMSG_ONE_FD = { space: 24, len: 20, level: 8, type: 12, data: 16 } as const;

// ttys: struct winsize is {ws_row, ws_col, ws_xpixel, ws_ypixel} as u16s.
export const TIOCGWINSZ = 0x5413;
export const TIOCSWINSZ = 0x5414;
export const WINSIZE = { size: 8, row: 0, col: 2 } as const;

// epoll
export const EPOLL_CLOEXEC = O_CLOEXEC;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x1;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;
export const EPOLLRDHUP = 0x2000;
export const EPOLLONESHOT = 1 << 30;
/** struct epoll_event: `__attribute__((packed))` on x86-64 (12 bytes), naturally aligned on aarch64 (16). */
export const EPOLL_EVENT = aarch64
  ? { size: 16, events: 0, data: 8 } as const
  : { size: 12, events: 0, data: 4 } as const;

// eventfd(2)
export const EFD_SEMAPHORE = 1;
export const EFD_NONBLOCK = O_NONBLOCK;
export const EFD_CLOEXEC = O_CLOEXEC;
