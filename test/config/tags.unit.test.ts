// The one tag-key table: the templates read their keys from it, never spell them out.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { projectPath } from "../../src/paths.js";
import { DOCKER_LABEL, IMAGE_LABEL, TAG } from "../../src/config/tags.js";

function templates(dir = projectPath("templates")): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? templates(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}

describe("config/tags", () => {
  test("no template spells out a tag or label key", () => {
    const keys = [...Object.values(TAG), ...Object.values(DOCKER_LABEL), ...Object.values(IMAGE_LABEL)];
    const found = templates().flatMap((f) => {
      const text = readFileSync(f, "utf8");
      return keys.filter((k) => text.includes(k)).map((k) => `${path.basename(f)}: ${k}`);
    });
    assert.deepEqual(found, []);
  });

  test("keys are unique within each table", () => {
    for (const table of [TAG, DOCKER_LABEL, IMAGE_LABEL]) {
      const values = Object.values(table);
      assert.equal(new Set(values).size, values.length);
    }
  });
});
