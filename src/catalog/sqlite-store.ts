/**
 * ParameterStore over an embedded SQLite database (local target): <state_dir>/catalog.db.
 * Same semantics as SSM (versions, moving labels, 100-version limit, label rules), so the catalog logic and
 * its tests are shared by both targets. Safe for several processes: WAL and immediate transactions.
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import path from "node:path";
import {
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

export class SqliteStore implements ParameterStore {
  readonly kind = "local" as const;
  readonly maxBatch = 100;
  private readonly db: Database.Database;

  constructor(file: string) {
    if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("busy_timeout = 10000");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS versions (
        name TEXT NOT NULL, version INTEGER NOT NULL, value TEXT NOT NULL,
        data_type TEXT NOT NULL, modified_at TEXT NOT NULL, PRIMARY KEY (name, version));
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, last_version INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS labels (
        name TEXT NOT NULL, label TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (name, label));
    `);
  }

  close(): void {
    this.db.close();
  }

  async put(name: string, value: string, opts: { dataType: DataType }): Promise<number> {
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

  async label(name: string, version: number, labels: string[]): Promise<{ invalid: string[] }> {
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
