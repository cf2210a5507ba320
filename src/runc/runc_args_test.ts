/**
 * Runc against a fake `runc` shell script that records its argv/stdin and behaves as told: checks the exact command
 * lines (flag mapping for checkpoint/restore, which CRIU on this host cannot exercise), stdin feeding, error
 * extraction and the injected spawn, without needing root.
 */
import assert from "node:assert/strict";
import { readPidFile, Runc, RuncError } from "./mod.ts";
import { spawn as spawnChild } from "../sys/spawn.ts";

const FAKE = `#!/bin/sh
d="$FAKE_DIR"
log=""; prev=""
for a in "$@"; do [ "$prev" = "--log" ] && log="$a"; prev="$a"; done
printf '%s\\n' "$@" > "$d/args"
case "$(cat "$d/mode")" in
  ok) [ -f "$d/stdout" ] && cat "$d/stdout"; exit 0 ;;
  stdin) cat > "$d/stdin"; exit 0 ;;
  exec) while [ $# -gt 0 ]; do [ "$1" = "--process" ] && cp "$2" "$d/process" && echo "$2" > "$d/process-path"; shift; done; exit 0 ;;
  fail-log) echo '{"level":"info","msg":"hello","time":"t"}' >> "$log"
            echo '{"level":"error","msg":"boom from log","time":"t"}' >> "$log"
            echo "boom from stderr" >&2; exit 1 ;;
  fail-stderr) echo 'time="t" level=error msg="only on stderr"' >&2; exit 2 ;;
  nohelp) printf '%s\\n' '{"level":"error","msg":"No help topic for '"'features'"'\\n","time":"t"}' >> "$log"; exit 3 ;;
  die) kill -9 $$ ;;
esac
`;

interface Fake {
  dir: string;
  runc: Runc;
  spawned: string[][];
  mode(m: string): Promise<void>;
  args(): Promise<string[]>;
}

async function withFake(fn: (f: Fake) => Promise<void>, cfg: { log?: boolean } = { log: true }): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "runc-fake-" });
  try {
    await Deno.writeTextFile(`${dir}/runc`, FAKE, { mode: 0o755 });
    const spawned: string[][] = [];
    const runc = new Runc({
      binary: `${dir}/runc`,
      root: `${dir}/root`,
      log: cfg.log ? `${dir}/log.json` : undefined,
      spawn: (cmd, o) => {
        spawned.push(o.args ?? []);
        return spawnChild(cmd, { ...o, env: { FAKE_DIR: dir } });
      },
    });
    await fn({
      dir,
      runc,
      spawned,
      mode: (m) => Deno.writeTextFile(`${dir}/mode`, m),
      args: async () => (await Deno.readTextFile(`${dir}/args`)).trimEnd().split("\n"),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("global flags: --root, --log with --log-format json, --debug, --systemd-cgroup", async () => {
  await withFake(async (f) => {
    await f.mode("ok");
    const r = new Runc({
      binary: `${f.dir}/runc`,
      root: "/r",
      log: `${f.dir}/l.json`,
      debug: true,
      systemdCgroup: true,
      spawn: (c, o) => spawnChild(c, { ...o, env: { FAKE_DIR: f.dir } }),
    });
    await r.start("c1");
    assert.deepEqual(await f.args(), [
      "--root",
      "/r",
      "--debug",
      "--log",
      `${f.dir}/l.json`,
      "--log-format",
      "json",
      "--systemd-cgroup",
      "start",
      "c1",
    ]);
  });
});

Deno.test("checkpoint maps every CheckpointOptions field", async () => {
  await withFake(async (f) => {
    await f.mode("ok");
    const g = ["--root", `${f.dir}/root`, "--log", `${f.dir}/log.json`, "--log-format", "json"];
    await f.runc.checkpoint("c1", {
      exit: false,
      openTcp: true,
      externalUnixSockets: true,
      terminal: true,
      fileLocks: true,
      emptyNamespaces: ["network", "ipc"],
      cgroupsMode: "full",
      imagePath: "/img",
      workPath: "/work",
      parentPath: "../pre",
    });
    assert.deepEqual(await f.args(), [
      ...g,
      "checkpoint",
      "--image-path",
      "/img",
      "--work-path",
      "/work",
      "--parent-path",
      "../pre",
      "--tcp-established",
      "--ext-unix-sk",
      "--shell-job",
      "--file-locks",
      "--manage-cgroups-mode",
      "full",
      "--empty-ns",
      "network",
      "--empty-ns",
      "ipc",
      "--leave-running",
      "c1",
    ]);
    // exit: true stops the container (no --leave-running); unset/empty fields add nothing
    await f.runc.checkpoint("c1", { exit: true, imagePath: "/img", cgroupsMode: "", emptyNamespaces: null });
    assert.deepEqual(await f.args(), [...g, "checkpoint", "--image-path", "/img", "c1"]);
  });
});

Deno.test("restore: bundle, image/work paths, criu flags, --detach by default, pid file, console, pivot, subreaper", async () => {
  await withFake(async (f) => {
    await f.mode("ok");
    const child = await f.runc.restore("c1", {
      bundle: "/b",
      imagePath: "/img",
      workPath: "/work",
      pidFile: "/b/init.pid",
      consoleSocket: "/tmp/console.sock",
      noPivot: true,
      noSubreaper: true,
      openTcp: true,
      terminal: true,
      cgroupsMode: "soft",
      stdio: { stdin: "null", stdout: "null", stderr: "null" },
    });
    assert.equal((await child.status).code, 0);
    assert.deepEqual((await f.args()).slice(6), [
      "restore",
      "--bundle",
      "/b",
      "--image-path",
      "/img",
      "--work-path",
      "/work",
      "--tcp-established",
      "--shell-job",
      "--manage-cgroups-mode",
      "soft",
      "--detach",
      "--pid-file",
      "/b/init.pid",
      "--console-socket",
      "/tmp/console.sock",
      "--no-pivot",
      "--no-subreaper",
      "c1",
    ]);
  });
});

Deno.test("create: relative pid file and bundle are made absolute; no --detach (runc create rejects it)", async () => {
  await withFake(async (f) => {
    await f.mode("ok");
    await f.runc.create("c1", {
      bundle: "b",
      pidFile: "b/init.pid",
      noPivot: true,
      noNewKeyring: true,
      stdio: { stdin: "null", stdout: "null", stderr: "null" },
    });
    const cwd = Deno.cwd();
    assert.deepEqual((await f.args()).slice(6), [
      "create",
      "--bundle",
      `${cwd}/b`,
      "--pid-file",
      `${cwd}/b/init.pid`,
      "--no-pivot",
      "--no-new-keyring",
      "c1",
    ]);
  });
});

Deno.test("update sends the resources JSON on stdin to `update --resources -`", async () => {
  await withFake(async (f) => {
    await f.mode("stdin");
    const resources = { memory: { limit: 67108864 }, cpu: { shares: 512 } };
    await f.runc.update("c1", resources);
    assert.deepEqual((await f.args()).slice(6), ["update", "--resources", "-", "c1"]);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${f.dir}/stdin`)), resources);
  });
});

Deno.test("exec writes the process JSON to a private file in processDir and removes it afterwards", async () => {
  await withFake(async (f) => {
    await f.mode("exec");
    const spec = { args: ["sh", "-c", "echo hi"], cwd: "/", env: ["PATH=/bin"], terminal: false };
    await f.runc.exec("c1", spec, {
      pidFile: `${f.dir}/e1.pid`,
      processDir: f.dir,
      stdio: { stdin: "null", stdout: "null", stderr: "null" },
    });
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${f.dir}/process`)), spec);
    const used = (await Deno.readTextFile(`${f.dir}/process-path`)).trim();
    assert.ok(used.startsWith(`${f.dir}/`), used);
    await assert.rejects(Deno.stat(used), Deno.errors.NotFound, "process file removed");
    const args = (await f.args()).slice(6);
    assert.deepEqual([args[0], args[1], ...args.slice(3)], [
      "exec",
      "--process",
      "--detach",
      "--pid-file",
      `${f.dir}/e1.pid`,
      "c1",
    ]);
  });
});

Deno.test("errors: message from the part of log.json this call appended, else stderr; exit code kept", async () => {
  await withFake(async (f) => {
    // an old error already in the log must not be blamed on a later call
    await Deno.writeTextFile(`${f.dir}/log.json`, '{"level":"error","msg":"old failure","time":"t"}\n');
    await f.mode("fail-stderr");
    let err = await f.runc.start("c1").catch((e) => e);
    assert.ok(err instanceof RuncError);
    assert.equal(err.message, "only on stderr");
    assert.equal(err.code, 2);
    await f.mode("fail-log");
    err = await f.runc.kill("c1", 9).catch((e) => e);
    assert.ok(err instanceof RuncError);
    assert.equal(err.message, "boom from log");
    assert.equal(err.code, 1);
    assert.equal(err.command, "kill");
  });
});

Deno.test("errors: create with piped stdio falls back to runc's stderr and releases the pipes", async () => {
  await withFake(async (f) => {
    await f.mode("fail-stderr");
    const err = await f.runc.create("c1", {
      bundle: f.dir,
      pidFile: `${f.dir}/p`,
      stdio: { stdin: "piped", stdout: "piped", stderr: "piped" },
    }).catch((e) => e);
    assert.ok(err instanceof RuncError);
    assert.equal(err.message, "only on stderr");
  }, { log: false });
});

Deno.test("errors: runc killed by a signal, missing binary, bad id or signal", async () => {
  await withFake(async (f) => {
    await f.mode("die");
    const died = await f.runc.state("c1").catch((e) => e);
    assert.ok(died instanceof RuncError);
    assert.equal(died.message, "runc state failed: signal SIGKILL");
    assert.equal(died.signal, "SIGKILL");
    const missing = new Runc({ binary: `${f.dir}/nosuch-runc`, root: f.dir });
    const gone = await missing.delete("c1").catch((e) => e);
    assert.ok(gone instanceof RuncError);
    assert.match(gone.message, /^spawn .*nosuch-runc: /);
    await assert.rejects(f.runc.delete("--all"), TypeError);
    await assert.rejects(f.runc.kill("c1", 0), TypeError);
  });
});

Deno.test("features: null when runc has no features command; parsed JSON otherwise", async () => {
  await withFake(async (f) => {
    await f.mode("nohelp");
    assert.equal(await f.runc.features(), null);
    await f.mode("ok");
    await Deno.writeTextFile(`${f.dir}/stdout`, '{"ociVersionMin":"1.0.0","ociVersionMax":"1.1.0"}');
    assert.deepEqual(await f.runc.features(), { ociVersionMin: "1.0.0", ociVersionMax: "1.1.0" });
    await f.mode("fail-log");
    await assert.rejects(f.runc.features(), RuncError, "other failures are not hidden");
  });
});

Deno.test("version parses runc --version; every call goes through the injected spawn", async () => {
  await withFake(async (f) => {
    await f.mode("ok");
    await Deno.writeTextFile(`${f.dir}/stdout`, "runc version 1.1.5+ds1\ncommit: abc\nspec: 1.0.2-dev\ngo: go1.19\n");
    assert.deepEqual(await f.runc.version(), { runc: "1.1.5+ds1", commit: "abc", spec: "1.0.2-dev" });
    await Deno.writeTextFile(`${f.dir}/stdout`, "[1, 2]");
    assert.deepEqual(await f.runc.ps("c1"), [1, 2]);
    await Deno.writeTextFile(`${f.dir}/stdout`, "null");
    assert.deepEqual(await f.runc.ps("c1"), [], "runc prints null for a stopped container");
    assert.equal(f.spawned.length, 3);
    assert.deepEqual(f.spawned[0].slice(-1), ["--version"]);
  });
});

Deno.test("readPidFile retries until runc has written the pid, and fails on garbage", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/init.pid`;
    const later = setTimeout(() => Deno.writeTextFileSync(path, "4242"), 30);
    assert.equal(await readPidFile(path), 4242);
    clearTimeout(later);
    await Deno.writeTextFile(path, "");
    await assert.rejects(readPidFile(path, { attempts: 3, delayMs: 1 }), /invalid pid ""/);
    await Deno.writeTextFile(path, "12x");
    await assert.rejects(readPidFile(path, { attempts: 2, delayMs: 1 }), /invalid pid/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
