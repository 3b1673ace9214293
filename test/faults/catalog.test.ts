// Fault: the local catalog is damaged (emptied, truncated, corrupt). Every command that needs it exits 1
// naming the file, what is wrong and how to restore it; nothing resets it; doctor finds it; the printed fix
// works.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { runCli } from "../support/cli.js";
import { Catalog, versionName } from "../../src/catalog/catalog.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { recordingSink } from "../../src/events.js";

/** A project whose catalog has published two image versions (each by its own command, as two runs would). */
async function publishedProject(): Promise<{ config: string; db: string; v1: string; v2: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-fault-catalog-"));
  const state = path.join(dir, "state");
  const config = path.join(dir, "imgtool.config.yaml");
  writeFileSync(config, `pipeline: fault\nlocal:\n  state_dir: ${state}\n`);
  const db = path.join(state, "catalog.db");
  const versions: string[] = [];
  for (const n of [1, 2]) {
    const store = new SqliteStore(db);
    const catalog = new Catalog({ store, prefix: "/imgtool/fault", events: recordingSink() });
    const hash = `${n}`.repeat(8);
    const version = versionName(new Date(Date.UTC(2026, 11, 1, 0, 0, n)), hash);
    versions.push(version);
    await catalog.publish(
      { role: "task-runner", kind: "image" },
      `127.0.0.1:5000/fault/task-runner@sha256:${`${n}`.repeat(64)}`,
      { version, inputsHash: hash, builtAt: "2026-12-01T00:00:00Z" },
    );
    store.close();
  }
  return { config, db, v1: versions[0]!, v2: versions[1]! };
}

const damages: { name: string; damage: (db: string) => void; problem: RegExp }[] = [
  { name: "emptied", damage: (db) => writeFileSync(db, ""), problem: /empty \(0 bytes\)/ },
  {
    name: "truncated",
    damage: (db) => {
      const b = readFileSync(db);
      writeFileSync(db, b.subarray(0, Math.max(4096, Math.floor(b.length / 2))));
    },
    problem: /truncated|malformed|quick_check/,
  },
  {
    name: "corrupt header",
    damage: (db) => {
      const b = readFileSync(db);
      b.write("this is no db!!!", 0, "latin1");
      writeFileSync(db, b);
    },
    problem: /not an SQLite database/,
  },
];

describe("fault: damaged local catalog", () => {
  for (const d of damages) {
    test(`${d.name}: status exits 1 with path, cause and fix; doctor names it; the fix restores the catalog`, async () => {
      const p = await publishedProject();
      d.damage(p.db);
      const size = statSync(p.db).size;

      const r = await runCli(["status", "--config", p.config]);
      assert.equal(r.code, 1, r.stderr);
      assert.ok(r.stderr.includes(`The local catalog ${p.db} is damaged`), r.stderr);
      assert.match(r.stderr, d.problem);
      assert.ok(
        r.stderr.includes(`fix: Restore the backup from before the last command that wrote to it`),
        r.stderr,
      );
      assert.doesNotMatch(r.stderr, /internal error|This is a bug|^\s+at /m);
      assert.equal(statSync(p.db).size, size, "the damaged catalog was rewritten");

      const j = await runCli(["status", "--json", "--config", p.config]);
      assert.equal(j.code, 1);
      const doc = JSON.parse(j.stdout) as { error: { message: string; fix: string } };
      assert.ok(doc.error.message.includes(p.db));

      const doc2 = await runCli(["doctor", "--json", "--config", p.config]);
      const checks = (
        JSON.parse(doc2.stdout) as { checks: { part: string; ok: boolean; fix: string | null }[] }
      ).checks;
      const cat = checks.find((c) => c.part === "catalog");
      assert.ok(cat && !cat.ok, doc2.stdout);
      assert.ok(cat.fix?.includes(`${p.db}.bak`));

      // Follow the printed fix, word for word, in a shell.
      const fix = /Restore the backup from before the last command that wrote to it: (.+?); then/.exec(
        r.stderr,
      )?.[1];
      assert.ok(fix, r.stderr);
      execFileSync("bash", ["-c", fix]);
      const after = await runCli(["status", "--json", "--config", p.config]);
      assert.equal(after.code, 0, after.stderr);
      // The backup is from before the last command's writes: it holds the first version, not the second.
      assert.ok(after.stdout.includes(p.v1), after.stdout);
      assert.ok(!after.stdout.includes(p.v2), after.stdout);
    });
  }

  test("first use creates the catalog only when it does not exist", async () => {
    const p = await publishedProject();
    const r = await runCli(["status", "--config", p.config]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(p.v2));
  });
});
