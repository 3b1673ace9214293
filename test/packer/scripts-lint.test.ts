// shellcheck, the real linter, over every provisioning script and the files of lib/. Not in the unit layer: it
// takes seconds (scripts.unit.test.ts checks what the scripts do).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import path from "node:path";
import { projectPath } from "../../src/paths.js";
import { run } from "../render/helpers.js";

const DIR = projectPath("packer", "scripts");

test("shellcheck: every provisioning script and the lib files are clean", () => {
  const scripts = readdirSync(DIR).filter((f) => f.endsWith(".sh"));
  const files = [...scripts, ...readdirSync(path.join(DIR, "lib")).map((f) => `lib/${f}`)];
  assert.ok(scripts.length > 5 && files.includes("lib/core.sh"), files.join(" "));
  const r = run(["shellcheck", "-x", "--source-path=SCRIPTDIR", ...files], { cwd: DIR });
  assert.equal(r.code, 0, r.out);
});
