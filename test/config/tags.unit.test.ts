// The one tag-key table: the templates and the shell scripts read their keys from it, never spell them out.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { exec } from "../../src/exec.js";
import { projectPath } from "../../src/paths.js";
import { DOCKER_LABEL, IMAGE_LABEL, TAG } from "../../src/config/tags.js";

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}

const KEYS = [...Object.values(TAG), ...Object.values(DOCKER_LABEL), ...Object.values(IMAGE_LABEL)];

/** "file: key" for each key a file spells out. */
const spelled = (files: string[]) =>
  files.flatMap((f) => {
    const text = readFileSync(f, "utf8");
    return KEYS.filter((k) => text.includes(k)).map((k) => `${path.relative(projectPath(), f)}: ${k}`);
  });

describe("config/tags", () => {
  test("no template spells out a tag or label key", () => {
    assert.deepEqual(spelled(filesUnder(projectPath("templates"))), []);
  });

  test("no script (scripts/, packer/) spells out a tag or label key", () => {
    const files = [...filesUnder(projectPath("scripts")), ...filesUnder(projectPath("packer"))];
    assert.ok(files.some((f) => f.endsWith(path.join("scripts", "setup"))));
    assert.deepEqual(spelled(files), []);
  });

  test("the shell reads a label key from the table: image_label in scripts/lib/common.sh", async () => {
    const lib = projectPath("scripts", "lib", "common.sh");
    // Each call starts tsx (seconds on a loaded machine): both run side by side.
    const label = (name: string) => exec(["bash", "-c", '. "$1"; image_label "$2"', "-", lib, name]);
    const [r, bad] = await Promise.all([label("baseSpec"), label("toString")]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, `${IMAGE_LABEL.baseSpec}\n`);
    assert.equal(bad.exitCode, 1);
    assert.match(bad.stderr, /toString is not a key of IMAGE_LABEL/);
  });

  test("keys are unique within each table", () => {
    for (const table of [TAG, DOCKER_LABEL, IMAGE_LABEL]) {
      const values = Object.values(table);
      assert.equal(new Set(values).size, values.length);
    }
  });
});
