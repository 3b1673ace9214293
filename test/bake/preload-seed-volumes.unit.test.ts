// Check before work, the pre-load's seed (src/bake/bake.ts, preloadSeed): the role's latest version is a seed only
// when its store holds the same images on the same base and, for a stack, the same filled named volumes (a store
// filled for another compose.yaml, or made before volumes were filled, is not what this bake's pre-load makes).
// Against the local catalog (SQLite), as the twin bake reads it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { preloadSeed } from "../../src/bake/bake.js";
import { SqliteStore } from "../../src/catalog/sqlite-store.js";
import { meta, newCatalog } from "../catalog/backends.js";

const key = { role: "orchestrator", kind: "ami" as const, arch: "x86_64" };
const IMAGES = ["reg/app@sha256:1", "reg/library/postgres@sha256:2"];
const PGDATA = "pgdata,/var/lib/postgresql/data,reg/library/postgres@sha256:2";
let tmp = "";
let n = 0;

before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), "imgtool-preload-seed-"));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function latest(extra: Record<string, unknown>) {
  const cat = newCatalog(new SqliteStore(path.join(tmp, `c${++n}.db`)));
  const m = meta(1, { baseVersion: "vbase", preloadVolume: "store-1", preloadImages: IMAGES, ...extra });
  await cat.publish(key, "sha256:twin", m, { dataType: "text" });
  return { cat, version: m.version };
}

test("a seed holds the same images and the same filled volumes; otherwise the pre-load pulls and fills", async () => {
  const filled = await latest({ preloadVolumes: [PGDATA] });
  assert.deepEqual(await preloadSeed(filled.cat, key, "vbase", IMAGES, [PGDATA]), {
    version: filled.version,
    volume: "store-1",
  });
  // Another path, another volume, none: not this bake's store.
  for (const volumes of [[PGDATA.replace("/data", "/other")], [PGDATA, "cache,/c,reg/x@sha256:3"], []])
    assert.equal(await preloadSeed(filled.cat, key, "vbase", IMAGES, volumes), undefined, volumes.join(" "));
  // A store made before volumes were filled (no record of them) seeds only a bake that fills none.
  const older = await latest({});
  assert.equal(await preloadSeed(older.cat, key, "vbase", IMAGES, [PGDATA]), undefined);
  assert.equal((await preloadSeed(older.cat, key, "vbase", IMAGES, []))?.volume, "store-1");
  // Images and base as before.
  assert.equal(await preloadSeed(filled.cat, key, "vother", IMAGES, [PGDATA]), undefined);
  assert.equal(await preloadSeed(filled.cat, key, "vbase", IMAGES.slice(0, 1), [PGDATA]), undefined);
});
