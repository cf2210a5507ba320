/**
 * File descriptors over unix sockets (SCM_RIGHTS): one message with fds attached, sent or received with its payload.
 * runc hands the shim a pty master this way (console.ts), and `start` hands a spare server its listening socket
 * (src/shim/spare.ts).
 *
 * Both sides lay msghdr, iovec, the control buffer and the payload out in one explicit ArrayBuffer: it lives off the
 * V8 heap, so the addresses stored inside msghdr and iovec stay valid during the call.
 *
 * @example
 * ```ts
 * import { receiveWithFds, sendWithFds } from "./fd_passing.ts";
 * sendWithFds(sock, new TextEncoder().encode("hello"), [listenFd]);
 * const { data, fds } = await receiveWithFds(peer, 4096, 4, () => poller().wait(peer, "read"));
 * ```
 * @module
 */
import { CMSG_ONE_FD, IOVEC, MSG_CMSG_CLOEXEC, MSG_CTRUNC, MSGHDR, SCM_RIGHTS, SOL_SOCKET } from "./abi.ts";
import { EAGAIN, EINTR, SysError } from "./errno.ts";
import { addressOf, errno, libc } from "./libc.ts";

/** Where iovec and the control buffer start in the message memory (msghdr comes first). */
const AT_IOV = 64;
const AT_CTRL = 96;
/** struct cmsghdr's header: len (size_t), level, type; data follows at {@linkcode CMSG_ONE_FD.data}. */
const CMSG_HEADER = CMSG_ONE_FD.data;

/** CMSG_SPACE for `n` ints (8-byte alignment on LP64). */
function controlSpace(n: number): number {
  return CMSG_HEADER + Math.ceil((4 * n) / 8) * 8;
}

/** Message memory: msghdr | iovec | control | payload, with iovec and control pointed to. */
function messageMemory(maxFds: number, payloadSize: number): { mem: Uint8Array; view: DataView; atData: number } {
  const atData = AT_CTRL + controlSpace(Math.max(1, maxFds));
  const mem = new Uint8Array(new ArrayBuffer(atData + Math.max(1, payloadSize)));
  const view = new DataView(mem.buffer);
  const base = addressOf(mem);
  view.setBigUint64(AT_IOV + IOVEC.base, base + BigInt(atData), true);
  view.setBigUint64(AT_IOV + IOVEC.len, BigInt(payloadSize), true);
  view.setBigUint64(MSGHDR.iov, base + BigInt(AT_IOV), true);
  view.setBigUint64(MSGHDR.iovlen, 1n, true);
  view.setBigUint64(MSGHDR.control, base + BigInt(AT_CTRL), true);
  return { mem, view, atData };
}

/**
 * Sends `payload` (at least one byte: a message with only fds would be a zero-length read on the other side) with
 * `fds` attached, in one sendmsg on a connected stream socket. Returns the bytes sent, which is less than the payload
 * only when the socket buffer was full (the fds went with the first byte either way); -1 with errno EAGAIN when
 * nothing could be sent yet. Throws SysError for other failures (EPIPE, ECONNRESET...).
 */
export function sendWithFds(sock: number, payload: Uint8Array, fds: readonly number[]): number {
  if (payload.length === 0) throw new RangeError("sendWithFds needs a payload of at least one byte");
  const { mem, view, atData } = messageMemory(fds.length, payload.length);
  mem.set(payload, atData);
  if (fds.length > 0) {
    view.setBigUint64(AT_CTRL, BigInt(CMSG_HEADER + 4 * fds.length), true);
    view.setInt32(AT_CTRL + CMSG_ONE_FD.level, SOL_SOCKET, true);
    view.setInt32(AT_CTRL + CMSG_ONE_FD.type, SCM_RIGHTS, true);
    fds.forEach((fd, i) => view.setInt32(AT_CTRL + CMSG_HEADER + 4 * i, fd, true));
    view.setBigUint64(MSGHDR.controllen, BigInt(controlSpace(fds.length)), true);
  } else {
    view.setBigUint64(MSGHDR.control, 0n, true);
  }
  for (;;) {
    const n = libc().sendmsg(sock, mem, MSG_NOSIGNAL);
    if (n >= 0) return n;
    const err = errno();
    if (err === EAGAIN) return -1;
    if (err !== EINTR) throw new SysError("sendmsg", err, `fd ${sock}`);
  }
}

/** MSG_NOSIGNAL: a peer that went away is EPIPE, not SIGPIPE. */
const MSG_NOSIGNAL = 0x4000;

/** One received message: its payload and the fds that came with it (close-on-exec; the caller owns them). */
export interface Received {
  data: Uint8Array;
  fds: number[];
  /** The sender attached more fds than `maxFds`; those beyond were closed. */
  truncated: boolean;
}

/**
 * Receives one message of up to `maxPayload` bytes and `maxFds` fds from a non-blocking stream socket, calling
 * `waitReadable` while there is none (the poller's wait; this module does not load it, so a short-lived command that
 * only sends stays lean). A zero-length `data` with no fds is the peer's end of file. Rejects with what
 * `waitReadable` rejects with, and with SysError for system failures.
 */
export async function receiveWithFds(
  sock: number,
  maxPayload: number,
  maxFds: number,
  waitReadable: () => Promise<void>,
): Promise<Received> {
  const C = libc();
  const { mem, view, atData } = messageMemory(maxFds, maxPayload);
  const space = controlSpace(Math.max(1, maxFds));
  let n: number;
  for (;;) {
    // The kernel overwrites msg_controllen and msg_flags: reset them on every attempt.
    view.setBigUint64(MSGHDR.controllen, BigInt(space), true);
    view.setInt32(MSGHDR.flags, 0, true);
    n = C.recvmsg(sock, mem, MSG_CMSG_CLOEXEC);
    if (n >= 0) break;
    const err = errno();
    if (err === EAGAIN) await waitReadable();
    else if (err !== EINTR) throw new SysError("recvmsg", err, `fd ${sock}`);
  }
  const fds: number[] = [];
  const controllen = Number(view.getBigUint64(MSGHDR.controllen, true));
  if (controllen >= CMSG_HEADER + 4) {
    const len = Number(view.getBigUint64(AT_CTRL, true));
    const level = view.getInt32(AT_CTRL + CMSG_ONE_FD.level, true);
    const type = view.getInt32(AT_CTRL + CMSG_ONE_FD.type, true);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let at = CMSG_HEADER; at + 4 <= Math.min(len, controllen); at += 4) {
        fds.push(view.getInt32(AT_CTRL + at, true));
      }
    }
  }
  let truncated = (view.getInt32(MSGHDR.flags, true) & MSG_CTRUNC) !== 0;
  // The control buffer is rounded up to 8 bytes, so one fd more than asked for may fit: it is closed, as the kernel
  // closed those that did not fit.
  for (const extra of fds.splice(maxFds)) {
    C.close(extra);
    truncated = true;
  }
  return { data: mem.slice(atData, atData + n), fds, truncated };
}
