// bench/run's command line: --help teaches and runs nothing; an unknown benchmark or option is a usage error
// (exit 2) naming it, before the script starts the example pipeline. Real bash; nothing is benchmarked here.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { projectPath } from "../src/paths.js";

const run = (...args: string[]) =>
  spawnSync("bash", [projectPath("bench", "run"), ...args], { encoding: "utf8", timeout: 20_000 });

describe("bench/run arguments", () => {
  test("--help: the usage, every benchmark's name, exit 0, and no pipeline run", () => {
    const r = run("--help");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^usage: bench\/run \[--help\] \[BENCH\.\.\.\]/);
    assert.match(r.stdout, /cli push bake boot stack calib/);
    assert.equal(r.stderr, "", "nothing ran");
  });

  test("an unknown benchmark or option: exit 2, naming it (and the benchmarks there are)", () => {
    const name = run("cli", "nope");
    assert.equal(name.status, 2);
    assert.match(name.stderr, /no benchmark named 'nope' \(there are: cli push bake boot stack calib\)/);
    const option = run("--bogus");
    assert.equal(option.status, 2);
    assert.match(option.stderr, /unknown option '--bogus'/);
  });
});
