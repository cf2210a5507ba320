import assert from "node:assert/strict";
import { EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLL_EVENT, EPOLLIN } from "./abi.ts";
import { closeFd, pipe } from "./fdio.ts";
import { libc } from "./libc.ts";
import { isEpollInfo, runtimeEpollFds } from "./runtime_epoll.ts";

Deno.test("isEpollInfo: only an epoll's fdinfo with registrations", () => {
  assert.ok(
    isEpollInfo("pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\ntfd:        5 events: 80002019 data: 0\n"),
  );
  assert.ok(!isEpollInfo("pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\n")); // an empty epoll
  assert.ok(!isEpollInfo("pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\neventfd-count:                1\n"));
});

Deno.test("runtimeEpollFds finds Deno's reactor, and an epoll of ours unless excluded", () => {
  const before = runtimeEpollFds([]);
  assert.ok(before.length >= 1, "Deno's reactor is an epoll with registrations");
  const epfd = libc().epoll_create1(EPOLL_CLOEXEC);
  const [r, w] = pipe();
  try {
    const ev = new Uint8Array(EPOLL_EVENT.size);
    const view = new DataView(ev.buffer);
    view.setUint32(EPOLL_EVENT.events, EPOLLIN, true);
    assert.equal(libc().epoll_ctl(epfd, EPOLL_CTL_ADD, r, ev), 0);
    assert.ok(runtimeEpollFds([]).includes(epfd));
    assert.deepEqual(runtimeEpollFds([epfd]), before);
  } finally {
    libc().close(epfd);
    closeFd(r);
    closeFd(w);
  }
});
