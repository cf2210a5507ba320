/**
 * The launcher's cache directory (`DENO_DIR`, launcher.ts) after a build or an install has warmed it: Deno's SQLite
 * databases there (V8's code cache, the module-analysis caches) are left with every entry in their write-ahead log.
 *
 * Deno opens them in WAL mode and never closes them before its process exits, so SQLite never checkpoints them: the
 * warm-up's entries stay in `<db>-wal` for good (~560 KB of logs after a build). Each process that opens such a
 * database while no other has it open (every `start`, every `delete`, every new server) first rebuilds the log's index
 * by reading the whole log, then reads its entries out of the log: a `delete -v` made ~570 `pread`s, ~190 with the logs
 * checkpointed. What that costs is small, and was measured as such (bench/analysis.md, session 23: 200 interleaved
 * pairs, `-v delete` 0.994×, `-v start` 0.993×, a server's boot 0.996×); it is done because it is free once the
 * warm-up has run, and nothing writes there afterwards but what the first container's `start` and `delete` compile.
 *
 * `node:sqlite` is imported only here, and only when a build or an install checkpoints: neither `start` nor `delete`
 * nor the server loads this module.
 *
 * @module
 */

/** What {@linkcode checkpointCaches} did. */
export interface CheckpointReport {
  /** Databases whose log is now empty (path relative to the directory given). */
  checkpointed: string[];
  /** Databases it could not checkpoint, with why (in use by a running shim, not a database…). */
  failed: { db: string; error: string }[];
}

/**
 * Checkpoints every SQLite database under `dir` (one level of subdirectories too: the server's own `DENO_DIR` is
 * `<dir>/server`) that has a write-ahead log, truncating the log. SQLite's own locking makes this safe while a shim
 * has the database open; it then copies what it can and reports the database as in use. Best effort: a database it
 * cannot checkpoint is reported, and its file left as it was.
 */
export async function checkpointCaches(dir: string): Promise<CheckpointReport> {
  const report: CheckpointReport = { checkpointed: [], failed: [] };
  const dbs = await walDatabases(dir);
  if (dbs.length === 0) return report;
  const { DatabaseSync } = await import("node:sqlite");
  for (const db of dbs) {
    try {
      const conn = new DatabaseSync(`${dir}/${db}`);
      try {
        const r = conn.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy?: number } | undefined;
        if (r?.busy) throw new Error("in use: the log was only partly copied");
      } finally {
        conn.close(); // the last connection to close removes the (now empty) log and its index
      }
      report.checkpointed.push(db);
    } catch (e) {
      report.failed.push({ db, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return report;
}

/** Databases under `dir` (and its direct subdirectories) that have a `-wal` file beside them, relative to `dir`. */
async function walDatabases(dir: string): Promise<string[]> {
  const out: string[] = [];
  const scan = async (rel: string, depth: number) => {
    const names: { name: string; isFile: boolean; isDirectory: boolean }[] = [];
    try {
      for await (const e of Deno.readDir(rel ? `${dir}/${rel}` : dir)) names.push(e);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    const files = new Set(names.filter((e) => e.isFile).map((e) => e.name));
    for (const e of names.sort((a, b) => a.name.localeCompare(b.name))) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isFile && files.has(`${e.name}-wal`)) out.push(path);
      else if (e.isDirectory && depth > 0) await scan(path, depth - 1);
    }
  };
  await scan("", 1);
  return out;
}
