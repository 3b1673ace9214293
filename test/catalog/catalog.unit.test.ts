// The catalog's contract, run against both backends (test/catalog/backends.ts): SSM Parameter Store (through the
// real SDK client, over HTTP, to the wire-level AWS stand-in) and the local SQLite database. The 100-version limit
// (a hundred publishes per backend, seconds) is in catalog-limits.test.ts, outside the unit layer.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FailureError, UsageError } from "../../src/errors.js";
import { backends, counting, meta, newCatalog, standin, useBackends } from "./backends.js";

useBackends();

for (const backend of backends) {
  describe(`catalog on ${backend.name}`, () => {
    const key = { role: "task-runner", kind: "ami" as const, arch: "x86_64" };

    test("publish then resolve: value, version and metadata", async () => {
      const cat = newCatalog(backend.store());
      const ami = backend.ami(1);
      const m = meta(1, { gitRevision: "abc123", base: "ami-base" });
      await cat.publish(key, ami, m, { dataType: "aws:ec2:image" });
      const { found, missing } = await cat.resolve([key], { meta: true });
      assert.equal(missing.length, 0);
      assert.equal(found[0]!.value, ami);
      assert.equal(found[0]!.name, `${cat.prefix}/task-runner/ami/x86_64`);
      assert.deepEqual(found[0]!.meta, { ...m, value: ami });
      // and by the version name
      const byVersion = await cat.resolve([key], { label: m.version });
      assert.equal(byVersion.found[0]!.value, ami);
    });

    test("resolve reports what is missing", async () => {
      const cat = newCatalog(backend.store());
      const r = await cat.resolve([key, { role: "orchestrator", kind: "image" }]);
      assert.equal(r.found.length, 0);
      assert.equal(r.missing.length, 2);
    });

    test("history, status and rollback (default: previous; --to a named version)", async () => {
      const cat = newCatalog(backend.store());
      const amis = [backend.ami(11), backend.ami(12), backend.ami(13)];
      for (const [i, ami] of amis.entries())
        await cat.publish(key, ami, meta(11 + i), { dataType: "aws:ec2:image" });
      let [row] = await cat.status();
      assert.equal(row!.current?.version, meta(13).version);
      assert.equal(row!.previous?.version, meta(12).version);
      assert.equal(row!.labels.latest, meta(13).version);

      const r1 = await cat.rollback(key);
      assert.deepEqual([r1.from, r1.to], [meta(13).version, meta(12).version]);
      const after1 = await cat.resolve([key], { meta: true });
      assert.equal(after1.found[0]!.value, amis[1]);
      assert.equal(after1.found[0]!.meta?.version, meta(12).version, "metadata follows the rollback");

      const r2 = await cat.rollback(key, meta(11).version);
      assert.equal(r2.to, meta(11).version);
      assert.equal((await cat.resolve([key])).found[0]!.value, amis[0]);
      [row] = await cat.status();
      assert.equal(row!.current?.version, meta(11).version);
      assert.equal(row!.previous, undefined);

      await assert.rejects(
        cat.rollback(key),
        (e: unknown) => e instanceof UsageError && /no version before/.test(e.message),
      );
      await assert.rejects(
        cat.rollback(key, "v1-nope"),
        (e: unknown) => e instanceof UsageError && /not in the history/.test(e.message),
      );
      await assert.rejects(cat.rollback({ role: "orchestrator", kind: "image" }), /Nothing is published/);
    });

    test("promote moves a channel label (stable) to what latest points to, value and metadata", async () => {
      const cat = newCatalog(backend.store());
      const k = { role: "orchestrator", kind: "image" as const };
      assert.equal(await cat.promote(k, "stable"), undefined, "nothing published: nothing promoted");
      await cat.publish(k, "img-a", meta(40));
      assert.equal(await cat.promote(k, "stable"), meta(40).version);
      await cat.publish(k, "img-b", meta(41));
      const stable = await cat.resolve([k], { label: "stable", meta: true });
      assert.equal(stable.found[0]!.value, "img-a", "stable stays until promoted");
      assert.equal(stable.found[0]!.meta?.version, meta(40).version);
      await cat.promote(k, "stable");
      assert.equal((await cat.resolve([k], { label: "stable" })).found[0]!.value, "img-b");
      const [row] = await cat.status();
      assert.deepEqual(row!.labels, { latest: meta(41).version, stable: meta(41).version });
    });

    test("batching: 25 names resolve in ceil(25 / batch) round trips", async () => {
      const store = counting(backend.store());
      const cat = newCatalog(store);
      const keys = Array.from({ length: 25 }, (_, i) => ({ role: `r${i}`, kind: "image" as const }));
      for (const [i, k] of keys.entries()) await cat.publish(k, `img-${i}`, meta(100 + i));
      store.getManyCalls = 0;
      const { found, missing } = await cat.resolve(keys);
      assert.equal(found.length, 25);
      assert.equal(missing.length, 0);
      assert.deepEqual(
        found.map((f) => f.value),
        keys.map((_, i) => `img-${i}`),
      );
      assert.equal(store.getManyCalls, Math.ceil(25 / store.maxBatch));
      if (store.kind === "ssm") assert.equal(store.getManyCalls, 3);
    });

    test("two roles publishing at the same time", async () => {
      const store = backend.store();
      const cat = newCatalog(store);
      const a = { role: "task-runner", kind: "image" as const };
      const b = { role: "orchestrator", kind: "image" as const };
      await Promise.all([
        (async () => {
          for (let i = 0; i < 5; i++) await cat.publish(a, `tr-${i}`, meta(200 + i));
        })(),
        (async () => {
          for (let i = 0; i < 5; i++) await cat.publish(b, `or-${i}`, meta(300 + i));
        })(),
      ]);
      const { found } = await cat.resolve([a, b], { meta: true });
      assert.deepEqual(
        found.map((f) => [f.value, f.meta?.version]),
        [
          ["tr-4", meta(204).version],
          ["or-4", meta(304).version],
        ],
      );
      assert.equal((await cat.history(a)).length, 5);
    });
  });
}

describe("catalog on SSM: what only the real service does", () => {
  const store = () => backends[1]!.store();
  const key = { role: "task-runner", kind: "ami" as const, arch: "arm64" };

  test("throttling on the first two attempts is retried and does not fail the publish", async () => {
    const cat = newCatalog(store());
    const ami = backends[1]!.ami(500);
    standin.faults.add({ service: "ssm", operation: "PutParameter", calls: [1, 2], kind: "throttle" });
    try {
      const before = standin.count("PutParameter", "ssm");
      await cat.publish(key, ami, meta(500), { dataType: "aws:ec2:image" });
      assert.equal(standin.count("PutParameter", "ssm") - before, 4, "meta put: 3 attempts; value put: 1");
    } finally {
      standin.faults.clear();
    }
    assert.equal((await cat.resolve([key])).found[0]!.value, ami);
  });

  test("a dropped aws:ec2:image write is detected by the read-back, and nothing is labelled", async () => {
    const cat = newCatalog(store());
    const good = backends[1]!.ami(600);
    await cat.publish(key, good, meta(600), { dataType: "aws:ec2:image" });
    // An AMI id that does not exist in the region: SSM answers success, then drops the write.
    await assert.rejects(
      cat.publish(key, "ami-0123456789abcdef0", meta(601), { dataType: "aws:ec2:image" }),
      (e: unknown) =>
        e instanceof FailureError &&
        /did not keep ami-0123456789abcdef0/.test(e.message) &&
        /aws:ec2:image/.test(e.message),
    );
    const { found } = await cat.resolve([key], { meta: true });
    assert.equal(found[0]!.value, good, "latest still points at the previous AMI");
    assert.equal(found[0]!.meta?.version, meta(600).version, "and so does its metadata");
  });

  test("other errors surface with the parameter name", async () => {
    const cat = newCatalog(store());
    standin.faults.add({
      service: "ssm",
      operation: "PutParameter",
      kind: "error",
      code: "AccessDeniedException",
      message: "not allowed",
    });
    try {
      await assert.rejects(
        cat.publish(key, "x", meta(700)),
        (e: unknown) =>
          e instanceof FailureError &&
          e.message.includes(`${cat.prefix}/task-runner/ami/arm64/meta`) &&
          e.message.includes("AccessDeniedException: not allowed"),
      );
    } finally {
      standin.faults.clear();
    }
  });
});
