import assert from "node:assert/strict";
import { containerdVersion, parseContainerdVersion, parseVersionString } from "./containerd_version.ts";
import { chooseAnswer } from "./start.ts";
import { parseConfig } from "./config.ts";

Deno.test("containerd --version outputs of the builds we meet", () => {
  const cases: [string, { major: number; minor: number } | undefined][] = [
    ["containerd github.com/containerd/containerd/v2 2.1.9+unknown ", { major: 2, minor: 1 }],
    ["containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3", { major: 1, minor: 6 }],
    ["containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376", {
      major: 2,
      minor: 1,
    }],
    ["containerd containerd.io 1.7.24 88bf19b2105c8b17560993bee28a01ddc2f97182", { major: 1, minor: 7 }],
    ["deno 2.9.6 (stable, release, x86_64-unknown-linux-gnu)", undefined],
    ["", undefined],
  ];
  for (const [out, want] of cases) assert.deepEqual(parseContainerdVersion(out), want, out);
  assert.deepEqual(parseVersionString("v2.3.0"), { major: 2, minor: 3 });
});

Deno.test("the answer by containerd: 2.x gets version 3, 1.7 and 1.6 the plain address, overrides win", async () => {
  const v = (major: number, minor: number) => () => Promise.resolve({ major, minor });
  const never = () => Promise.reject(new Error("must not ask"));
  const auto = parseConfig({}, "t");
  const grpc = { grpcAddress: "/run/containerd/containerd.sock" };
  assert.deepEqual(await chooseAnswer(auto, {}, grpc, v(2, 1)), {
    format: "json",
    version: 3,
    containerd: { major: 2, minor: 1 },
  });
  assert.deepEqual(await chooseAnswer(auto, {}, grpc, v(1, 7)), {
    format: "plain",
    version: 2,
    containerd: { major: 1, minor: 7 },
  });
  assert.deepEqual(await chooseAnswer(auto, {}, grpc, () => Promise.resolve(undefined)), {
    format: "plain",
    version: 2,
    containerd: undefined,
  });
  // 1.6 sets no GRPC_ADDRESS: known without asking
  assert.deepEqual(await chooseAnswer(auto, {}, {}, never), { format: "plain", version: 2 });
  assert.deepEqual(await chooseAnswer(parseConfig({ taskApiVersion: 2 }, "t"), {}, grpc, never), {
    format: "plain",
    version: 2,
  });
  assert.deepEqual(await chooseAnswer(parseConfig({ taskApiVersion: 3 }, "t"), {}, {}, never), {
    format: "json",
    version: 3,
  });
  const bootstrap = { bootstrap: {} as never };
  assert.equal((await chooseAnswer(auto, bootstrap, grpc, never)).version, 3);
  assert.equal((await chooseAnswer(parseConfig({ taskApiVersion: 2 }, "t"), bootstrap, grpc, never)).version, 2);
});

Deno.test("containerd's version is asked once per binary and then read from the cache", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const count = `${dir}/count`;
    const fake = `${dir}/containerd`;
    await Deno.writeTextFile(
      fake,
      `#!/bin/sh\necho x >> ${count}\necho "containerd github.com/containerd/containerd/v2 v2.1.9 abc"\n`,
    );
    await Deno.chmod(fake, 0o755);
    const notContainerd = `${dir}/deno`;
    await Deno.writeTextFile(notContainerd, `#!/bin/sh\necho "deno 2.9.6"\n`);
    await Deno.chmod(notContainerd, 0o755);
    Deno.env.set("CONTAINERD_SHIM_DENO_STATE_DIR", `${dir}/state`);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await containerdVersion(undefined, [notContainerd, fake]), { major: 2, minor: 1 });
    }
    assert.equal((await Deno.readTextFile(count)).trim().split("\n").length, 1);
    assert.equal(await containerdVersion(undefined, [notContainerd, `${dir}/missing`]), undefined);
    // The cache keeps each line parsed (null: not containerd), and an entry without it is parsed when read.
    const file = `${dir}/state/containerd-versions.json`;
    const cache = JSON.parse(await Deno.readTextFile(file));
    const parsed = Object.values(cache).map((e) => (e as { parsed: unknown }).parsed);
    assert.deepEqual(parsed.sort(), [{ major: 2, minor: 1 }, null].sort());
    for (const e of Object.values(cache) as { parsed?: unknown; version: string }[]) {
      delete e.parsed;
      e.version = e.version.replace("v2.1.9", "v2.2.0");
    }
    await Deno.writeTextFile(file, JSON.stringify(cache));
    assert.deepEqual(await containerdVersion(undefined, [notContainerd, fake]), { major: 2, minor: 2 });
    assert.equal((await Deno.readTextFile(count)).trim().split("\n").length, 1, "read from the old entry, not asked");
    const rewritten = JSON.parse(await Deno.readTextFile(file));
    assert.ok(Object.values(rewritten).every((e) => (e as { parsed?: unknown }).parsed !== undefined));
  } finally {
    Deno.env.delete("CONTAINERD_SHIM_DENO_STATE_DIR");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("for the same parent and GRPC_ADDRESS the answer is read without looking at any binary", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const count = `${dir}/count`;
    const fake = `${dir}/containerd`;
    const script = (v: string) =>
      `#!/bin/sh\necho x >> ${count}\necho "containerd github.com/containerd/containerd ${v} abc"\n`;
    await Deno.writeTextFile(fake, script("v1.7.24"));
    await Deno.chmod(fake, 0o755);
    Deno.env.set("CONTAINERD_SHIM_DENO_STATE_DIR", `${dir}/state`);
    const addr = `${dir}/containerd.sock`;
    assert.deepEqual(await containerdVersion(undefined, [fake], addr), { major: 1, minor: 7 });
    // The binary changes (a new identity); this parent and address still read the first answer, from the cache.
    await Deno.writeTextFile(fake, script("v2.1.9") + "# longer\n");
    assert.deepEqual(await containerdVersion(undefined, [fake], addr), { major: 1, minor: 7 });
    assert.equal((await Deno.readTextFile(count)).trim().split("\n").length, 1);
    // Another address (another containerd), or another binary to ask, looks at the binary again.
    assert.deepEqual(await containerdVersion(undefined, [fake], `${addr}.other`), { major: 2, minor: 1 });
    const copy = `${dir}/containerd-copy`;
    await Deno.copyFile(fake, copy);
    assert.deepEqual(await containerdVersion(undefined, [copy], addr), { major: 2, minor: 1 });
    // "Not containerd" is kept for the pair too; a failed probe is not.
    assert.equal(await containerdVersion(undefined, [`${dir}/missing`], `${addr}.none`), undefined);
    const cache = JSON.parse(await Deno.readTextFile(`${dir}/state/containerd-versions.json`));
    assert.equal(cache[`parent:${Deno.ppid}:${addr}.none:${dir}/missing`]?.parsed, null);
    await Deno.writeTextFile(`${dir}/failing`, "#!/bin/sh\nexit 1\n");
    await Deno.chmod(`${dir}/failing`, 0o755);
    assert.equal(await containerdVersion(undefined, [`${dir}/failing`], `${addr}.failing`), undefined);
    const after = JSON.parse(await Deno.readTextFile(`${dir}/state/containerd-versions.json`));
    assert.equal(Object.keys(after).some((k) => k.includes(`${addr}.failing`)), false);
  } finally {
    Deno.env.delete("CONTAINERD_SHIM_DENO_STATE_DIR");
    await Deno.remove(dir, { recursive: true });
  }
});
