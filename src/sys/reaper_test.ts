import assert from "node:assert/strict";
import { readFileOrNull } from "./procfs.ts";
import { isChildSubreaper } from "./process.ts";
import { type Exit, exitStatus, type Reaper, reaper } from "./reaper.ts";

/** State letter and ppid of `pid` from /proc/<pid>/stat, or null when it is gone. */
function procState(pid: number): { state: string; ppid: number } | null {
  const stat = readFileOrNull(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0], ppid: Number(fields[1]) };
}

/** Our children that are zombies (nobody reaped them). */
function zombieChildren(): number[] {
  const pids = new Set<number>();
  for (const task of Deno.readDirSync(`/proc/${Deno.pid}/task`)) {
    const list = readFileOrNull(`/proc/${Deno.pid}/task/${task.name}/children`) ?? "";
    for (const p of list.trim().split(/\s+/)) if (p) pids.add(Number(p));
  }
  return [...pids].filter((p) => procState(p)?.state === "Z");
}

/**
 * Shell line that leaves an orphan behind: it blocks reading the aux shell's stdin (via fd 3, because background
 * jobs get /dev/null as stdin) until the test closes that pipe, so it surely outlives the shell that started it and
 * is reparented to us rather than reaped by that shell. Then it sleeps `delay` and runs `end`.
 */
function orphan(delay: string, end: string): string {
  return `sh -c 'read x; sleep ${delay}; ${end}' <&3 >/dev/null &`;
}

/** Runs `script` (orphan() lines) in a shell; resolves to its stdout after it exited, its stdin still open. */
async function runAux(r: Reaper, script: string): Promise<{ code: number; stdout: string; release(): Promise<void> }> {
  const child = r.spawn("sh", { args: ["-c", `exec 3<&0\n${script}`], stdin: "piped", stdout: "piped" });
  const [stdout, status] = await Promise.all([new Response(child.stdout).text(), child.status]);
  return { code: status.code, stdout, release: () => child.stdin.close() };
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

Deno.test("exitStatus decodes wait statuses", () => {
  assert.equal(exitStatus(42 << 8), 42);
  assert.equal(exitStatus(9), 137);
  assert.equal(exitStatus(15 | 0x80), 143); // core dumped flag
});

Deno.test("reaper: an orphan's exit is reported once, with its code or 128+signal", async () => {
  const r = reaper();
  const exits: Exit[] = [];
  const off = r.onExit((e) => exits.push(e));
  try {
    assert.ok(isChildSubreaper());
    const before = Date.now();
    const aux = await runAux(r, `${orphan("0.05", "exit 7")} echo $!\n${orphan("0.05", "kill -KILL $$")} echo $!`);
    assert.equal(aux.code, 0, "the Deno child's own status is intact");
    const [a, b] = aux.stdout.trim().split("\n").map(Number);
    assert.equal(procState(a)?.ppid, Deno.pid, "reparented to us, the subreaper");
    assert.equal(procState(b)?.ppid, Deno.pid, "reparented to us, the subreaper");
    assert.equal(exits.length, 0);
    await aux.release();
    await until(() => exits.length >= 2, 5000);
    assert.deepEqual(exits.map((e) => [e.pid, e.status]).sort(), [[a, 7], [b, 137]].sort());
    for (const e of exits) assert.ok(e.exitedAt.getTime() >= before && e.exitedAt.getTime() <= Date.now());
    assert.deepEqual(zombieChildren(), []);
  } finally {
    off();
    r.stop();
  }
  assert.equal(isChildSubreaper(), false, "stop() clears the subreaper flag for code running after the test");
});

Deno.test("reaper stress: concurrent Deno.Command statuses are never stolen, every orphan is reaped once", async () => {
  const r = reaper();
  const exits = new Map<number, number[]>();
  const off = r.onExit((e) => exits.set(e.pid, [...exits.get(e.pid) ?? [], e.status]));
  const expected = new Map<number, number>();
  let wrong = 0, denoChildren = 0;
  try {
    for (let round = 0; round < 3; round++) {
      // 10 shells that each orphan 15 processes: plain exits, SIGTERM and SIGKILL deaths.
      const aux = Array.from({ length: 10 }, (_, a) => {
        const lines: string[] = [];
        for (let j = 0; j < 15; j++) {
          const delay = `0.0${(a + j) % 6}`;
          const code = (round * 31 + a * 15 + j) % 120;
          if (j % 5 === 3) lines.push(`${orphan(delay, "kill -TERM $$")} echo $! 143`);
          else if (j % 5 === 4) lines.push(`${orphan(delay, "kill -KILL $$")} echo $! 137`);
          else lines.push(`${orphan(delay, `exit ${code}`)} echo $! ${code}`);
        }
        // Release the orphans as soon as their shell is gone, so they exit among the Deno children below.
        return runAux(r, lines.join("\n")).then(async (out) => {
          await out.release();
          return out;
        });
      });
      // Meanwhile, 150 concurrent Deno children with known exit codes.
      const kids = Array.from({ length: 150 }, (_, i) => {
        const code = (round * 7 + i) % 256;
        return { code, child: r.spawn("sh", { args: ["-c", `exit ${code}`] }) };
      });
      for (const { code, child } of kids) {
        denoChildren++;
        const st = await child.status.catch((e) => ({ code: -1, error: e }));
        if (st.code !== code) wrong++;
      }
      for (const pending of aux) {
        denoChildren++;
        const out = await pending.catch(() => null);
        if (out?.code !== 0) {
          wrong++;
          continue;
        }
        for (const line of out.stdout.trim().split("\n")) {
          const [pid, status] = line.split(" ").map(Number);
          expected.set(pid, status);
        }
      }
    }
    assert.equal(wrong, 0, `${wrong} of ${denoChildren} Deno.Command statuses were wrong or rejected`);
    assert.equal(expected.size, 3 * 10 * 15);
    await until(() => [...expected.keys()].every((pid) => exits.has(pid)), 5000);
    const missing = [...expected.keys()].filter((pid) => !exits.has(pid));
    assert.deepEqual(missing, [], "orphans never reported");
    for (const [pid, status] of expected) assert.deepEqual(exits.get(pid), [status], `orphan ${pid}`);
    assert.deepEqual([...exits.keys()].filter((pid) => !expected.has(pid)), [], "unexpected exits (stolen children?)");
    assert.deepEqual(zombieChildren(), []);
  } finally {
    off();
    r.stop();
  }
});

const idleScript = `
import { reaper } from ${JSON.stringify(new URL("./reaper.ts", import.meta.url).href)};
const r = reaper();
// Stay alive (a timer) until the orphan is reported, then nothing else should hold the process.
const keepAlive = setTimeout(() => console.log("timeout"), 4000);
r.onExit((e) => {
  console.log("exit", e.status);
  clearTimeout(keepAlive);
});
const sh = r.spawn("sh", { args: ["-c", "(exit 3) & wait; (sleep 0.05; exit 4) &"] });
await sh.status;
// No stop(): the SIGCHLD listener and the safety poll must not keep the process alive once nothing is left to reap.
`;

Deno.test("reaper: an idle reaper does not keep the process alive", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/idle.ts`, idleScript);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", `${dir}/idle.ts`],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    // A process kept alive by the reaper never exits by itself: the SIGKILL above then fails the exit code check.
    const out = await child.output();
    clearTimeout(timer);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(new TextDecoder().decode(out.stdout), "exit 4\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
