// `imgtool rollback --channel stable|latest` through the compiled CLI on the local catalog: a whole release
// moves in one write, and a corrupt release record is exit 1 with the parameter and the fix, no stack trace.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Catalog, versionName } from "../../src/catalog/catalog.js";
import { Releases, recordRelease } from "../../src/catalog/release.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { runCli } from "../support/cli.js";

function project() {
  const dir = mkdtempSync(path.join(tmpdir(), "imgtool-rollback-"));
  const state = path.join(dir, "state");
  const config = path.join(dir, "imgtool.config.yaml");
  writeFileSync(config, `local:\n  state_dir: ${state}\n`);
  return { config, db: path.join(state, "catalog.db") };
}

const noStack = (s: string) =>
  assert.doesNotMatch(s, /^\s+at .+\(.*:\d+:\d+\)$/m, `unexpected stack trace:\n${s}`);

describe("cli: rollback of a release channel (local catalog)", () => {
  test("rollback --channel stable moves stable back one release; latest stays", async () => {
    const p = project();
    const store = new SqliteStore(p.db);
    const cat = new Catalog({ store, prefix: "/imgtool/bench" });
    const releases = new Releases(cat);
    const key = { role: "orchestrator", kind: "image" as const };
    const ids: string[] = [];
    for (const n of [1, 2]) {
      const hash = `${n}`.repeat(12);
      await cat.publish(key, `localhost:5000/o@sha256:${`${n}`.repeat(64)}`, {
        version: versionName(new Date(Date.UTC(2026, 10, n)), hash),
        inputsHash: hash,
        builtAt: "",
      });
      const { release } = await recordRelease([cat], [key], [key]);
      await releases.move("stable", release.id);
      ids.push(release.id);
    }
    store.close();

    const rb = await runCli(["rollback", "--channel", "stable", "--json", "--config", p.config]);
    assert.equal(rb.code, 0, rb.stderr);
    const doc = JSON.parse(rb.stdout) as { release: { channel: string; from: string; to: string } };
    assert.deepEqual(doc.release, { channel: "stable", from: ids[1], to: ids[0] });
    const check = new Releases(new Catalog({ store: new SqliteStore(p.db), prefix: "/imgtool/bench" }));
    assert.equal((await check.read("stable"))?.id, ids[0]);
    assert.equal((await check.read("latest"))?.id, ids[1], "latest stays");

    const bad = await runCli([
      "rollback",
      "--channel",
      "stable",
      "--role",
      "orchestrator",
      "--kind",
      "image",
      "--config",
      p.config,
    ]);
    assert.equal(bad.code, 2, "an artefact's own rollback moves only latest");
  });

  test("a corrupt release record: exit 1, the parameter and the fix, no stack trace", async () => {
    const p = project();
    const store = new SqliteStore(p.db);
    const v = await store.put("/imgtool/bench/release", "{garbage", { dataType: "text" });
    await store.label("/imgtool/bench/release", v, ["latest"]);
    store.close();
    const r = await runCli(["rollback", "--config", p.config]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\/imgtool\/bench\/release \(version 1\) is not readable: its value is not JSON/);
    assert.match(r.stderr, /rollback --channel/);
    noStack(r.stderr);
  });
});
