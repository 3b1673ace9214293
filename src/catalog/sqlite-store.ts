/**
 * ParameterStore over an embedded SQLite database (local target): <state_dir>/catalog.db.
 * Same semantics as SSM (versions, moving labels, 100-version limit, label rules), so the catalog logic and
 * its tests are shared by both targets. Safe for several processes: WAL and immediate transactions.
 *
 * A damaged catalog is an error, never a silent reset: the file is created only when it does not exist
 * (atomically, so a concurrent first use never sees a half-made file), an existing file is checked (header,
 * size, SQLite's quick_check) before use, and each command's first write first copies the catalog to `catalog.db.bak`.
 */
import Database from "better-sqlite3";
import { closeSync, linkSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { FailureError } from "../errors.js";
import {
  ALREADY_EXISTS_ERROR,
  MAX_LABELS_PER_VERSION,
  MAX_VERSIONS,
  VERSION_LIMIT_ERROR,
  isValidLabel,
  splitSelector,
  type DataType,
  type ParameterStore,
  type StoredParameter,
  type StoredVersion,
} from "./store.js";

interface Row {
  name: string;
  version: number;
  value: string;
  data_type: string;
  modified_at: string;
}

function named(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL, version INTEGER NOT NULL, value TEXT NOT NULL,
    data_type TEXT NOT NULL, modified_at TEXT NOT NULL, PRIMARY KEY (name, version));
  CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, last_version INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS labels (
    name TEXT NOT NULL, label TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (name, label));
`;

/** SQLite's error codes for a file that is not (or no longer) a whole database. */
const DAMAGE_CODES = new Set(["SQLITE_CORRUPT", "SQLITE_NOTADB"]);

/** The rolling backup next to a catalog file, written before each write. */
export function backupPath(file: string): string {
  return `${file}.bak`;
}

/** The catalog's file is there but cannot be trusted: exit 1, its path, what is wrong, how to restore. */
export class CatalogDamagedError extends FailureError {
  readonly file: string;
  readonly problem: string;
  constructor(file: string, problem: string, cause?: unknown) {
    super(
      `The local catalog ${file} is damaged: ${problem}. imgtool will not use it (nor start an empty one).`,
      {
        fix: restoreHint(file),
        cause,
      },
    );
    this.file = file;
    this.problem = problem;
  }
}

function restoreHint(file: string): string {
  const bak = backupPath(file);
  const aside = `mv ${file} ${file}.damaged && rm -f ${file}-wal ${file}-shm`;
  let backup: string | undefined;
  try {
    if (inspectFile(bak) === undefined && statSync(bak).size > 0) backup = bak;
  } catch {
    backup = undefined;
  }
  return backup
    ? `Restore the backup from before the last command that wrote to it: ${aside} && cp ${backup} ${file}; then \`imgtool doctor\` checks it. Versions published after that backup must be pushed or baked again.`
    : `No backup (${bak}) to restore from. Move it aside to start an empty catalog: ${aside}; then push and bake again (\`imgtool doctor\` checks the catalog).`;
}

function readHeader(file: string): Buffer {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(100);
    const n = readSync(fd, buf, 0, 100, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * What is wrong with an existing catalog file judging by its size and SQLite header (undefined: nothing
 * seen; the file may still be damaged inside, which quick_check finds). Throws ENOENT when there is no file.
 */
export function inspectFile(file: string): string | undefined {
  const size = statSync(file).size;
  if (size === 0) return "the file is empty (0 bytes): it was truncated or its first write never finished";
  const h = readHeader(file);
  if (h.length < 100)
    return `the file is truncated: ${size} bytes, shorter than an SQLite header (100 bytes)`;
  if (h.subarray(0, 16).toString("latin1") !== "SQLite format 3\0")
    return 'the file is not an SQLite database (its header is not "SQLite format 3")';
  const raw = h.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  const pages = h.readUInt32BE(28);
  // The in-header page count is valid only when the change counter matches "version valid for".
  if (pages > 0 && h.readUInt32BE(24) === h.readUInt32BE(92) && size < pages * pageSize) {
    return `the file is truncated: ${size} bytes where its header records ${pages} pages of ${pageSize} bytes (${pages * pageSize} bytes)`;
  }
  return undefined;
}

function exists(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

/** Make a new, empty catalog at `file` unless one exists; atomic, so no process sees a half-made file. */
function createIfAbsent(file: string): void {
  if (exists(file)) return;
  const tmp = `${file}.new-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    const db = new Database(tmp);
    db.pragma("journal_mode = WAL");
    db.exec(SCHEMA);
    db.pragma("wal_checkpoint(TRUNCATE)");
    db.close();
    try {
      linkSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  } finally {
    for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`]) rmSync(f, { force: true });
  }
}

export class SqliteStore implements ParameterStore {
  readonly kind = "local" as const;
  readonly maxBatch = 100;
  private readonly db: Database.Database;
  private readonly file: string;

  constructor(file: string) {
    this.file = file;
    if (file !== ":memory:") {
      mkdirSync(path.dirname(file), { recursive: true });
      createIfAbsent(file);
      const problem = inspectFile(file);
      if (problem) throw new CatalogDamagedError(file, problem);
    }
    try {
      this.db = new Database(file, { fileMustExist: file !== ":memory:" });
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("busy_timeout = 10000");
      if (file === ":memory:") this.db.exec(SCHEMA);
      const check = this.db.pragma("quick_check", { simple: true });
      if (check !== "ok") throw new CatalogDamagedError(file, `SQLite's quick_check says: ${String(check)}`);
      const tables = this.db
        .prepare(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('versions', 'counters', 'labels')",
        )
        .all();
      if (tables.length !== 3)
        throw new CatalogDamagedError(file, "it is an SQLite database but lacks the catalog's tables");
    } catch (e) {
      if (e instanceof CatalogDamagedError) throw e;
      if (DAMAGE_CODES.has((e as { code?: string }).code ?? ""))
        throw new CatalogDamagedError(file, `SQLite says "${(e as Error).message}"`, e);
      throw e;
    }
  }

  close(): void {
    this.db.close();
  }

  private backedUp = false;

  /**
   * Before this process's first write, copy the catalog as it is to catalog.db.bak (atomically). One backup
   * per command rather than per write: a publish is several writes, and a restore must never bring back half
   * of one.
   */
  private backup(): void {
    if (this.file === ":memory:" || this.backedUp) return;
    this.backedUp = true;
    const tmp = `${backupPath(this.file)}.${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      this.db.prepare("VACUUM INTO ?").run(tmp);
      renameSync(tmp, backupPath(this.file));
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  async put(name: string, value: string, opts: { dataType: DataType }): Promise<number> {
    this.backup();
    const tx = this.db.transaction(() => {
      const kept = this.db
        .prepare("SELECT version FROM versions WHERE name = ? ORDER BY version")
        .all(name) as { version: number }[];
      if (kept.length >= MAX_VERSIONS) {
        const oldest = kept[0]!.version;
        const labelled = this.db
          .prepare("SELECT 1 FROM labels WHERE name = ? AND version = ?")
          .get(name, oldest);
        if (labelled) {
          throw named(
            VERSION_LIMIT_ERROR,
            `${name} has ${MAX_VERSIONS} versions and its oldest (${oldest}) carries a label`,
          );
        }
        this.db.prepare("DELETE FROM versions WHERE name = ? AND version = ?").run(name, oldest);
      }
      const last =
        (
          this.db.prepare("SELECT last_version FROM counters WHERE name = ?").get(name) as
            { last_version: number } | undefined
        )?.last_version ?? 0;
      const version = last + 1;
      this.db
        .prepare(
          "INSERT INTO counters (name, last_version) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET last_version = ?",
        )
        .run(name, version, version);
      this.db
        .prepare("INSERT INTO versions (name, version, value, data_type, modified_at) VALUES (?, ?, ?, ?, ?)")
        .run(name, version, value, opts.dataType, new Date().toISOString());
      return version;
    });
    return tx.immediate();
  }

  async create(name: string, value: string): Promise<void> {
    this.backup();
    this.db
      .transaction(() => {
        if (this.db.prepare("SELECT 1 FROM versions WHERE name = ?").get(name))
          throw named(ALREADY_EXISTS_ERROR, `${name} already exists`);
        this.db
          .prepare(
            "INSERT INTO counters (name, last_version) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET last_version = 1",
          )
          .run(name);
        this.db
          .prepare(
            "INSERT INTO versions (name, version, value, data_type, modified_at) VALUES (?, 1, ?, ?, ?)",
          )
          .run(name, value, "text", new Date().toISOString());
      })
      .immediate();
  }

  async label(name: string, version: number, labels: string[]): Promise<{ invalid: string[] }> {
    this.backup();
    const tx = this.db.transaction(() => {
      const exists = this.db
        .prepare("SELECT 1 FROM versions WHERE name = ? AND version = ?")
        .get(name, version);
      if (!exists) throw named("ParameterVersionNotFound", `${name} has no version ${version}`);
      const invalid = labels.filter((l) => !isValidLabel(l));
      const valid = labels.filter((l) => isValidLabel(l));
      const current = (
        this.db.prepare("SELECT label FROM labels WHERE name = ? AND version = ?").all(name, version) as {
          label: string;
        }[]
      ).map((r) => r.label);
      if (new Set([...current, ...valid]).size > MAX_LABELS_PER_VERSION) {
        throw named(
          "ParameterVersionLabelLimitExceeded",
          `${name}:${version} would carry more than 10 labels`,
        );
      }
      const upsert = this.db.prepare(
        "INSERT INTO labels (name, label, version) VALUES (?, ?, ?) ON CONFLICT(name, label) DO UPDATE SET version = ?",
      );
      for (const l of valid) upsert.run(name, l, version, version);
      return { invalid };
    });
    return tx.immediate();
  }

  async unlabel(name: string, version: number, labels: string[]): Promise<void> {
    this.backup();
    const del = this.db.prepare("DELETE FROM labels WHERE name = ? AND version = ? AND label = ?");
    this.db
      .transaction(() => {
        for (const l of labels) del.run(name, version, l);
      })
      .immediate();
  }

  private toParam(r: Row, selector?: string): StoredParameter {
    return {
      name: r.name,
      ...(selector !== undefined ? { selector } : {}),
      value: r.value,
      version: r.version,
      dataType: r.data_type as DataType,
      modifiedAt: new Date(r.modified_at),
    };
  }

  async getMany(selectors: string[]): Promise<{ found: StoredParameter[]; missing: string[] }> {
    const found: StoredParameter[] = [];
    const missing: string[] = [];
    const read = this.db.transaction(() => {
      for (const s of selectors) {
        const { name, selector } = splitSelector(s);
        let row: Row | undefined;
        if (selector === undefined) {
          row = this.db
            .prepare("SELECT * FROM versions WHERE name = ? ORDER BY version DESC LIMIT 1")
            .get(name) as Row | undefined;
        } else if (/^\d+$/.test(selector)) {
          row = this.db
            .prepare("SELECT * FROM versions WHERE name = ? AND version = ?")
            .get(name, Number(selector)) as Row | undefined;
        } else {
          row = this.db
            .prepare(
              "SELECT v.* FROM versions v JOIN labels l ON l.name = v.name AND l.version = v.version WHERE v.name = ? AND l.label = ?",
            )
            .get(name, selector) as Row | undefined;
        }
        if (row) found.push(this.toParam(row, selector));
        else missing.push(s);
      }
    });
    read();
    return { found, missing };
  }

  async history(name: string): Promise<StoredVersion[]> {
    const rows = this.db.prepare("SELECT * FROM versions WHERE name = ? ORDER BY version").all(name) as Row[];
    const labels = this.db.prepare("SELECT label, version FROM labels WHERE name = ?").all(name) as {
      label: string;
      version: number;
    }[];
    return rows.map((r) => ({
      ...this.toParam(r),
      labels: labels.filter((l) => l.version === r.version).map((l) => l.label),
    }));
  }

  async list(prefix: string): Promise<string[]> {
    const base = prefix.endsWith("/") ? prefix : `${prefix}/`;
    const rows = this.db
      .prepare("SELECT DISTINCT name FROM versions WHERE substr(name, 1, ?) = ? ORDER BY name")
      .all(base.length, base) as { name: string }[];
    return rows.map((r) => r.name);
  }

  async delete(name: string): Promise<void> {
    this.backup();
    const r = this.db
      .transaction(() => {
        const n = this.db.prepare("DELETE FROM versions WHERE name = ?").run(name).changes;
        this.db.prepare("DELETE FROM labels WHERE name = ?").run(name);
        this.db.prepare("DELETE FROM counters WHERE name = ?").run(name);
        return n;
      })
      .immediate();
    if (r === 0) throw named("ParameterNotFound", `${name} does not exist`);
  }
}
