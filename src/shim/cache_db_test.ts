import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { checkpointCaches } from "./cache_db.ts";

/**
 * Writes `rows` rows into a WAL-mode database at `path` from a child process that exits without closing it, as Deno
 * leaves its cache databases: the rows stay in `<path>-wal`.
 */
async function leaveInLog(path: string, rows: number): Promise<void> {
  const code = `
    import { DatabaseSync } from "node:sqlite";
    const db = new DatabaseSync(${JSON.stringify(path)});
    db.exec("PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)");
    const put = db.prepare("INSERT INTO t (v) VALUES (?)");
    for (let i = 0; i < ${rows}; i++) put.run(new Uint8Array(1000).fill(i & 255));
    Deno.exit(0);
  `;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", "--ext=ts", code], stderr: "piped" }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

const size = (path: string) => Deno.stat(path).then((s) => s.size, () => -1);

Deno.test("checkpointCaches moves each log into its database, one directory level down, and keeps every row", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cache-db-" });
  try {
    await Deno.mkdir(`${dir}/server/deeper`, { recursive: true });
    await leaveInLog(`${dir}/v8_code_cache_v2`, 300);
    await leaveInLog(`${dir}/server/dep_analysis_cache_v2`, 50);
    await leaveInLog(`${dir}/server/deeper/other_v2`, 10);
    assert.ok(await size(`${dir}/v8_code_cache_v2-wal`) > 300_000, "the child left its rows in the log");
    assert.ok(await size(`${dir}/server/dep_analysis_cache_v2-wal`) > 50_000);

    const report = await checkpointCaches(dir);
    assert.deepEqual(report, { checkpointed: ["server/dep_analysis_cache_v2", "v8_code_cache_v2"], failed: [] });
    for (const db of ["v8_code_cache_v2", "server/dep_analysis_cache_v2"]) {
      assert.ok(await size(`${dir}/${db}-wal`) <= 0, `${db}'s log is gone or empty`);
    }
    assert.ok(await size(`${dir}/server/deeper/other_v2-wal`) > 0, "two levels down is left alone");

    const db = new DatabaseSync(`${dir}/v8_code_cache_v2`, { readOnly: true });
    try {
      const r = db.prepare("SELECT count(*) AS n, sum(length(v)) AS bytes FROM t").get() as {
        n: number;
        bytes: number;
      };
      assert.deepEqual({ ...r }, { n: 300, bytes: 300_000 });
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpointCaches reports a file that is not a database and leaves it as it was", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cache-db-" });
  try {
    const junk = new TextEncoder().encode("not a database. ".repeat(512));
    await Deno.writeFile(`${dir}/junk_v2`, junk);
    // (Its "log" is no log: SQLite discards such a file on any open, Deno's own too, so it is not looked at.)
    await Deno.writeFile(`${dir}/junk_v2-wal`, junk);
    await leaveInLog(`${dir}/good_v2`, 20);

    const report = await checkpointCaches(dir);
    assert.deepEqual(report.checkpointed, ["good_v2"]);
    assert.equal(report.failed.length, 1);
    assert.equal(report.failed[0].db, "junk_v2");
    assert.match(report.failed[0].error, /not a database/);
    assert.deepEqual(await Deno.readFile(`${dir}/junk_v2`), junk);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpointCaches reports a database a reader holds, and loses none of its log", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cache-db-" });
  const path = `${dir}/held_v2`;
  await leaveInLog(path, 100);
  // A reader in the middle of a transaction, in another process (a shim reading its code cache, held still).
  const reader = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { DatabaseSync } from "node:sqlite";
       const db = new DatabaseSync(${JSON.stringify(path)});
       db.exec("BEGIN");
       db.prepare("SELECT count(*) FROM t").get();
       console.log("reading");
       await new Promise(() => setInterval(() => {}, 1000));`,
    ],
    stdout: "piped",
  }).spawn();
  try {
    const lines = reader.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assert.match((await lines.read()).value ?? "", /reading/);
    lines.releaseLock();

    const report = await checkpointCaches(dir);
    assert.deepEqual(report.checkpointed, []);
    assert.equal(report.failed.length, 1);
    assert.match(report.failed[0].error, /in use/);
    assert.ok(await size(`${path}-wal`) > 100_000, "the log is still there");
  } finally {
    reader.kill("SIGKILL");
    await reader.status;
    await reader.stdout.cancel().catch(() => {});
  }
  try {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      assert.equal((db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n, 100);
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpointCaches of a directory that does not exist, or has no logs, does nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cache-db-" });
  try {
    assert.deepEqual(await checkpointCaches(`${dir}/missing`), { checkpointed: [], failed: [] });
    await Deno.writeTextFile(`${dir}/plain`, "x");
    assert.deepEqual(await checkpointCaches(dir), { checkpointed: [], failed: [] });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
