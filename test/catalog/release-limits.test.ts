// SSM's 100-version limit on the release record, on both backends (the AWS stand-in rejects a write past it
// with ParameterMaxVersionLimitExceeded when the oldest version carries a label, as SSM does; the local
// catalog does the same): a channel on the oldest release is never dropped, a release id alone comes off with
// a warning. Not in the unit layer: a hundred writes per backend.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Releases, regionCatalogs } from "../../src/catalog/release.js";
import { FailureError } from "../../src/errors.js";
import { recordingSink } from "../../src/events.js";
import { backends, meta, newCatalog, standin, useBackends } from "./backends.js";

useBackends();

for (const backend of backends) {
  describe(`release record on ${backend.name}: 100 versions`, () => {
    const ssm = backend.name.startsWith("SSM");
    let n = 0;
    async function filled(channelOnOldest: "stable" | null) {
      const events = recordingSink();
      const store = backend.store();
      const cat = newCatalog(store, events);
      const releases = new Releases(cat, { events });
      const key = { role: "orchestrator", kind: "image" as const };
      const publish = async () =>
        cat.publish(key, `registry.example/o@sha256:${(++n).toString(16).padStart(64, "0")}`, meta(n));
      await publish();
      const first = (await releases.record(regionCatalogs([cat]), [key])).release;
      if (channelOnOldest) await releases.move(channelOnOldest, first.id);
      // 99 more versions of the same record (what 99 later releases would leave), unlabelled.
      const hist = await releases.history();
      for (let i = 0; i < 99; i++)
        await store.put(releases.name, JSON.stringify(hist[0]!.release), { dataType: "text" });
      // latest points at a later release (as it would after 99 of them).
      await store.label(releases.name, (await releases.history()).at(-1)!.parameterVersion, ["latest"]);
      await publish();
      return { events, store, cat, releases, key, first };
    }

    test("the oldest release carries stable: no release is recorded, stable stays, the error says how to move it", async () => {
      const f = await filled("stable");
      await assert.rejects(
        f.releases.record(regionCatalogs([f.cat]), [f.key]),
        (e: unknown) =>
          e instanceof FailureError &&
          e.message.includes(f.releases.name) &&
          /limit of 100 versions/.test(e.message) &&
          /stable/.test(e.message) &&
          /rollback --channel stable/.test(e.fix ?? ""),
      );
      assert.equal((await f.releases.read("stable"))?.id, f.first.id, "stable not dropped");
      assert.equal((await f.releases.history()).length, 100);
      if (ssm) {
        assert.ok(
          standin.requests.some(
            (q) =>
              q.operation === "PutParameter" &&
              q.status === 400 &&
              (q.params as { Name?: string }).Name === f.releases.name,
          ),
          "the stand-in refused the write as SSM does",
        );
      }
    });

    test("the oldest release carries only its id: it is dropped with a warning, the new release recorded", async () => {
      const f = await filled(null);
      const r = await f.releases.record(regionCatalogs([f.cat]), [f.key]);
      assert.equal(r.status, "recorded");
      assert.equal((await f.releases.read("latest"))?.id, r.release.id);
      const after = await f.releases.history();
      assert.equal(after.length, 100);
      assert.ok(!after.some((h) => h.labels.includes(f.first.id)), "the oldest (with its id) was dropped");
      const warn = f.events.events.find((e) => e.type === "warn");
      assert.match(
        warn?.message ?? "",
        /limit of 100 versions: its oldest release .* no channel pointed at it/,
      );
    });
  });
}
