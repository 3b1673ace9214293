// `npm run test:unit`'s shards (test/support/unit-shard.ts): every unit test file in exactly one shard, and the
// shard entries are no test files of `npm test` (which runs every *.test.ts file in a process of its own).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { SHARD_DIR, partition, shardNumbers, unitTestFiles } from "./unit-shard.js";

describe("unit test shards", () => {
  test("every unit test file is in exactly one shard; no shard is empty", () => {
    const files = unitTestFiles();
    assert.ok(files.includes("test/support/unit-shard.unit.test.ts"));
    const shards = partition(files, shardNumbers().length);
    assert.deepEqual(shards.flat().sort(), files);
    for (const s of shards) assert.ok(s.length > 0);
  });

  test("the entries are unit-1 .. unit-N, none named like a test file (npm test would run it as well)", () => {
    assert.deepEqual(
      readdirSync(SHARD_DIR).filter((f) => f.endsWith(".test.ts")),
      [],
    );
    const numbers = shardNumbers();
    assert.ok(numbers.length >= 2);
    assert.deepEqual(
      numbers,
      numbers.map((_, i) => i + 1),
    );
  });

  test("longest first, each to the least loaded shard; unlisted files spread evenly", () => {
    const files = [
      "test/a.unit.test.ts",
      "test/b.unit.test.ts",
      "test/c.unit.test.ts",
      "test/d.unit.test.ts",
    ];
    const shards = partition(files, 2);
    assert.deepEqual(
      shards.map((s) => s.length),
      [2, 2],
    );
    assert.deepEqual(partition(["test/render/user-data.unit.test.ts", ...files], 2)[0], [
      "test/render/user-data.unit.test.ts",
    ]);
  });
});
