// The catalog's 100-version limit on both backends (test/catalog/backends.ts). Not in the unit layer: a hundred
// publishes per backend take seconds.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FailureError } from "../../src/errors.js";
import { recordingSink } from "../../src/events.js";
import { backends, meta, newCatalog, useBackends } from "./backends.js";

useBackends();

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

    test("a channel on the oldest of 100 versions is never dropped: the publish fails and says how to move it", async () => {
      const cat = newCatalog(backend.store());
      const k = { role: "orchestrator", kind: "image" as const };
      await cat.publish(k, "img-0", meta(2000));
      await cat.promote(k, "stable");
      for (let i = 1; i < 100; i++) await cat.publish(k, `img-${i}`, meta(2000 + i));
      await assert.rejects(
        cat.publish(k, "img-100", meta(2100)),
        (e: unknown) =>
          e instanceof FailureError && /limit of 100 versions/.test(e.message) && /stable/.test(e.message),
      );
      assert.equal((await cat.resolve([k], { label: "stable" })).found[0]?.value, "img-0", "stable kept");
      assert.equal((await cat.resolve([k])).found[0]?.value, "img-99", "latest kept");
    });
  });
}
