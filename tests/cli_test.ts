/**
 * What a person sees from the built binary: help, the no-argument message, unknown flags and commands, `check`'s
 * naming of what it looked at, and the process name in ps/top/pgrep. No containers: no lab, no lock needed.
 */
import assert from "node:assert/strict";
import { SHIM } from "./harness/shim.ts";
import { waitFor } from "./lab/proc.ts";

async function run(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(SHIM, { args, env, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
}

for (const args of [["-h"], ["--help"], ["-help"], ["help"], ["-namespace", "x", "--help", "start"]]) {
  Deno.test(`${args.join(" ")} prints the usage on stdout and exits 0`, async () => {
    const r = await run(args);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, "");
    assert.match(r.out, /^containerd-shim-deno-v2: a containerd runtime v2 shim for runc/);
    // the subcommands, who they are for, their flags, and where the config comes from
    for (const want of [/^ {2}start {4}/m, /^ {2}delete {3}/m, /^Commands containerd runs/m, /^Commands for people/m]) {
      assert.match(r.out, want);
    }
    for (const cmd of ["install", "check", "-v", "-info"]) assert.match(r.out, new RegExp(`^  ${cmd} +\\S`, "m"));
    for (const flag of ["--prefix DIR", "--merge-config FILE", "-address SOCK", "-runc-binary PATH", "-namespace NS"]) {
      assert.ok(r.out.includes(flag), `usage names ${flag}`);
    }
    assert.match(r.out, /\$CONTAINERD_SHIM_DENO_CONFIG, \/etc\/containerd\/containerd-shim-deno\.json/);
  });
}

Deno.test("no arguments: says the server mode is started by containerd and points to --help", async () => {
  const r = await run([]);
  assert.equal(r.code, 1);
  assert.equal(r.out, "");
  assert.match(r.err, /no command given/);
  assert.match(r.err, /containerd starts/);
  assert.match(r.err, /Run 'containerd-shim-deno-v2 --help' for usage\.\n$/);
});

Deno.test("flags without a command or -socket get the same message, not a server that cannot start", async () => {
  const r = await run(["-namespace", "default", "-id", "x"]);
  assert.equal(r.code, 1);
  assert.match(r.err, /no command given[\s\S]*--help/);
});

Deno.test("an unknown flag keeps Go's wording, adds the usage hint, exits 2 as Go's flag package does", async () => {
  const r = await run(["-x", "start"]);
  assert.equal(r.code, 2);
  assert.equal(
    r.err,
    "containerd-shim-deno-v2: flag provided but not defined: -x\nRun 'containerd-shim-deno-v2 --help' for usage.\n",
  );
  const sub = await run(["install", "--frob"]);
  assert.equal(sub.code, 2);
  assert.match(sub.err, /flag provided but not defined: -frob\nRun 'containerd-shim-deno-v2 --help' for usage\.\n$/);
});

Deno.test("an unknown command names the known ones and the usage hint", async () => {
  const r = await run(["frob"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown command "frob" \(expected start, delete, install, check or help\)\nRun '.*--help'/);
});

Deno.test("check names the socket it tried and the config file it read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shim-cli-" });
  try {
    const sock = `${dir}/none.sock`;
    const missing = await run(["check", "-address", sock], { CONTAINERD_SHIM_DENO_CONFIG: `${dir}/nope.json` });
    assert.match(missing.out, new RegExp(`^warn\\s+containerd: tried ${sock}: `, "m"));
    assert.match(
      missing.out,
      new RegExp(`^warn\\s+shim config: CONTAINERD_SHIM_DENO_CONFIG names ${dir}/nope.json, which does not exist`, "m"),
    );
    assert.match(missing.out, new RegExp(`^ok\\s+shim config: no file at ${dir}/nope.json \\(named by`, "m"));

    assert.match(missing.out, /^ok\s+shim config: .*defaults grouping=pod .* spareSeconds=10 execDeleteEvents=false$/m);

    await Deno.writeTextFile(`${dir}/shim.json`, JSON.stringify({ grouping: "node", spareSeconds: 0 }));
    const present = await run(["check", "-address", sock], { CONTAINERD_SHIM_DENO_CONFIG: `${dir}/shim.json` });
    assert.match(
      present.out,
      new RegExp(
        `^ok\\s+shim config: read ${dir}/shim.json .*grouping=node.* spareSeconds=0 execDeleteEvents=false$`,
        "m",
      ),
    );
    assert.doesNotMatch(present.out, /does not exist/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// The bundle's launcher runs `start` and `delete` from bundles of their own (src/shim/bundle_layout.ts); those hand
// any other command line to main.js, so a command line that merely ends in `start` or `delete` runs as it always did.
for (
  const [args, code, out, err] of [
    [["-v", "delete"], 0, /^containerd-shim-deno-v2:\n {2}Version: /, /^$/],
    [["-v", "start"], 0, /^containerd-shim-deno-v2:\n {2}Version: /, /^$/],
    [["-id", "start"], 1, /^$/, /no command given/],
    [["-namespace", "x", "-id", "delete"], 1, /^$/, /no command given/],
    [
      ["-x", "delete"],
      2,
      /^$/,
      /^containerd-shim-deno-v2: flag provided but not defined: -x\nRun '.*--help' for usage\.\n$/,
    ],
    [["-namespace", "x", "delete"], 1, /^$/, /^containerd-shim-deno-v2: shim id cannot be empty\n$/],
    [["-id", "x", "start"], 1, /^$/, /^containerd-shim-deno-v2: shim namespace cannot be empty/],
  ] as [string[], number, RegExp, RegExp][]
) {
  Deno.test(`${args.join(" ")}: answered as main.ts answers it (exit ${code})`, async () => {
    const r = await run(args);
    assert.equal(r.code, code, r.err);
    assert.match(r.out, out);
    assert.match(r.err, err);
  });
}

Deno.test("the bundle's start runs from its own one-file bundle", async () => {
  const info = JSON.parse(await Deno.readTextFile(`${SHIM.slice(0, SHIM.lastIndexOf("/"))}/BUILD-INFO.json`));
  if (info.flavour !== "bundle") return; // a compiled binary has one entry
  const child = new Deno.Command(SHIM, {
    args: ["-namespace", "cli", "-address", "/nonexistent/containerd.sock", "-id", "entry", "start"],
    stdin: "piped", // start waits for its options there
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    let argv: string[] = [];
    const ran = await waitFor(async () => {
      const raw = await Deno.readTextFile(`/proc/${child.pid}/cmdline`).catch(() => "");
      argv = raw.split("\0");
      return argv.some((a) => a.endsWith("/js/start/start.js"));
    }, 15_000);
    assert.ok(ran, `start's command line: ${argv.join(" ")}`);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

Deno.test("start shows as containerd-shim in ps/pgrep (comm) while it runs", async () => {
  // start reads its options from stdin first: while stdin stays open it waits there, already named.
  const child = new Deno.Command(SHIM, {
    args: ["-namespace", "cli", "-address", "/nonexistent/containerd.sock", "-id", "comm", "start"],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    // The bundle's launcher is a shell script whose own comm is its name cut to 15 bytes; wait for the exec.
    let comm = "", exe = "";
    const named = await waitFor(async () => {
      exe = await Deno.readLink(`/proc/${child.pid}/exe`).catch(() => "");
      comm = (await Deno.readTextFile(`/proc/${child.pid}/comm`).catch(() => "")).trim();
      return !/\/(ba|da)?sh$/.test(exe) && comm === "containerd-shim";
    }, 15_000);
    assert.ok(named, `comm of start (${exe}) is ${JSON.stringify(comm)}`);
    const pgrep = await new Deno.Command("pgrep", { args: ["-x", "containerd-shim"], stdout: "piped" }).output();
    const found = new TextDecoder().decode(pgrep.stdout);
    assert.ok(found.split("\n").includes(String(child.pid)), `pgrep -x containerd-shim: ${found}, pid ${child.pid}`);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});
