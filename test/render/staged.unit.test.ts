// The staged bake's renders: the base stage carries the rarely-changing steps and none of the role's inputs (so
// its rendered-files hash ignores a ruby-bench or image change), the role stage the often-changing ones; on aws
// the role stage's source is the base AMI by id.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/load.js";
import {
  BASE_STEPS,
  ROLE_STEPS,
  renderBake,
  renderInputs,
  renderedHash,
  type BakeStageName,
} from "../../src/render/packer.js";

const config = (extra: string[] = []) =>
  parseConfig(
    [
      "pipeline: bench",
      "roles:",
      "  task-runner:",
      "    instance_types: [c7i.large]",
      ...extra,
      "aws:",
      "  regions: [us-east-1]",
    ].join("\n"),
    { baseDir: "/p" },
  ).config!;

const render = (cfg = config(), stage: BakeStageName, target: "local" | "aws" = "local", bases?: string) =>
  renderBake(cfg, "task-runner", target, {
    ...renderInputs(cfg, "task-runner", { stage, ...(target === "aws" ? { region: "us-east-1" } : {}) }),
    ...(bases ? { bases: { x86_64: bases } } : {}),
  });

describe("staged renders", () => {
  test("each stage runs its own steps and carries only their scripts", () => {
    for (const [stage, steps] of [
      ["base", BASE_STEPS],
      ["role", ROLE_STEPS],
    ] as const) {
      const r = render(undefined, stage);
      const run = [...r.files["build.pkr.hcl"]!.matchAll(/script += "scripts\/([a-z-]+)\.sh"/g)].map(
        (m) => m[1],
      );
      assert.deepEqual(run, [...steps]);
      const scripts = Object.keys(r.files).filter((f) => /^scripts\/[^/]+\.sh$/.test(f));
      assert.deepEqual(scripts.sort(), [...new Set(steps)].map((s) => `scripts/${s}.sh`).sort());
    }
    assert.doesNotMatch(render(undefined, "base").files["build.pkr.hcl"]!, /version-manifest/);
  });

  test("the base stage's hash ignores ruby-bench, and follows Ruby versions and packages", () => {
    const h = (extra: string[], stage: BakeStageName) => renderedHash(render(config(extra), stage));
    const bench = ["    ruby_bench: { repository: https://example.invalid/other.git, ref: v2 }"];
    assert.equal(h(bench, "base"), h([], "base"));
    assert.notEqual(h(bench, "role"), h([], "role"));
    assert.notEqual(h(['    ruby: { versions: ["3.2"] }'], "base"), h([], "base"));
    assert.notEqual(h(["    packages: [libyaml-dev]"], "base"), h([], "base"));
    assert.doesNotMatch(
      render(undefined, "base").files["build.env"]!,
      /IMGTOOL_RUBY_BENCH|IMGTOOL_IMAGE_REF/,
    );
  });

  test("aws: the role stage's source is the base AMI by id; the base stage uses the configured filter", () => {
    const role = render(undefined, "role", "aws", "ami-0123456789abcdef0").files["sources.pkr.hcl"]!;
    assert.match(role, /source_ami = "ami-0123456789abcdef0"/);
    assert.doesNotMatch(role, /source_ami_filter/);
    const base = render(undefined, "base", "aws").files["sources.pkr.hcl"]!;
    assert.match(base, /source_ami_filter/);
    assert.match(base, /name_prefix = "bench-task-runner-base"/);
  });
});
