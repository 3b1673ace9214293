// `imgtool render` as a user runs it (the compiled CLI): it writes every file of each role's bake for
// inspection, runs nothing, and says which inputs are placeholders.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runCli } from "../support/cli.js";
import { tempDir } from "./helpers.js";

function project(config = ""): { dir: string; config: string } {
  const dir = tempDir("render-cli");
  const file = path.join(dir, "imgtool.config.yaml");
  writeFileSync(file, `local:\n  state_dir: ${path.join(dir, "state")}\n${config}`);
  return { dir, config: file };
}

describe("imgtool render", () => {
  test("default: both roles' two stages, local target, into OUT/local/<role>/{base,role}; says what is a placeholder", async () => {
    const p = project();
    try {
      const out = path.join(p.dir, "out");
      const r = await runCli(["render", "--out", out, "--config", p.config]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        existsSync(path.join(out, "local", "task-runner", "build.pkr.hcl")),
        false,
        "no full build",
      );
      for (const [role, stage] of [
        ["task-runner", "base"],
        ["task-runner", "role"],
        ["orchestrator", "base"],
        ["orchestrator", "role"],
      ] as const) {
        const d = path.join(out, "local", role, stage);
        for (const f of [
          "plugins.pkr.hcl",
          "variables.pkr.hcl",
          "sources.pkr.hcl",
          "build.pkr.hcl",
          "imgtool.pkrvars.hcl",
          "build.env",
          "versions.json",
        ]) {
          assert.ok(existsSync(path.join(d, f)), `${role}/${f}`);
        }
        assert.match(readFileSync(path.join(d, "imgtool.pkrvars.hcl"), "utf8"), /version += "v0-render"/);
        // Only the role stage depends on ruby-bench (a new commit rebakes it alone).
        const env = readFileSync(path.join(d, "build.env"), "utf8");
        if (stage === "role") assert.match(env, /^IMGTOOL_RUBY_BENCH_COMMIT=main$/m);
        else assert.doesNotMatch(env, /IMGTOOL_RUBY_BENCH_COMMIT/);
      }
      // The base stage updates the OS and installs Ruby; the role stage checks out ruby-bench and validates.
      const build = (role: string, stage: string) =>
        readFileSync(path.join(out, "local", role, stage, "build.pkr.hcl"), "utf8");
      assert.match(build("task-runner", "base"), /scripts\/update-os\.sh/);
      assert.doesNotMatch(build("task-runner", "base"), /scripts\/install-ruby-bench\.sh/);
      assert.match(build("task-runner", "role"), /scripts\/install-ruby-bench\.sh/);
      assert.doesNotMatch(build("task-runner", "role"), /scripts\/update-os\.sh/);
      assert.equal(
        statSync(path.join(out, "local", "task-runner", "role", "scripts", "validate.sh")).mode & 0o111,
        0o111,
      );
      assert.match(
        r.stdout,
        /rendered task-runner base stage \(local\) into .*out\/local\/task-runner\/base: \d+ files/,
      );
      assert.match(
        r.stdout,
        /rendered task-runner role stage \(local\) into .*out\/local\/task-runner\/role: \d+ files/,
      );
      assert.match(
        r.stdout,
        /placeholders, since render builds nothing: version v0-render, ruby-bench commit = the ref "main", not resolved/,
      );
      assert.match(r.stdout, /no task-runner image is published yet/);
      assert.equal(existsSync(path.join(p.dir, "state")), false, "render touches no state");
    } finally {
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  test("--target aws --role task-runner --json: one JSON document, the aws sources per architecture", async () => {
    const p = project("roles:\n  task-runner:\n    instance_types: [c7i.large, c7g.large]\n");
    try {
      const out = path.join(p.dir, "out");
      const r = await runCli([
        "render",
        "--out",
        out,
        "--target",
        "aws",
        "--role",
        "task-runner",
        "--stage",
        "full",
        "--json",
        "--config",
        p.config,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as {
        results: {
          role: string;
          target: string;
          dir: string;
          files: string[];
          sources: { name: string }[];
          initArgs: string[];
          minPackerVersion: string;
        }[];
      };
      assert.equal(doc.results.length, 1);
      const [res] = doc.results;
      assert.equal(res!.role, "task-runner");
      assert.equal(res!.target, "aws");
      assert.deepEqual(
        res!.sources.map((s) => s.name),
        ["x86_64", "arm64"],
      );
      assert.deepEqual(res!.initArgs, ["init", "plugins.pkr.hcl"]);
      assert.equal(res!.minPackerVersion, "1.7.0");
      assert.ok(res!.files.includes("scripts/lib/common.sh"));
      assert.match(
        readFileSync(path.join(out, "aws", "task-runner", "sources.pkr.hcl"), "utf8"),
        /source "amazon-ebs" "arm64"/,
      );
    } finally {
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  test("--packer-version 1.6.6 keeps the plugins file out of the build; --dry-run writes nothing", async () => {
    const p = project();
    try {
      const out = path.join(p.dir, "out");
      const r = await runCli([
        "render",
        "--out",
        out,
        "--role",
        "orchestrator",
        "--packer-version",
        "1.6.6",
        "--config",
        p.config,
      ]);
      assert.equal(r.code, 0, r.stderr);
      for (const stage of ["base", "role"]) {
        assert.ok(existsSync(path.join(out, "local", "orchestrator", stage, "plugins", "plugins.pkr.hcl")));
        assert.ok(!existsSync(path.join(out, "local", "orchestrator", stage, "plugins.pkr.hcl")));
      }
      const dry = path.join(p.dir, "dry");
      const d = await runCli(["render", "--out", dry, "--dry-run", "--config", p.config]);
      assert.equal(d.code, 0, d.stderr);
      assert.match(d.stdout, /would render \(--dry-run\) task-runner/);
      assert.equal(existsSync(dry), false);
      // The aws bake needs Packer >= 1.7: a usage error that says so.
      const old = await runCli([
        "render",
        "--out",
        out,
        "--target",
        "aws",
        "--packer-version",
        "1.6.6",
        "--config",
        p.config,
      ]);
      assert.equal(old.code, 2);
      assert.match(old.stderr, /needs Packer 1\.7\.0 or later/);
    } finally {
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  test("--out is required", async () => {
    const r = await runCli(["render"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Missing required argument: out/);
  });
});
