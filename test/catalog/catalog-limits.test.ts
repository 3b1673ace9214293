// The catalog's 100-version limit on both backends (test/catalog/backends.ts). Not in the unit layer: a hundred
// publishes per backend take seconds.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { recordingSink } from "../../src/events.js";
import { backends, meta, newCatalog } from "./backends.js";

for (const backend of backends) {
  describe(`catalog on ${backend.name}: limits`, () => {
    test("100-version limit never blocks a publish: labels move off the oldest, and it says so", async () => {
      const events = recordingSink();
      const cat = newCatalog(backend.store(), events);
      const k = { role: "orchestrator", kind: "image" as const };
      for (let i = 0; i < 102; i++) await cat.publish(k, `img-${i}`, meta(1000 + i));
      assert.equal((await cat.resolve([k])).found[0]!.value, "img-101");
      const hist = await cat.history(k);
      assert.equal(hist.length, 100);
      assert.equal(hist[0]!.value, "img-2", "the two oldest versions were dropped");
      const warns = events.events.filter((e) => e.type === "warn");
      assert.ok(warns.length >= 2, "each drop of a labelled oldest version is reported");
      assert.match(warns[0]!.message, /limit of 100 versions: removed labels \[v/);
    });
  });
}
