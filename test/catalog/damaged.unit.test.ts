// A damaged local catalog is an error naming the file, what is wrong and how to restore it; never a silent
// reset. First use creates the file only when it does not exist; every write keeps a rolling backup.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { backupPath, CatalogDamagedError, inspectFile, SqliteStore } from "../../src/catalog/sqlite-store.js";

function freshFile(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), "imgtool-damaged-")), "catalog.db");
}

/** A catalog with enough rows to span several pages, closed (checkpointed into the main file). */
async function filledCatalog(): Promise<string> {
  const file = freshFile();
  const s = new SqliteStore(file);
  for (let i = 0; i < 60; i++) await s.put(`/imgtool/p/r${i}/image`, "x".repeat(300), { dataType: "text" });
  s.close();
  return file;
}

function damaged(file: string, problem: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof CatalogDamagedError, `expected CatalogDamagedError, got ${String(e)}`);
    assert.equal(e.exitCode, 1);
    assert.ok(e.message.includes(file), e.message);
    assert.match(e.problem, problem);
    assert.ok(e.fix?.includes(`mv ${file} ${file}.damaged`), e.fix);
    return true;
  };
}

describe("damaged local catalog", () => {
  test("first use creates a valid catalog; reopening keeps its contents", async () => {
    const file = freshFile();
    const s = new SqliteStore(file);
    await s.put("/imgtool/p/a", "v1", { dataType: "text" });
    s.close();
    assert.equal(inspectFile(file), undefined);
    const again = new SqliteStore(file);
    assert.equal((await again.getMany(["/imgtool/p/a"])).found[0]?.value, "v1");
    again.close();
  });

  test("an empty file is refused, not reset", () => {
    const file = freshFile();
    writeFileSync(file, "");
    assert.throws(() => new SqliteStore(file), damaged(file, /empty \(0 bytes\)/));
    assert.equal(statSync(file).size, 0, "the damaged file was changed");
  });

  test("a truncated file is refused with its size and what its header records", async () => {
    const file = await filledCatalog();
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
    assert.throws(
      () => new SqliteStore(file),
      damaged(file, /truncated: \d+ bytes where its header records/),
    );
  });

  test("a file cut inside its header is refused", () => {
    const file = freshFile();
    writeFileSync(file, "SQLite format 3\0abc");
    assert.throws(() => new SqliteStore(file), damaged(file, /shorter than an SQLite header/));
  });

  test("a corrupt header is refused (no 'internal error')", async () => {
    const file = await filledCatalog();
    const bytes = readFileSync(file);
    bytes.write("garbage garbage!", 0, "latin1");
    writeFileSync(file, bytes);
    assert.throws(() => new SqliteStore(file), damaged(file, /not an SQLite database/));
  });

  test("damaged pages behind a valid header are found by quick_check", async () => {
    const file = await filledCatalog();
    const bytes = readFileSync(file);
    // Overwrite every page after the first (the schema page) with garbage; the header stays valid.
    bytes.fill(0xa5, 4096);
    writeFileSync(file, bytes);
    assert.throws(() => new SqliteStore(file), damaged(file, /quick_check|malformed|SQLite says/));
  });

  test("another SQLite database is not taken for the catalog", async () => {
    const file = freshFile();
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(file);
    db.exec("CREATE TABLE other (x)");
    db.close();
    assert.throws(() => new SqliteStore(file), damaged(file, /lacks the catalog's tables/));
  });

  test("each command's first write keeps the catalog as it was in catalog.db.bak; the fix restores it", async () => {
    const file = freshFile();
    const first = new SqliteStore(file);
    await first.put("/imgtool/p/a", "v1", { dataType: "text" });
    first.close();
    assert.ok(existsSync(backupPath(file)));
    // The next command: two writes, one backup from before both.
    const second = new SqliteStore(file);
    await second.put("/imgtool/p/a", "v2", { dataType: "text" });
    await second.label("/imgtool/p/a", 2, ["latest"]);
    second.close();
    const bak = new SqliteStore(backupPath(file));
    const got = await bak.getMany(["/imgtool/p/a", "/imgtool/p/a:latest"]);
    assert.equal(got.found[0]?.value, "v1", "the backup is from before the last command's writes");
    assert.deepEqual(got.missing, ["/imgtool/p/a:latest"]);
    bak.close();

    writeFileSync(file, "");
    let fix = "";
    assert.throws(
      () => new SqliteStore(file),
      (e: unknown) => {
        fix = (e as CatalogDamagedError).fix ?? "";
        return e instanceof CatalogDamagedError && fix.includes(`cp ${backupPath(file)} ${file}`);
      },
    );
    // Follow the fix as printed.
    rmSync(file);
    rmSync(`${file}-wal`, { force: true });
    rmSync(`${file}-shm`, { force: true });
    copyFileSync(backupPath(file), file);
    const restored = new SqliteStore(file);
    assert.equal((await restored.getMany(["/imgtool/p/a"])).found[0]?.value, "v1");
    restored.close();
  });

  test("without a backup the fix says so and how to start over", () => {
    const file = freshFile();
    writeFileSync(
      file,
      "not a database at all, just text that is long enough to have a header.......................",
    );
    assert.throws(
      () => new SqliteStore(file),
      (e: unknown) => e instanceof CatalogDamagedError && /No backup/.test(e.fix ?? ""),
    );
  });
});
